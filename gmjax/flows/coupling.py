"""Coupling layers: NICE additive (Dinh et al., 2015) and RealNVP affine (Dinh et al., 2017).

With a binary mask m (1: pass through and condition), the affine coupling is

    y = m * x + (1 - m) * (x * exp(s(m * x)) + t(m * x)),
    log|det dy/dx| = sum_i (1 - m_i) s_i(m * x),

and the additive coupling is the special case s = 0 (volume preserving).
Both are distrax ``MaskedCoupling`` bijectors around ``ScalarAffine`` /
``Shift``, with a Flax MLP conditioner whose zero-initialized last layer makes
the layer the identity at initialization.
"""

from __future__ import annotations

from typing import Callable, Sequence, Tuple

import distrax
import jax
import jax.numpy as jnp

from gmjax.flows.base import FlowLayer
from gmjax.flows.registry import register_layer
from gmjax.nets.mlp import MLP


def half_mask(dim: int, parity: int) -> jax.Array:
    """``[True]*ceil(dim/2) + [False]*...`` (parity 0) or its complement (parity 1)."""
    mask = jnp.arange(dim) < (dim + 1) // 2
    return mask if parity % 2 == 0 else ~mask


def alternating_mask(dim: int, parity: int) -> jax.Array:
    """``[True, False, True, ...]`` (parity 0) or its complement (parity 1)."""
    mask = jnp.arange(dim) % 2 == 0
    return mask if parity % 2 == 0 else ~mask


VECTOR_MASKS = {"half": half_mask, "alternating": alternating_mask}


def affine_coupling_bijector(mask: jax.Array, conditioner: Callable[[jax.Array], jax.Array],
                             max_log_scale: float = 3.0) -> distrax.Bijector:
    """Affine coupling on ``[..., *event]``; the conditioner outputs ``[..., *event, 2]``.

    The log-scale is ``max_log_scale * tanh(raw / max_log_scale)``: bounded for
    stable training, and close to ``raw`` near zero.
    """

    def inner(params: jax.Array) -> distrax.Bijector:
        shift, raw = params[..., 0], params[..., 1]
        log_scale = max_log_scale * jnp.tanh(raw / max_log_scale)
        return distrax.ScalarAffine(shift=shift, log_scale=log_scale)

    return distrax.MaskedCoupling(mask=mask, conditioner=conditioner, bijector=inner,
                                  event_ndims=mask.ndim)


def additive_coupling_bijector(mask: jax.Array,
                               conditioner: Callable[[jax.Array], jax.Array]) -> distrax.Bijector:
    """NICE's additive coupling ``y = x + (1 - m) * t(m * x)``; log-det 0."""
    return distrax.MaskedCoupling(mask=mask, conditioner=conditioner,
                                  bijector=lambda shift: distrax.Shift(shift),
                                  event_ndims=mask.ndim)


class VectorCoupling(FlowLayer):
    """Affine (RealNVP) or additive (NICE) coupling on vectors ``[n, dim]``."""

    dim: int
    parity: int = 0
    mask: str = "half"
    hidden: Sequence[int] = (64, 64)
    additive: bool = False

    def setup(self):
        width = 1 if self.additive else 2
        self.net = MLP((*self.hidden, width * self.dim), zero_init_last=True)

    def bijector(self) -> distrax.Bijector:
        mask = VECTOR_MASKS[self.mask](self.dim, self.parity)
        if self.additive:
            return additive_coupling_bijector(mask, self.net)

        def conditioner(x):
            return self.net(x).reshape(*x.shape, 2)

        return affine_coupling_bijector(mask, conditioner)


@register_layer("affine_coupling", event_rank=1, identity_at_init=True)
def _affine_coupling(event_shape: Tuple[int, ...], index: int, mask: str = "half",
                     hidden: Sequence[int] = (64, 64)) -> FlowLayer:
    """RealNVP affine coupling on vectors (Dinh et al., 2017)."""
    return VectorCoupling(dim=event_shape[0], parity=index, mask=mask, hidden=tuple(hidden))


@register_layer("additive_coupling", event_rank=1, identity_at_init=True)
def _additive_coupling(event_shape: Tuple[int, ...], index: int, mask: str = "half",
                       hidden: Sequence[int] = (64, 64)) -> FlowLayer:
    """NICE additive coupling on vectors (Dinh et al., 2015)."""
    return VectorCoupling(dim=event_shape[0], parity=index, mask=mask, hidden=tuple(hidden),
                          additive=True)
