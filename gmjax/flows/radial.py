"""Radial flow (Rezende & Mohamed, "Variational inference with normalizing flows", ICML 2015).

Defined in the sampling direction z -> x (distrax's forward), where the map
and its log-det are closed-form:

    f(z) = z + beta h(r) (z - z0),  h(r) = 1 / (alpha + r),  r = |z - z0|,
    log|det df/dz| = (D - 1) log(1 + beta h) + log(1 + beta h + beta h'(r) r),

where 1 + beta h + beta h' r = 1 + beta alpha / (alpha + r)^2. f is
invertible when beta >= -alpha: alpha = softplus(alpha_hat) > 0 and
beta = -alpha + softplus(beta_hat) (appendix A.2). Inverse: rho = |x - z0| =
r (1 + beta / (alpha + r)) is a quadratic in r with one non-negative root,
solved in closed form.
"""

from __future__ import annotations

from typing import Tuple

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp

from gmjax.flows.base import FlowLayer
from gmjax.flows.registry import register_layer


def _radial_scale(alpha, alpha_plus_beta, r):  # 1 + beta h(r)
    return (alpha_plus_beta + r) / (alpha + r)


def _radial_log_det(alpha, alpha_plus_beta, r, dim):
    gap = alpha_plus_beta
    return ((dim - 1) * (jnp.log(gap + r) - jnp.log(alpha + r))
            + jnp.log(r * (2.0 * alpha + r) + gap * alpha) - 2.0 * jnp.log(alpha + r))


# The maps below are jitted at module level, so that un-jitted callers reuse
# one compilation per shape and dtype instead of compiling every small op on
# every call; under an outer jit they are inlined.


@jax.jit
def _radial_forward(z0, alpha, alpha_plus_beta, z):  # [D], [], [], [..., D]
    diff = z - z0
    r = jnp.linalg.norm(diff, axis=-1)  # [...]
    scale = _radial_scale(alpha, alpha_plus_beta, r)
    return z0 + scale[..., None] * diff, _radial_log_det(alpha, alpha_plus_beta, r, z.shape[-1])


@jax.jit
def _radial_inverse(z0, alpha, alpha_plus_beta, x):
    diff = x - z0
    rho = jnp.linalg.norm(diff, axis=-1)  # [...]
    # rho (alpha + r) = r (alpha + beta + r): r^2 + q r - rho alpha = 0 with
    # q = alpha + beta - rho; its root r >= 0, written to avoid cancellation
    # for either sign of q.
    q = alpha_plus_beta - rho
    root = jnp.sqrt(q ** 2 + 4.0 * rho * alpha)
    r = jnp.where(q > 0, 2.0 * rho * alpha / (q + root), 0.5 * (root - q))
    scale = _radial_scale(alpha, alpha_plus_beta, r)
    return z0 + diff / scale[..., None], -_radial_log_det(alpha, alpha_plus_beta, r, x.shape[-1])


class RadialBijector(distrax.Bijector):
    """``f(z) = z + beta (z - z0) / (alpha + |z - z0|)`` on ``[..., D]``, alpha > 0, beta >= -alpha.

    Takes ``alpha_plus_beta`` (>= 0) rather than beta, so that every factor is
    a sum of non-negative terms even where beta is within rounding of -alpha:
    1 + beta h = (alpha + beta + r) / (alpha + r) and
    1 + beta alpha / (alpha + r)^2 = (r (2 alpha + r) + (alpha + beta) alpha) / (alpha + r)^2.
    """

    def __init__(self, z0: jax.Array, alpha: jax.Array, alpha_plus_beta: jax.Array):
        super().__init__(event_ndims_in=1)
        self.params = (z0, alpha, alpha_plus_beta)  # [D], [], []

    def forward_and_log_det(self, z: jax.Array) -> Tuple[jax.Array, jax.Array]:
        return _radial_forward(*self.params, z)

    def inverse_and_log_det(self, x: jax.Array) -> Tuple[jax.Array, jax.Array]:
        return _radial_inverse(*self.params, x)


class Radial(FlowLayer):
    """Radial flow layer on vectors ``[n, dim]``; alpha_hat = beta_hat = 0 gives beta = 0."""

    dim: int

    def setup(self):
        self.z0 = self.param("z0", nn.initializers.zeros, (self.dim,))
        self.alpha_hat = self.param("alpha_hat", nn.initializers.zeros, ())
        self.beta_hat = self.param("beta_hat", nn.initializers.zeros, ())

    def bijector(self) -> distrax.Bijector:
        # beta = -alpha + softplus(beta_hat), passed as alpha + beta.
        return RadialBijector(self.z0, jax.nn.softplus(self.alpha_hat),
                              jax.nn.softplus(self.beta_hat))


@register_layer("radial", event_rank=1, identity_at_init=True)
def _radial(event_shape: Tuple[int, ...], index: int) -> FlowLayer:
    """Radial flow, z + beta (z - z0) / (alpha + |z - z0|) (Rezende & Mohamed, 2015)."""
    del index
    return Radial(dim=event_shape[0])
