"""Continuous normalizing flows (gmjax.flows.continuous) and flow matching
(gmjax.objectives.flow_matching) against closed forms.

* Linear field v(y) = A y: the time-1 map is expm(A), its log-det tr(A) (Liouville), so
  x = expm(A) z ~ N(0, expm(A) expm(A)^T) has a known density.
* Gaussian to Gaussian, x0 ~ N(0, I), x1 ~ N(m, s^2 I), independent. Along
  x_t = a x1 + b x0 with target Y = a' x1 + b' x0 (per coordinate, all jointly Gaussian),
  the marginal field is E[Y | x_t] = a' m + C / V (x_t - a m) with V = a^2 s^2 + b^2 and
  C = a a' s^2 + b b', and the flow-matching loss there is its minimum,
  E_t Var(Y | x_t) = E_t s^2 (a' b - a b')^2 / V per coordinate. For the straight path
  (a = t, b = 1 - t) that is s^2 / ((1 - t)^2 + t^2 s^2), whose integral over [0, 1] is
  s pi / 2; and the marginal field carries N(0, 1) to N(m, s^2) exactly, so the CNF
  likelihood of that field is the N(m, s^2) density.
"""

import itertools

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.integrate
import scipy.linalg
import scipy.stats

from gmjax.flows import Flow
from gmjax.flows.continuous import CNFBijector, cnf_flow
from gmjax.flows.ode import ODEOptions
from gmjax.objectives.flow_matching import (cnf_velocity, flow_matching_log_prob,
                                            flow_matching_loss, flow_matching_sample,
                                            ot_pairing, path_coefficients)
from gmjax.training import TrainState, data_mesh, make_train_step, replicate, shard_batch

A = np.array([[-0.4, 0.9], [-0.6, 0.3]], np.float32)
TIGHT = ODEOptions(solver="dopri5", rtol=1e-6, atol=1e-6)


def linear(y, t, a):
    return y @ a.T


def standard_normal(dim):
    return distrax.MultivariateNormalDiag(jnp.zeros(dim), jnp.ones(dim))


@pytest.mark.parametrize("options, tol", [(TIGHT, 1e-4), (ODEOptions(solver="rk4",
                                                                    num_steps=10), 1e-4)])
def test_linear_field_log_det_and_density_match_the_closed_form(options, tol):
    bijector = CNFBijector(linear, jnp.asarray(A), options=options)
    z = jax.random.normal(jax.random.PRNGKey(0), (6, 2))
    x, log_det = bijector.forward_and_log_det(z)
    expm = scipy.linalg.expm(A.astype(np.float64))
    np.testing.assert_allclose(x, np.asarray(z) @ expm.T, atol=tol)
    np.testing.assert_allclose(log_det, np.full(6, np.trace(A)), atol=tol)
    density = distrax.Transformed(standard_normal(2), bijector)
    expected = scipy.stats.multivariate_normal(np.zeros(2), expm @ expm.T).logpdf(np.asarray(x))
    np.testing.assert_allclose(density.log_prob(x), expected, atol=10 * tol)


@pytest.fixture(scope="module")
def perturbed_cnf():
    """A small CNF layer with perturbed parameters (so its field is far from zero)."""
    flow = cnf_flow((2,), hidden=(16,), embed_dim=8, options=TIGHT)
    x = jax.random.normal(jax.random.PRNGKey(1), (5, 2))
    params = jax.jit(flow.init)(jax.random.PRNGKey(2), x)
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(3), len(leaves))
    params = jax.tree.unflatten(tree, [p + 0.3 * jax.random.normal(k, p.shape)
                                       for p, k in zip(leaves, keys)])
    return flow, params, x


def test_forward_then_inverse_returns_the_input_and_log_det_matches_autodiff(perturbed_cnf):
    flow, params, z = perturbed_cnf

    @jax.jit
    def run(p, v):
        x, ld_fwd = flow.apply(p, v, method=Flow.forward_and_log_det)
        z_back, ld_inv = flow.apply(p, x, method=lambda m, u: m.bijector().inverse_and_log_det(u))

        def one(u):
            return flow.apply(p, u[None], method=Flow.forward_and_log_det)[0][0]

        return x, ld_fwd, z_back, ld_inv, jax.vmap(jax.jacrev(one))(v), flow.apply(p, x)

    x, ld_fwd, z_back, ld_inv, jacobians, log_p = run(params, z)
    assert float(jnp.abs(x - z).max()) > 0.05  # not the identity
    np.testing.assert_allclose(z_back, z, atol=1e-4)
    np.testing.assert_allclose(ld_inv, -ld_fwd, atol=1e-4)
    np.testing.assert_allclose(ld_fwd, jnp.linalg.slogdet(jacobians)[1], atol=1e-3)
    log_base = -0.5 * jnp.sum(z ** 2, 1) - np.log(2 * np.pi)
    np.testing.assert_allclose(log_p, log_base - ld_fwd, atol=1e-3)


def test_hutchinson_log_det_is_unbiased_against_the_exact_one(perturbed_cnf):
    flow, params, x = perturbed_cnf
    base = ODEOptions(solver="rk4", num_steps=6)
    exact_flow = cnf_flow((2,), hidden=(16,), embed_dim=8, options=base)
    hutch_flow = cnf_flow((2,), hidden=(16,), embed_dim=8,
                          options=ODEOptions(solver="rk4", num_steps=6, trace="hutchinson"))
    def layer(m, v):  # the normalizing direction of the CNF layer: (z, log|det dz/dx|)
        return m.layers[0](v)

    _, exact = exact_flow.apply(params, x, method=layer)

    @jax.jit
    def draws(keys):
        return jax.vmap(lambda k: hutch_flow.apply(params, x, method=layer,
                                                   rngs={"probe": k})[1])(keys)

    estimates = draws(jax.random.split(jax.random.PRNGKey(4), 3000))
    stderr = estimates.std(0) / np.sqrt(estimates.shape[0])
    assert np.all(estimates.std(0) > 1e-3)  # the estimate does depend on the probe
    np.testing.assert_array_less(np.abs(estimates.mean(0) - exact), 5 * stderr + 1e-5)
    # The same probe key gives the same estimate; a Hutchinson layer without a key fails.
    key = jax.random.PRNGKey(5)
    np.testing.assert_allclose(hutch_flow.apply(params, x, method=layer, rngs={"probe": key})[1],
                               hutch_flow.apply(params, x, method=layer, rngs={"probe": key})[1])
    with pytest.raises(ValueError, match="needs a key"):
        hutch_flow.apply(params, x, method=layer)


# Gaussian to Gaussian ----------------------------------------------------------------------

MEAN = np.array([1.5, -0.5], np.float32)
SCALE = 0.6


def marginal_velocity(path, **kw):
    """The closed-form marginal field from N(0, I) to N(MEAN, SCALE^2 I) along ``path``."""

    def apply(params, x, t):
        del params
        a, b, da, db = (c[:, None] for c in path_coefficients(path, t, **kw))
        var = a ** 2 * SCALE ** 2 + b ** 2
        cov = a * da * SCALE ** 2 + b * db
        return da * MEAN + cov / var * (x - a * MEAN)

    return apply


def expected_minimum(path, t_max):
    """2 coordinates times the mean over t ~ U[0, t_max] of the conditional variance
    (Simpson's rule on a fine grid, in float64)."""
    t = np.linspace(0.0, t_max, 200001)
    a, b, da, db = (np.asarray(c, np.float64) for c in path_coefficients(path, jnp.asarray(t)))
    per_coordinate = SCALE ** 2 * (da * b - a * db) ** 2 / (a ** 2 * SCALE ** 2 + b ** 2)
    return 2 * scipy.integrate.simpson(per_coordinate, x=t) / t_max


@pytest.mark.parametrize("path", ["ot", "vp"])
def test_flow_matching_loss_at_the_marginal_field_is_its_known_minimum(path):
    t_max = 1.0 if path == "ot" else 1.0 - 1e-3
    minimum = expected_minimum(path, t_max)
    if path == "ot":  # the closed form: s pi / 2 per coordinate
        np.testing.assert_allclose(minimum, 2 * SCALE * np.pi / 2, rtol=1e-6)
    loss = flow_matching_loss(marginal_velocity(path), path=path)
    shifted = flow_matching_loss(lambda p, x, t: marginal_velocity(path)(p, x, t) + 0.3,
                                 path=path)

    @jax.jit
    def batch_losses(keys):
        x1 = jax.vmap(lambda k: MEAN + SCALE * jax.random.normal(k, (20000, 2)))(keys)
        values = jax.vmap(lambda x, k: loss(None, x, k)[0])(x1, keys)
        return values, jax.vmap(lambda x, k: shifted(None, x, k)[0])(x1, keys)

    values, shifted_values = batch_losses(jax.random.split(jax.random.PRNGKey(6), 20))
    stderr = values.std() / np.sqrt(values.size)
    np.testing.assert_allclose(values.mean(), minimum, atol=5 * stderr + 1e-3)
    # Any other field costs more: a constant offset c adds |c|^2 = 2 * 0.09.
    np.testing.assert_allclose(shifted_values.mean() - values.mean(), 0.18, atol=5 * stderr)


def test_cnf_likelihood_of_the_marginal_field_is_the_target_density():
    x = MEAN + SCALE * jax.random.normal(jax.random.PRNGKey(7), (8, 2))
    log_p = flow_matching_log_prob(marginal_velocity("ot"), None, x, options=TIGHT)
    expected = scipy.stats.norm(MEAN, SCALE).logpdf(np.asarray(x)).sum(1)
    np.testing.assert_allclose(log_p, expected, atol=1e-3)
    samples = flow_matching_sample(marginal_velocity("ot"), None, jax.random.PRNGKey(8),
                                   (4000, 2), options=ODEOptions(solver="rk4", num_steps=10))
    np.testing.assert_allclose(samples.mean(0), MEAN, atol=0.06)
    np.testing.assert_allclose(samples.std(0), SCALE, atol=0.04)


def test_minibatch_ot_coupling_is_the_optimal_permutation():
    rng = np.random.default_rng(0)
    x0 = jnp.asarray(rng.standard_normal((6, 2)), jnp.float32)
    x1 = jnp.asarray(rng.standard_normal((6, 2)) + 1.0, jnp.float32)
    perm = np.asarray(jax.jit(ot_pairing)(x0, x1))
    assert sorted(perm.tolist()) == list(range(6))

    def cost(p):
        return float(np.sum((np.asarray(x0)[list(p)] - np.asarray(x1)) ** 2))

    best = min(cost(p) for p in itertools.permutations(range(6)))
    np.testing.assert_allclose(cost(perm), best, rtol=1e-5)
    assert cost(perm) < cost(range(6))
    # On a larger batch it lowers the mean squared pairing distance well below independence.
    x0 = jax.random.normal(jax.random.PRNGKey(9), (128, 2))
    x1 = jax.random.normal(jax.random.PRNGKey(10), (128, 2)) * 0.5
    perm = ot_pairing(x0, x1)
    assert sorted(np.asarray(perm).tolist()) == list(range(128))
    paired = float(jnp.mean(jnp.sum((x0[perm] - x1) ** 2, 1)))
    independent = float(jnp.mean(jnp.sum((x0 - x1) ** 2, 1)))
    assert paired < 0.5 * independent  # population values: 0.5 against 2.5


@pytest.mark.parametrize("coupling", ["independent", "ot"])
def test_training_a_tiny_flow_matching_model_lowers_its_loss(coupling):
    flow = cnf_flow((2,), hidden=(32, 32), embed_dim=8,
                    options=ODEOptions(solver="rk4", num_steps=8))
    data = MEAN + SCALE * jax.random.normal(jax.random.PRNGKey(11), (64 * 60, 2))
    params = jax.jit(flow.init)(jax.random.PRNGKey(12), data[:4])
    loss = flow_matching_loss(cnf_velocity(flow), coupling=coupling)
    mesh = data_mesh(1)
    optimizer = optax.adam(1e-2)
    state = replicate(TrainState.create(params, optimizer, jax.random.PRNGKey(13)), mesh)
    step = make_train_step(loss, optimizer, mesh, steps_per_call=20)
    losses = []
    for i in range(3):
        batch = np.asarray(data[i * 1280:(i + 1) * 1280]).reshape(20, 64, 2)
        state, metrics = step(state, shard_batch(batch, mesh, leading_axes=1))
        losses.append(float(np.mean(metrics["loss"])))
    assert losses[-1] < 0.8 * losses[0], losses
    if coupling == "independent":  # the trained field's CNF likelihood, same bijector
        log_p = jax.jit(flow.apply)(state.params, data[:16])
        assert np.all(np.isfinite(log_p)) and float(log_p.mean()) > -5.0


def test_bad_input_names_the_valid_choices():
    with pytest.raises(ValueError, match="valid choices: ot, vp"):
        flow_matching_loss(marginal_velocity("ot"), path="rectified")
    with pytest.raises(ValueError, match="valid choices: independent, ot"):
        flow_matching_loss(marginal_velocity("ot"), coupling="sinkhorn")
    with pytest.raises(ValueError, match="sigma_min"):
        flow_matching_loss(marginal_velocity("ot"), sigma_min=1.5)
    x = jnp.zeros((2, 2))
    with pytest.raises(ValueError, match="valid choices: dopri5, euler, heun"):
        cnf_flow((2,), options=ODEOptions(solver="rk45")).init(jax.random.PRNGKey(0), x)
    with pytest.raises(ValueError, match="num_steps must be an integer >= 1"):
        CNFBijector(linear, jnp.asarray(A), options=ODEOptions(solver="rk4", num_steps=0))
    with pytest.raises(ValueError, match="needs a key"):
        CNFBijector(linear, jnp.asarray(A), options=ODEOptions(trace="hutchinson"))
    with pytest.raises(ValueError, match="vector events"):
        cnf_flow((4, 4, 1))
