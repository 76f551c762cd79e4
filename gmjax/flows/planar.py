"""Residual flows of variational inference: planar, radial, Sylvester.

Planar and radial flows: Rezende & Mohamed (2015); Sylvester flows: van den
Berg et al. (2018).

All three are defined in the sampling direction z -> x (distrax's forward),
where the map and its log-det are closed-form; that is the direction
variational inference uses. Their inverses (densities of external data) are
computed numerically, to float precision, with a fixed number of steps so
they jit:

* planar, f(z) = z + u_hat tanh(w^T z + b),
  log|det| = log|1 + tanh'(w^T z + b) w^T u_hat|. Invertible when
  w^T u_hat > -1, enforced by u_hat = u + (m(w^T u) - w^T u) w / |w|^2 with
  m(a) = -1 + softplus(a) (Rezende & Mohamed, 2015, appendix A.1). Inverse:
  a = w^T z + b solves the monotone scalar equation
  a + (w^T u_hat) tanh(a) = w^T x + b, then z = x - u_hat tanh(a).
* radial, f(z) = z + beta h(r) (z - z0), h(r) = 1 / (alpha + r),
  r = |z - z0|, log|det| = (D - 1) log(1 + beta h) + log(1 + beta h + beta h'(r) r),
  where 1 + beta h + beta h' r = 1 + beta alpha / (alpha + r)^2. Invertible
  when beta >= -alpha: alpha = softplus(alpha_hat) > 0 and
  beta = -alpha + softplus(beta_hat) (appendix A.2). Inverse: rho = |x - z0| =
  r (1 + beta / (alpha + r)) is a quadratic in r with one non-negative root,
  solved in closed form.
* Sylvester, f(z) = z + Q R tanh(R_tilde Q^T z + b) with Q orthogonal and R,
  R_tilde upper triangular, log|det| = sum_i log|1 + tanh'(a_i) r_tilde_ii r_ii|,
  a = R_tilde Q^T z + b (van den Berg et al., 2018). Invertible when
  r_tilde_ii r_ii > -1 / sup tanh' = -1; here r_ii = tanh(.), r_tilde_ii = tanh(.).
  Q is a product of Householder reflections (H-SNF) or alternates between
  the identity and the reversal permutation (T-SNF). Inverse: with
  v = Q^T z, Q^T x = v + R tanh(R_tilde v + b) is upper triangular in v,
  so D sweeps of scalar solves (each v_i given v_{>i}) recover v exactly.

The scalar equations v + s tanh(k v + c) = t (with s k > -1, so the left side
increases) are solved by bisection on the bracket [t - |s|, t + |s|]
followed by one Newton step. The bisection runs on gradient-stopped inputs;
the Newton step, taken from the converged point, carries the implicit-function
gradient dv/dtheta = -(dg/dtheta) / g'(v), so gradients through the inverse
are exact and cheap.
"""

from __future__ import annotations

from typing import Optional, Tuple

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp

from gmjax.flows.base import FlowLayer
from gmjax.flows.registry import register_layer


def _tanh_prime(a: jax.Array) -> jax.Array:
    return 1.0 - jnp.tanh(a) ** 2


def _tanh_residual(v, t, s, k, c):
    return v + s * jnp.tanh(k * v + c) - t


@jax.jit
def _bisect_tanh_equation(t, s, k, c):
    def halve(_, bracket):
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        above = _tanh_residual(mid, t, s, k, c) > 0
        return jnp.where(above, lo, mid), jnp.where(above, mid, hi)

    steps = jnp.finfo(t.dtype).nmant + 8
    lo, hi = jax.lax.fori_loop(0, steps, halve, (t - jnp.abs(s), t + jnp.abs(s)))
    return 0.5 * (lo + hi)


def solve_tanh_equation(t: jax.Array, s: jax.Array, k: jax.Array, c: jax.Array) -> jax.Array:
    """Elementwise root v of ``g(v) = v + s tanh(k v + c) - t``, assuming ``s k > -1``.

    ``g`` increases (g' = 1 + s k tanh' > 0) and g(t - |s|) <= 0 <= g(t + |s|),
    so bisection brackets the root; enough halvings for the dtype's mantissa
    bring the bracket to rounding level, and a final Newton step from the
    gradient-stopped result gives exact implicit gradients.
    """
    t, s, k, c = jnp.broadcast_arrays(t, s, k, c)
    v = _bisect_tanh_equation(*(jax.lax.stop_gradient(a) for a in (t, s, k, c)))
    return v - _tanh_residual(v, t, s, k, c) / (1.0 + s * k * _tanh_prime(k * v + c))


@jax.jit
def _sylvester_sweeps(target, r, r_tilde, b):  # v with v + R tanh(R_tilde v + b) = target
    upper_r, upper_rt = jnp.triu(r, 1), jnp.triu(r_tilde, 1)

    def sweep(_, v):
        # Every v_i given the current v_{>i}; after sweep p the last p are exact.
        known = jnp.tanh(v @ r_tilde.T + b) @ upper_r.T  # sum_{j>i} r_ij tanh(a_j)
        shift = v @ upper_rt.T + b  # sum_{k>i} r_tilde_ik v_k + b_i
        return solve_tanh_equation(target - known, jnp.diagonal(r), jnp.diagonal(r_tilde), shift)

    return jax.lax.fori_loop(0, target.shape[-1], sweep, target)


# The maps below are jitted at module level (as are the loops above), so that
# un-jitted callers reuse one compilation per shape and dtype instead of
# compiling every small op on every call; under an outer jit they are inlined.


@jax.jit
def _planar_forward(u_hat, w, b, z):  # [D], [D], [], [..., D]
    a = z @ w + b  # [...]
    return z + u_hat * jnp.tanh(a)[..., None], jnp.log1p(_tanh_prime(a) * jnp.dot(w, u_hat))


@jax.jit
def _planar_inverse(u_hat, w, b, x):
    a = solve_tanh_equation(x @ w + b, jnp.dot(w, u_hat), 1.0, 0.0)  # a = w^T z + b
    return x - u_hat * jnp.tanh(a)[..., None], -jnp.log1p(_tanh_prime(a) * jnp.dot(w, u_hat))


class PlanarBijector(distrax.Bijector):
    """``f(z) = z + u_hat tanh(w^T z + b)`` on ``[..., D]``; ``w^T u_hat > -1`` is assumed."""

    def __init__(self, u_hat: jax.Array, w: jax.Array, b: jax.Array):
        super().__init__(event_ndims_in=1)
        self.params = (u_hat, w, b)  # [D], [D], []

    def forward_and_log_det(self, z: jax.Array) -> Tuple[jax.Array, jax.Array]:
        return _planar_forward(*self.params, z)

    def inverse_and_log_det(self, x: jax.Array) -> Tuple[jax.Array, jax.Array]:
        return _planar_inverse(*self.params, x)


def _radial_scale(alpha, alpha_plus_beta, r):  # 1 + beta h(r)
    return (alpha_plus_beta + r) / (alpha + r)


def _radial_log_det(alpha, alpha_plus_beta, r, dim):
    gap = alpha_plus_beta
    return ((dim - 1) * (jnp.log(gap + r) - jnp.log(alpha + r))
            + jnp.log(r * (2.0 * alpha + r) + gap * alpha) - 2.0 * jnp.log(alpha + r))


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


def _sylvester_log_det(r, r_tilde, a):  # a = R_tilde Q^T z + b, [..., D]
    diag = jnp.diagonal(r) * jnp.diagonal(r_tilde)
    return jnp.sum(jnp.log1p(_tanh_prime(a) * diag), axis=-1)


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
    jac = jnp.eye(v.shape[-1], dtype=v.dtype) + (r * _tanh_prime(a)[..., None, :]) @ r_tilde
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


@register_layer("planar", event_rank=1, identity_at_init=False)
def _planar(event_shape: Tuple[int, ...], index: int) -> FlowLayer:
    del index
    return Planar(dim=event_shape[0])


@register_layer("radial", event_rank=1, identity_at_init=True)
def _radial(event_shape: Tuple[int, ...], index: int) -> FlowLayer:
    del index
    return Radial(dim=event_shape[0])


@register_layer("sylvester", event_rank=1, identity_at_init=True)
def _sylvester(event_shape: Tuple[int, ...], index: int, orthogonal: str = "householder",
               num_reflections: Optional[int] = None) -> FlowLayer:
    return Sylvester(dim=event_shape[0], orthogonal=orthogonal, num_reflections=num_reflections,
                     parity=index)
