"""Sylvester flow (van den Berg et al., "Sylvester normalizing flows for variational
inference", UAI 2018).

Defined in the sampling direction z -> x (distrax's forward), where the map
and its log-det are closed-form:

    f(z) = z + Q R tanh(R_tilde Q^T z + b),
    log|det df/dz| = sum_i log|1 + tanh'(a_i) r_tilde_ii r_ii|,  a = R_tilde Q^T z + b,

with Q orthogonal and R, R_tilde upper triangular (M = D). f is invertible
when r_tilde_ii r_ii > -1 / sup tanh' = -1; here r_ii = tanh(.) and
r_tilde_ii = tanh(.). Q is a product of Householder reflections (H-SNF) or
alternates between the identity and the reversal permutation (T-SNF).

Inverse (densities of external data), to float precision with a fixed number
of steps so it jits: with v = Q^T z, Q^T x = v + R tanh(R_tilde v + b) is
upper triangular in v, so D sweeps of scalar solves (each v_i given v_{>i},
``gmjax.flows.tanh_equation``) recover v exactly; one Newton step on the
whole triangular system from the gradient-stopped solution then gives exact
implicit gradients.
"""

from __future__ import annotations

from typing import Optional, Tuple

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp

from gmjax.flows.base import FlowLayer
from gmjax.flows.registry import register_layer
from gmjax.flows.tanh_equation import solve_tanh_equation, tanh_prime


@jax.jit
def _sylvester_sweeps(target, r, r_tilde, b):  # v with v + R tanh(R_tilde v + b) = target
    upper_r, upper_rt = jnp.triu(r, 1), jnp.triu(r_tilde, 1)

    def sweep(_, v):
        # Every v_i given the current v_{>i}; after sweep p the last p are exact.
        known = jnp.tanh(v @ r_tilde.T + b) @ upper_r.T  # sum_{j>i} r_ij tanh(a_j)
        shift = v @ upper_rt.T + b  # sum_{k>i} r_tilde_ik v_k + b_i
        return solve_tanh_equation(target - known, jnp.diagonal(r), jnp.diagonal(r_tilde), shift)

    return jax.lax.fori_loop(0, target.shape[-1], sweep, target)


def _sylvester_log_det(r, r_tilde, a):  # a = R_tilde Q^T z + b, [..., D]
    diag = jnp.diagonal(r) * jnp.diagonal(r_tilde)
    return jnp.sum(jnp.log1p(tanh_prime(a) * diag), axis=-1)


# The maps below are jitted at module level (as is the loop above), so that
# un-jitted callers reuse one compilation per shape and dtype instead of
# compiling every small op on every call; under an outer jit they are inlined.


@jax.jit
def _sylvester_forward(q, r, r_tilde, b, z):  # [D, D] x 3, [D], [..., D]
    a = (z @ q) @ r_tilde.T + b
    return z + jnp.tanh(a) @ r.T @ q.T, _sylvester_log_det(r, r_tilde, a)


@jax.jit
def _sylvester_inverse(q, r, r_tilde, b, x):
    target = x @ q  # Q^T x = v + R tanh(R_tilde v + b), [..., D]
    v = _sylvester_sweeps(*(jax.lax.stop_gradient(p) for p in (target, r, r_tilde, b)))
    # One Newton step on the whole triangular system: exact implicit gradients.
    a = v @ r_tilde.T + b
    residual = v + jnp.tanh(a) @ r.T - target
    jac = jnp.eye(v.shape[-1], dtype=v.dtype) + (r * tanh_prime(a)[..., None, :]) @ r_tilde
    v = v - jax.scipy.linalg.solve_triangular(jac, residual[..., None], lower=False)[..., 0]
    return v @ q.T, -_sylvester_log_det(r, r_tilde, v @ r_tilde.T + b)


class SylvesterBijector(distrax.Bijector):
    """``f(z) = z + Q R tanh(R_tilde Q^T z + b)`` on ``[..., D]``.

    Q is orthogonal, R and R_tilde upper triangular.

    ``r_tilde_ii r_ii > -1`` is assumed (it makes f invertible for tanh).
    """

    def __init__(self, q: jax.Array, r: jax.Array, r_tilde: jax.Array, b: jax.Array):
        super().__init__(event_ndims_in=1)
        self.params = (q, r, r_tilde, b)  # [D, D] x 3, [D]

    def forward_and_log_det(self, z: jax.Array) -> Tuple[jax.Array, jax.Array]:
        return _sylvester_forward(*self.params, z)

    def inverse_and_log_det(self, x: jax.Array) -> Tuple[jax.Array, jax.Array]:
        return _sylvester_inverse(*self.params, x)


def householder_product(vectors: jax.Array) -> jax.Array:
    """``Q = H_1 ... H_K`` with ``H_k = I - 2 v_k v_k^T / |v_k|^2``; ``vectors`` is ``[K, D]``."""
    q = jnp.eye(vectors.shape[-1], dtype=vectors.dtype)
    for v in vectors:
        q = q - 2.0 * jnp.outer(q @ v, v) / jnp.dot(v, v)
    return q


class Sylvester(FlowLayer):
    """Sylvester flow layer on vectors ``[n, dim]`` (M = D).

    Attributes:
      dim: event size.
      orthogonal: ``"householder"`` (Q from ``num_reflections`` reflections) or
        ``"triangular"`` (Q the identity on even ``parity``, the reversal on odd).
      num_reflections: Householder reflections (default ``dim``).
      parity: stack index, for the triangular variant.

    R starts at zero, so the layer starts as the identity.
    """

    dim: int
    orthogonal: str = "householder"
    num_reflections: Optional[int] = None
    parity: int = 0

    def setup(self):
        if self.orthogonal not in ("householder", "triangular"):
            raise ValueError(f"unknown orthogonal {self.orthogonal!r}; valid choices: "
                             "householder, triangular")
        init = nn.initializers.normal(self.dim ** -0.5)
        shape = (self.dim, self.dim)
        self.r_upper = self.param("r_upper", nn.initializers.zeros, shape)
        self.r_diag = self.param("r_diag", nn.initializers.zeros, (self.dim,))
        self.r_tilde_upper = self.param("r_tilde_upper", init, shape)
        self.r_tilde_diag = self.param("r_tilde_diag", init, (self.dim,))
        self.b = self.param("b", nn.initializers.zeros, (self.dim,))
        if self.orthogonal == "householder":
            count = self.num_reflections or self.dim
            self.reflections = self.param("reflections", nn.initializers.normal(1.0),
                                          (count, self.dim))

    def bijector(self) -> distrax.Bijector:
        r = jnp.triu(self.r_upper, 1) + jnp.diag(jnp.tanh(self.r_diag))
        r_tilde = jnp.triu(self.r_tilde_upper, 1) + jnp.diag(jnp.tanh(self.r_tilde_diag))
        if self.orthogonal == "householder":
            q = householder_product(self.reflections)
        else:
            q = jnp.eye(self.dim, dtype=r.dtype)
            q = q if self.parity % 2 == 0 else q[::-1]
        return SylvesterBijector(q, r, r_tilde, self.b)


@register_layer("sylvester", event_rank=1, identity_at_init=True)
def _sylvester(event_shape: Tuple[int, ...], index: int, orthogonal: str = "householder",
               num_reflections: Optional[int] = None) -> FlowLayer:
    """Sylvester flow, z + Q R tanh(R_tilde Q^T z + b) (van den Berg et al., 2018)."""
    return Sylvester(dim=event_shape[0], orthogonal=orthogonal, num_reflections=num_reflections,
                     parity=index)
