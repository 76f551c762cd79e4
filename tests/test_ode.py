"""The shared ODE solve (gmjax.flows.ode) against the linear ODE's closed form.

For v(y, t) = A y the flow map is y(t) = expm(t A) y(0) and its log-determinant
is t tr(A) (Liouville's formula), so the state, the integrated divergence and
its gradient are all known exactly.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from gmjax.flows.ode import (ODE_SOLVERS, ODEOptions, exact_divergence, hutchinson_divergence,
                             integrate)

A = np.array([[-0.5, 1.0, 0.2], [-0.3, 0.2, 0.0], [0.1, -0.4, -0.1]], np.float32)
T1 = 1.5


def linear(y, t, args):
    return y @ args.T


@pytest.fixture(scope="module")
def y0():
    return jax.random.normal(jax.random.PRNGKey(0), (4, 3))


@pytest.mark.parametrize("solver, num_steps, tol", [
    ("dopri5", None, 1e-4), ("tsit5", None, 1e-4), ("rk4", 20, 1e-4), ("heun", 200, 1e-3),
    ("euler", 1000, 1e-2)])
def test_linear_field_matches_matrix_exponential(y0, solver, num_steps, tol):
    options = ODEOptions(solver=solver, num_steps=num_steps or 100)
    result = integrate(linear, y0, 0.0, T1, args=jnp.asarray(A), options=options)
    expected = np.asarray(y0) @ scipy.linalg.expm(T1 * A.astype(np.float64)).T
    np.testing.assert_allclose(result.y, expected, atol=tol)
    # Liouville: log det expm(tA) = t tr(A), the same for every starting point.
    np.testing.assert_allclose(result.log_det, np.full(4, T1 * np.trace(A)), atol=tol)
    spec = ODE_SOLVERS.get(solver)
    if not spec.adaptive:
        assert int(result.nfe) == spec.evals_per_step * num_steps
    else:
        assert int(result.nfe) > 0


def test_backwards_solve_inverts_forwards(y0):
    options = ODEOptions(solver="dopri5", rtol=1e-6, atol=1e-6)
    forward = integrate(linear, y0, 0.0, T1, args=jnp.asarray(A), options=options)
    back = integrate(linear, forward.y, T1, 0.0, args=jnp.asarray(A), options=options)
    np.testing.assert_allclose(back.y, y0, atol=1e-4)
    np.testing.assert_allclose(back.log_det, -forward.log_det, atol=1e-4)


@pytest.mark.parametrize("adjoint", ["direct", "backsolve"])
def test_gradient_of_log_det_is_t_times_identity(y0, adjoint):
    # d/dA [t tr(A)] = t I, whatever the adjoint. The divergence of a linear field is the
    # constant tr(A), which RK4 integrates exactly, so the check is tight.
    options = ODEOptions(solver="rk4", num_steps=20, adjoint=adjoint)
    grad = jax.grad(lambda a: integrate(linear, y0, 0.0, T1, args=a,
                                        options=options).log_det.mean())(jnp.asarray(A))
    np.testing.assert_allclose(grad, T1 * np.eye(3), atol=1e-4)


@pytest.mark.parametrize("probe", ["rademacher", "gaussian"])
def test_hutchinson_is_unbiased(probe):
    # A non-linear field: the estimator's mean over many probes matches the exact trace.
    w = jax.random.normal(jax.random.PRNGKey(1), (5, 5))

    def field(y, t, args):
        return jnp.tanh(y @ args) * (1.0 + t)

    y = jax.random.normal(jax.random.PRNGKey(2), (3, 5))
    _, exact = exact_divergence(field, y, 0.3, w)
    num = 20000
    probes = (jax.random.rademacher(jax.random.PRNGKey(3), (num, 3, 5), dtype=jnp.float32)
              if probe == "rademacher" else jax.random.normal(jax.random.PRNGKey(3), (num, 3, 5)))
    estimates = jax.jit(jax.vmap(lambda p: hutchinson_divergence(field, y, 0.3, p, w)[1]))(probes)
    mean = estimates.mean(0)
    stderr = estimates.std(0) / np.sqrt(num)
    # Within 5 standard errors (the estimate's own spread), and not trivially: the spread is
    # non-zero, so a biased estimator would be caught.
    assert np.all(stderr > 0)
    np.testing.assert_array_less(np.abs(mean - exact), 5 * stderr + 1e-6)


def test_hutchinson_solve_is_unbiased_for_the_linear_field(y0):
    options = ODEOptions(solver="rk4", num_steps=10, trace="hutchinson")
    run = jax.jit(lambda key: integrate(linear, y0, 0.0, T1, args=jnp.asarray(A),
                                        options=options, key=key).log_det)
    draws = jax.vmap(run)(jax.random.split(jax.random.PRNGKey(4), 2000))
    assert float(draws.std()) > 0.1  # the estimate does vary with the probe
    np.testing.assert_allclose(draws.mean(), T1 * np.trace(A), atol=5 * draws.std() / np.sqrt(
        draws.size))


@pytest.mark.parametrize("options, message", [
    (ODEOptions(solver="rk45"), "valid choices: dopri5, euler, heun, midpoint, rk4, tsit5"),
    (ODEOptions(solver="rk4", num_steps=0), "num_steps must be an integer >= 1"),
    (ODEOptions(solver="euler", num_steps=-3), "num_steps must be an integer >= 1"),
    (ODEOptions(trace="approx"), "valid choices: exact, hutchinson"),
    (ODEOptions(probe="uniform"), "valid choices: rademacher, gaussian"),
    (ODEOptions(adjoint="checkpoint"), "valid choices: direct, backsolve"),
])
def test_bad_options_are_rejected(y0, options, message):
    with pytest.raises(ValueError, match=message):
        integrate(linear, y0, 0.0, 1.0, args=jnp.asarray(A), options=options)


def test_hutchinson_needs_a_key_and_exact_trace_refuses_huge_dimensions():
    with pytest.raises(ValueError, match="needs a key"):
        integrate(linear, jnp.zeros((2, 3)), 0.0, 1.0, args=jnp.asarray(A),
                  options=ODEOptions(trace="hutchinson"))
    big = jax.ShapeDtypeStruct((64, 4096), jnp.float32)
    with pytest.raises(ValueError, match="trace='hutchinson'"):
        jax.eval_shape(lambda y: integrate(lambda y, t, a: y, y, 0.0, 1.0), big)
