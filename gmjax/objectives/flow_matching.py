"""Conditional flow matching: a velocity field regressed without simulating the ODE.

Flow matching (Lipman, Chen, Ben-Hamu, Nickel and Le, 2023, "Flow matching for
generative modeling") picks a probability path p_t from the base p_0 = N(0, I)
to the data p_1 through conditional paths x_t = a(t) x1 + b(t) x0, x0 ~ p_0,
x1 ~ data, whose velocity u_t(x_t | x0, x1) = a'(t) x1 + b'(t) x0 is known, and
regresses a net on it (the conditional flow-matching loss, their Theorem 2):

    L_CFM(theta) = E_{t ~ U[0, 1], x0, x1} || v_theta(x_t, t) - u_t(x_t | x0, x1) ||^2.

Its gradient equals that of the regression on the marginal velocity, and its
minimum is E ||E[u | x_t, t] - u||^2 (the conditional variance of the target),
reached at the marginal field, whose time-1 map carries p_0 to p_1.

Paths (``FM_PATHS``):

* ``"ot"``: the straight optimal-transport path (Lipman et al. eq. 20-23),
  x_t = (1 - (1 - sigma_min) t) x0 + t x1, target x1 - (1 - sigma_min) x0.
* ``"vp"``: the variance-preserving diffusion path (Lipman et al. eq. 19, with
  the data at t = 1): a(t) = alpha(1 - t), b(t) = sqrt(1 - alpha(1 - t)^2),
  alpha(s) = exp(-T(s) / 2), T(s) = beta_min s + (beta_max - beta_min) s^2 / 2.
  b'(t) diverges at t = 1, so t is drawn from U[0, 1 - t_eps].

Couplings (``FM_COUPLINGS``): ``"independent"`` draws x0 and x1 independently;
``"ot"`` is the minibatch optimal-transport coupling of Tong, Malkin, Huguet,
Zhang, Rector-Brooks, Fatras, Wolf and Bengio (2024, "Improving and generalizing
flow-based generative models with minibatch optimal transport"): within each
batch the noise rows are re-paired with the data rows by the permutation that
minimizes sum_i ||x0_pi(i) - x1_i||^2, an exact assignment problem solved by
``scipy.optimize.linear_sum_assignment`` on the host through
``jax.pure_callback`` (O(n^3) per batch; batches of a few hundred cost
milliseconds).

The trained field is sampled by an ODE solve from t = 0 to 1, and its exact
likelihood comes from the same solve with the integrated divergence
(``gmjax.flows.continuous``): ``flow_matching_log_prob``.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

from gmjax.flows.base import Flow
from gmjax.flows.continuous import CNFBijector
from gmjax.flows.ode import ODEOptions, integrate

PyTree = Any
VelocityApply = Callable[[PyTree, jax.Array, jax.Array], jax.Array]  # (params, x [n,d], t [n])

FM_PATHS = ("ot", "vp")
FM_COUPLINGS = ("independent", "ot")


def _check_choice(kind: str, value: str, valid) -> None:
    if value not in valid:
        raise ValueError(f"unknown flow-matching {kind} {value!r}; valid choices: "
                         f"{', '.join(valid)}")


def path_coefficients(path: str, t: jax.Array, *, sigma_min: float = 0.0,
                      beta_min: float = 0.1, beta_max: float = 20.0
                      ) -> Tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """``(a, b, a', b')`` at times t for ``x_t = a(t) x1 + b(t) x0``."""
    _check_choice("path", path, FM_PATHS)
    t = jnp.asarray(t)
    if path == "ot":
        one = jnp.ones_like(t)
        return t, 1.0 - (1.0 - sigma_min) * t, one, -(1.0 - sigma_min) * one

    def coefficients(t):
        s = 1.0 - t
        alpha = jnp.exp(-0.5 * (beta_min * s + 0.5 * (beta_max - beta_min) * s ** 2))
        return alpha, jnp.sqrt(1.0 - alpha ** 2)

    (a, b), (da, db) = jax.jvp(coefficients, (t,), (jnp.ones_like(t),))
    return a, b, da, db


def _assignment(cost: np.ndarray) -> np.ndarray:
    rows, cols = scipy.optimize.linear_sum_assignment(np.asarray(cost, np.float64))
    perm = np.empty_like(cols)
    perm[cols] = rows  # data row j is paired with noise row perm[j]
    return perm.astype(np.int32)


def ot_pairing(x0: jax.Array, x1: jax.Array) -> jax.Array:
    """The permutation ``perm [n]`` minimizing ``sum_j ||x0[perm[j]] - x1[j]||^2``: an exact
    assignment (``scipy.optimize.linear_sum_assignment`` via ``jax.pure_callback``).

    Minibatch OT (Tong et al., 2024). No gradient flows through the choice.
    """
    x0 = jax.lax.stop_gradient(x0.reshape(x0.shape[0], -1))
    x1 = jax.lax.stop_gradient(x1.reshape(x1.shape[0], -1))
    cost = jnp.sum((x1[:, None, :] - x0[None, :, :]) ** 2, axis=-1)  # [n1, n0]
    return jax.pure_callback(_assignment, jax.ShapeDtypeStruct((x0.shape[0],), jnp.int32),
                             cost.T, vmap_method="sequential")


def flow_matching_loss(velocity_apply: VelocityApply, *, path: str = "ot",
                       sigma_min: float = 0.0, coupling: str = "independent",
                       beta_min: float = 0.1, beta_max: float = 20.0, t_eps: float = 1e-3
                       ) -> Callable[[PyTree, jax.Array, jax.Array], Tuple[jax.Array, dict]]:
    """The conditional flow-matching loss (Lipman et al. 2023, eq. 9 and 23)

        L = E_{t, x0 ~ N(0, I), x1} || v_theta(x_t, t) - (a'(t) x1 + b'(t) x0) ||^2,
        x_t = a(t) x1 + b(t) x0,

    the squared norm summed over the event and averaged over the batch; with
    ``coupling="ot"`` the batch's (x0, x1) pairs come from the minibatch OT plan
    (Tong et al. 2024).

    Args:
      velocity_apply: ``(params, x [n, d], t [n]) -> [n, d]``, e.g. ``cnf_velocity(flow)``.
      path: ``"ot"`` or ``"vp"``.
      sigma_min: the OT path's end width (0 gives the straight line between x0 and x1).
      coupling: ``"independent"`` or ``"ot"``.
      beta_min, beta_max: the VP path's linear noise schedule.
      t_eps: the VP path draws t from U[0, 1 - t_eps].

    Returns:
      ``loss(params, x1, key) -> (scalar, metrics)``.
    """
    _check_choice("path", path, FM_PATHS)
    _check_choice("coupling", coupling, FM_COUPLINGS)
    if not 0.0 <= sigma_min < 1.0:
        raise ValueError(f"sigma_min must be in [0, 1), got {sigma_min}")
    t_max = 1.0 - t_eps if path == "vp" else 1.0

    def loss(params: PyTree, x1: jax.Array, key: jax.Array):
        t_key, noise_key = jax.random.split(key)
        n = x1.shape[0]
        x0 = jax.random.normal(noise_key, x1.shape, x1.dtype)
        if coupling == "ot":
            x0 = x0[ot_pairing(x0, x1)]
        t = jax.random.uniform(t_key, (n,), x1.dtype, 0.0, t_max)
        a, b, da, db = path_coefficients(path, t, sigma_min=sigma_min, beta_min=beta_min,
                                         beta_max=beta_max)
        expand = (slice(None),) + (None,) * (x1.ndim - 1)
        xt = a[expand] * x1 + b[expand] * x0
        target = da[expand] * x1 + db[expand] * x0
        residual = velocity_apply(params, xt, t) - target
        value = jnp.mean(jnp.sum(residual.reshape(n, -1) ** 2, axis=1))
        return value, {"loss": value}

    return loss


def cnf_velocity(flow: Flow) -> VelocityApply:
    """``(params, x, t) -> v(x, t)`` of a ``Flow`` whose one layer is a ``CNF``
    (``gmjax.flows.continuous.cnf_flow``): the field flow matching trains, the same one the
    flow's bijector integrates for samples and likelihoods."""

    def apply(params: PyTree, x: jax.Array, t: jax.Array) -> jax.Array:
        return flow.apply(params, x, t, method=lambda m, y, s: m.layers[0].velocity(y, s))

    return apply


def flow_matching_log_prob(velocity_apply: VelocityApply, params: PyTree, x: jax.Array, *,
                           options: ODEOptions = ODEOptions(),
                           key: Optional[jax.Array] = None) -> jax.Array:
    """``log p_1(x) = log N(z; 0, I) + int_1^0 tr(dv/dy) dt``, z the backward solve of x
    from t = 1 to 0 (the CNF likelihood of a flow-matching field; ``key`` for Hutchinson).

    ``[n, *event] -> [n]``.
    """

    def velocity(y, t, p):
        return velocity_apply(p, y, jnp.broadcast_to(t, (y.shape[0],)))

    bijector = CNFBijector(velocity, params, event_ndims=x.ndim - 1, options=options, key=key)
    z, log_det = bijector.inverse_and_log_det(x)
    flat = z.reshape(z.shape[0], -1)
    log_base = -0.5 * jnp.sum(flat ** 2, axis=1) - 0.5 * flat.shape[1] * np.log(2 * np.pi)
    return log_base + log_det


def flow_matching_sample(velocity_apply: VelocityApply, params: PyTree, key: jax.Array,
                         shape: Tuple[int, ...], *, options: ODEOptions = ODEOptions()
                         ) -> jax.Array:
    """Samples ``[n, *event]`` (``shape``): z ~ N(0, I) solved from t = 0 to 1."""

    def velocity(y, t, p):
        return velocity_apply(p, y, jnp.broadcast_to(t, (y.shape[0],)))

    z = jax.random.normal(key, shape)
    return integrate(  # the state only: no divergence
        velocity, z, 0.0, 1.0, args=params, options=options, log_det=False).y


__all__ = ["FM_COUPLINGS", "FM_PATHS", "cnf_velocity", "flow_matching_log_prob",
           "flow_matching_loss", "flow_matching_sample", "ot_pairing", "path_coefficients"]
