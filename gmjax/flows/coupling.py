"""Affine coupling layers (RealNVP, Dinh, Sohl-Dickstein and Bengio, 2017).

With a binary mask m, the affine coupling bijector is

    y = m * x + (1 - m) * (x * exp(s(m * x)) + t(m * x)),
    log|det dy/dx| = sum_i (1 - m_i) s_i(m * x),

where s and t are outputs of one conditioner network. It is built from
distrax's own ``MaskedCoupling`` and ``ScalarAffine``.
"""

from __future__ import annotations

from typing import Callable

import distrax
import jax
import jax.numpy as jnp


def half_mask(dim: int, parity: int) -> jax.Array:
    """``[True]*ceil(dim/2) + [False]*...`` (parity 0) or its complement (parity 1)."""
    mask = jnp.arange(dim) < (dim + 1) // 2
    return mask if parity % 2 == 0 else ~mask


def affine_coupling(mask: jax.Array, conditioner: Callable[[jax.Array], jax.Array],
                    max_log_scale: float = 3.0) -> distrax.Bijector:
    """An affine coupling bijector on vectors ``[..., dim]``.

    Args:
      mask: boolean ``[dim]``; ``True`` entries pass through and condition the rest.
      conditioner: maps ``[..., dim]`` to ``[..., 2 * dim]`` (shift, raw log-scale).
      max_log_scale: the log-scale is ``max_log_scale * tanh(raw / max_log_scale)``,
        bounded for stable training and close to ``raw`` near zero.
    """
    dim = mask.shape[-1]

    def inner(params: jax.Array) -> distrax.Bijector:
        shift, raw = params[..., :dim], params[..., dim:]
        log_scale = max_log_scale * jnp.tanh(raw / max_log_scale)
        return distrax.ScalarAffine(shift=shift, log_scale=log_scale)

    return distrax.MaskedCoupling(mask=mask, conditioner=conditioner, bijector=inner)
