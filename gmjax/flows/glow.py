"""Glow's layers: ActNorm, the invertible 1x1 convolution (LU form), and squeeze.

Kingma & Dhariwal, "Glow: Generative flow with invertible 1x1 convolutions",
NeurIPS 2018, Sec. 3 and Table 1. All three act on images ``[h, w, c]`` and
are written, like the paper, in the normalizing direction x -> y (data to
latent), which is the *inverse* of the distrax bijectors the layers return.

* **ActNorm** (Sec. 3.1): a per-channel affine map ``y = s * x + b`` with
  ``log|det dy/dx| = h w sum_k log|s_k|``. Data-dependent initialization:
  ``s = 1 / std(x)``, ``b = -mean(x) / std(x)`` per channel over the init
  batch, so that the layer's outputs on that batch have zero mean and unit
  variance per channel.
* **Invertible 1x1 convolution** (Sec. 3.2): ``y_ij = W x_ij`` at every pixel,
  ``log|det dy/dx| = h w log|det W|``. In LU form ``W = P L (U + diag(s))``
  with P a fixed permutation, L unit lower triangular and U strictly upper
  triangular, ``log|det W| = sum_k log|s_k|`` costs O(c) instead of O(c^3).
  Here ``s = exp(log_s) > 0``: Glow keeps sign(s) fixed; instead the signs of
  the initial LU factors are moved into the columns, which keeps W orthogonal
  at initialization (log-det 0) and lets s never cross zero.
* **Squeeze** (Dinh et al., "Density estimation using Real NVP", ICLR 2017,
  Sec. 3.6): ``[h, w, c] -> [h/2, w/2, 4c]``, each 2x2 block of pixels
  becoming the channels of one pixel; a permutation, so log-det 0.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp

from gmjax.flows.base import FlowLayer
from gmjax.flows.registry import register_layer

ACTNORM_EPS = 1e-6  # added to the init batch's std, so constant channels stay finite


def _batch_shape(x: jax.Array) -> Tuple[int, ...]:
    return x.shape[:-3]


class ActNorm(FlowLayer):
    """Per-channel affine normalization with data-dependent initialization.

    Parameters: ``log_scale [c]`` (log s) and ``bias [c]`` (b) of the
    normalizing map ``y = exp(log_scale) * x + bias``. ``__call__`` during
    ``init`` sets them from its batch; any other init path starts at the
    identity.
    """

    num_channels: int

    @nn.compact
    def scale_and_bias(self, x: Optional[jax.Array] = None) -> Tuple[jax.Array, jax.Array]:
        """``(log_scale [c], bias [c])``; at init, from the batch ``x`` if given."""
        c = self.num_channels

        def moments():  # per-channel mean and std over every axis but the channel axis
            axes = tuple(range(x.ndim - 1))
            return jnp.mean(x, axis=axes), jnp.std(x, axis=axes) + ACTNORM_EPS

        def init_log_scale(key):
            del key
            return jnp.zeros((c,)) if x is None else -jnp.log(moments()[1])

        def init_bias(key):
            del key
            if x is None:
                return jnp.zeros((c,))
            mean, std = moments()
            return -mean / std

        return self.param("log_scale", init_log_scale), self.param("bias", init_bias)

    def bijector(self) -> distrax.Bijector:
        log_scale, bias = self.scale_and_bias()
        normalize = distrax.Block(distrax.ScalarAffine(shift=bias, log_scale=log_scale), ndims=3)
        return distrax.Inverse(normalize)

    def __call__(self, x: jax.Array) -> Tuple[jax.Array, jax.Array]:
        if self.is_initializing():
            self.scale_and_bias(jax.lax.stop_gradient(x))
        return self.bijector().inverse_and_log_det(x)


class LUChannelMatmul(distrax.Bijector):
    """``y_ij = W x_ij`` on the channels of ``[..., h, w, c]``, ``W = P L (U + diag(exp(log_s)))``.

    ``log|det dy/dx| = h w sum_k log_s_k``. ``lower`` and ``upper`` are full
    ``[c, c]`` arrays of which only the strict lower / strict upper triangles
    are used; ``permutation`` gives ``P`` by ``(P v)_k = v_{permutation[k]}``.
    """

    def __init__(self, permutation: jax.Array, lower: jax.Array, upper: jax.Array,
                 log_s: jax.Array):
        super().__init__(event_ndims_in=3, is_constant_jacobian=True)
        c = log_s.shape[-1]
        self.permutation = permutation  # [c] int
        self.lower = jnp.tril(lower, -1) + jnp.eye(c, dtype=lower.dtype)  # L, [c, c]
        self.upper = jnp.triu(upper, 1) + jnp.diag(jnp.exp(log_s))  # U + diag(s), [c, c]
        self.log_s = log_s

    def matrix(self) -> jax.Array:  # W, [c, c]
        return (self.lower @ self.upper)[self.permutation]

    def inverse_matrix(self) -> jax.Array:  # W^{-1} = (U + diag s)^{-1} L^{-1} P^T, [c, c]
        solve = jax.scipy.linalg.solve_triangular
        c = self.log_s.shape[-1]
        l_inv = solve(self.lower, jnp.eye(c, dtype=self.lower.dtype), lower=True,
                      unit_diagonal=True)
        # (A^{-1} P^T)_{ij} = A^{-1}_{i, permutation[j]} for A = L (U + diag s).
        return solve(self.upper, l_inv, lower=False)[:, self.permutation]

    def _log_det(self, x: jax.Array) -> jax.Array:  # -> batch shape
        h, w = x.shape[-3:-1]
        return jnp.broadcast_to(h * w * jnp.sum(self.log_s), _batch_shape(x)).astype(x.dtype)

    def forward_and_log_det(self, x: jax.Array) -> Tuple[jax.Array, jax.Array]:
        y = jnp.einsum("...c,dc->...d", x, self.matrix())
        return y, self._log_det(x)

    def inverse_and_log_det(self, y: jax.Array) -> Tuple[jax.Array, jax.Array]:
        x = jnp.einsum("...c,dc->...d", y, self.inverse_matrix())
        return x, -self._log_det(y)


def rotation_lu(key: jax.Array, c: int) -> Dict[str, jax.Array]:
    """``{lower, upper, log_s}`` with ``L (U + diag(exp(log_s)))`` a random orthogonal matrix.

    A Haar-random orthogonal Q (QR of a Gaussian matrix, signs fixed by
    diag(R)) is LU-factored with pivoting, ``Q = P' L U``; ``P'^T Q D`` with
    ``D = diag(sign(diag U))`` is orthogonal too, and its factors are ``L`` and
    ``U D``, whose diagonal ``|diag U|`` is positive.
    """
    q, r = jnp.linalg.qr(jax.random.normal(key, (c, c)))
    q = q * jnp.sign(jnp.diag(r))[None, :]
    _, lower, upper = jax.scipy.linalg.lu(q)
    diag = jnp.diag(upper)
    upper = jnp.triu(upper, 1) * jnp.sign(diag)[None, :]
    return {"lower": lower, "upper": upper, "log_s": jnp.log(jnp.abs(diag))}


class InvertibleConv1x1(FlowLayer):
    """Glow's invertible 1x1 convolution in LU form (normalizing direction ``y = W x``).

    Attributes:
      permutation: the fixed permutation P, ``(P v)_k = v_{permutation[k]}``.
        It is a static attribute (drawn by the builder from an explicit key)
        rather than a variable: it is never trained and needs no state.
    """

    permutation: Tuple[int, ...]

    def setup(self):
        # One orthogonal matrix initializes all three factors, so they are one parameter.
        self.lu = self.param("lu", lambda key: rotation_lu(key, len(self.permutation)))

    def bijector(self) -> distrax.Bijector:
        conv = LUChannelMatmul(jnp.asarray(self.permutation), **self.lu)
        return distrax.Inverse(conv)


def random_permutation(key: jax.Array, c: int) -> Tuple[int, ...]:
    return tuple(int(i) for i in jax.random.permutation(key, c))


class Squeeze(distrax.Bijector):
    """``[..., h, w, c] -> [..., h/2, w/2, 4c]``: channel ``(2 a + b) c + k`` of the
    output pixel ``(i, j)`` is channel k of the input pixel ``(2i + a, 2j + b)``.
    A permutation of the entries, so ``log|det| = 0``."""

    def __init__(self):
        super().__init__(event_ndims_in=3, is_constant_jacobian=True)

    def forward_and_log_det(self, x: jax.Array) -> Tuple[jax.Array, jax.Array]:
        *batch, h, w, c = x.shape
        if h % 2 or w % 2:
            raise ValueError(f"squeeze needs an even height and width, got {(h, w, c)}")
        y = x.reshape(*batch, h // 2, 2, w // 2, 2, c)
        y = jnp.moveaxis(y, -4, -3).reshape(*batch, h // 2, w // 2, 4 * c)
        return y, jnp.zeros(tuple(batch), x.dtype)

    def inverse_and_log_det(self, y: jax.Array) -> Tuple[jax.Array, jax.Array]:
        *batch, h, w, c4 = y.shape
        if c4 % 4:
            raise ValueError(f"unsqueeze needs a multiple of 4 channels, got {(h, w, c4)}")
        x = y.reshape(*batch, h, w, 2, 2, c4 // 4)
        x = jnp.moveaxis(x, -3, -4).reshape(*batch, 2 * h, 2 * w, c4 // 4)
        return x, jnp.zeros(tuple(batch), y.dtype)


class SqueezeLayer(FlowLayer):
    """Squeeze as a flow layer: the normalizing direction maps ``[h, w, c] -> [h/2, w/2, 4c]``.

    It changes the event shape, so it belongs inside a multi-scale flow
    (``gmjax.flows.multiscale``), not at the ends of a ``Flow``.
    """

    def bijector(self) -> distrax.Bijector:
        return distrax.Inverse(Squeeze())


@register_layer("actnorm", event_rank=3)
def _actnorm(event_shape: Tuple[int, ...], index: int) -> FlowLayer:
    """ActNorm, a per-channel affine map with data-dependent init (Kingma & Dhariwal, 2018)."""
    del index
    return ActNorm(num_channels=event_shape[-1])


@register_layer("invertible_conv1x1", event_rank=3)
def _invertible_conv1x1(event_shape: Tuple[int, ...], index: int, seed: int = 0) -> FlowLayer:
    """Invertible 1x1 convolution in LU form (Kingma & Dhariwal, 2018)."""
    key = jax.random.fold_in(jax.random.PRNGKey(seed), index)
    return InvertibleConv1x1(permutation=random_permutation(key, event_shape[-1]))


@register_layer("squeeze", event_rank=3, keeps_shape=False)
def _squeeze(event_shape: Tuple[int, ...], index: int) -> FlowLayer:
    """Squeeze, [h, w, c] -> [h/2, w/2, 4c] when normalizing (Dinh et al., 2017).

    It changes the event shape, so it belongs inside a multi-scale flow.
    """
    del index
    h, w, _ = event_shape
    if h % 2 or w % 2:
        raise ValueError(f"squeeze needs an even height and width, got {tuple(event_shape)}")
    return SqueezeLayer()
