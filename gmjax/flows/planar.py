"""Planar flow (Rezende & Mohamed, "Variational inference with normalizing flows", ICML 2015).

Defined in the sampling direction z -> x (distrax's forward), where the map
and its log-det are closed-form; that is the direction variational inference
uses:

    f(z) = z + u_hat tanh(w^T z + b),
    log|det df/dz| = log|1 + tanh'(w^T z + b) w^T u_hat|.

f is invertible when w^T u_hat > -1, enforced by
u_hat = u + (m(w^T u) - w^T u) w / |w|^2 with m(a) = -1 + softplus(a)
(appendix A.1). The inverse (densities of external data) is computed to float
precision with a fixed number of steps, so it jits: a = w^T z + b solves the
monotone scalar equation a + (w^T u_hat) tanh(a) = w^T x + b
(``gmjax.flows.tanh_equation``), then z = x - u_hat tanh(a).
"""

from __future__ import annotations

from typing import Tuple

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp

from gmjax.flows.base import FlowLayer
from gmjax.flows.registry import register_layer
from gmjax.flows.tanh_equation import solve_tanh_equation, tanh_prime

# The maps below are jitted at module level, so that un-jitted callers reuse
# one compilation per shape and dtype instead of compiling every small op on
# every call; under an outer jit they are inlined.


@jax.jit
def _planar_forward(u_hat, w, b, z):  # [D], [D], [], [..., D]
    a = z @ w + b  # [...]
    return z + u_hat * jnp.tanh(a)[..., None], jnp.log1p(tanh_prime(a) * jnp.dot(w, u_hat))


@jax.jit
def _planar_inverse(u_hat, w, b, x):
    a = solve_tanh_equation(x @ w + b, jnp.dot(w, u_hat), 1.0, 0.0)  # a = w^T z + b
    return x - u_hat * jnp.tanh(a)[..., None], -jnp.log1p(tanh_prime(a) * jnp.dot(w, u_hat))


class PlanarBijector(distrax.Bijector):
    """``f(z) = z + u_hat tanh(w^T z + b)`` on ``[..., D]``; ``w^T u_hat > -1`` is assumed."""

    def __init__(self, u_hat: jax.Array, w: jax.Array, b: jax.Array):
        super().__init__(event_ndims_in=1)
        self.params = (u_hat, w, b)  # [D], [D], []

    def forward_and_log_det(self, z: jax.Array) -> Tuple[jax.Array, jax.Array]:
        return _planar_forward(*self.params, z)

    def inverse_and_log_det(self, x: jax.Array) -> Tuple[jax.Array, jax.Array]:
        return _planar_inverse(*self.params, x)


def planar_u_hat(u: jax.Array, w: jax.Array) -> jax.Array:
    """``u_hat = u + (m(w^T u) - w^T u) w / |w|^2``, m(a) = -1 + softplus(a).

    Then ``w^T u_hat = m(w^T u) > -1``, which makes the planar map invertible.
    """
    wu = jnp.dot(w, u)
    return u + (-1.0 + jax.nn.softplus(wu) - wu) * w / jnp.dot(w, w)


class Planar(FlowLayer):
    """Planar flow layer on vectors ``[n, dim]``."""

    dim: int

    def setup(self):
        init = nn.initializers.normal(self.dim ** -0.5)
        self.u = self.param("u", init, (self.dim,))
        self.w = self.param("w", init, (self.dim,))
        self.b = self.param("b", nn.initializers.zeros, ())

    def bijector(self) -> distrax.Bijector:
        return PlanarBijector(planar_u_hat(self.u, self.w), self.w, self.b)


@register_layer("planar", event_rank=1, identity_at_init=False)
def _planar(event_shape: Tuple[int, ...], index: int) -> FlowLayer:
    """Planar flow, z + u_hat tanh(w^T z + b) (Rezende & Mohamed, 2015)."""
    del index
    return Planar(dim=event_shape[0])
