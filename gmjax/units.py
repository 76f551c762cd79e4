"""Units of log-likelihoods: nats, bits and bits per dimension.

Objectives report bits per dimension as a loss and metrics report it as a
result, so the conversion sits here, below both.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

LOG2 = math.log(2.0)


def _as_float(a) -> jax.Array:
    a = jnp.asarray(a)
    return a.astype(jnp.promote_types(a.dtype, jnp.float32))


def nats_to_bits(nats) -> jax.Array:
    """bits = nats / log 2."""
    return _as_float(nats) / LOG2


def bits_to_nats(bits) -> jax.Array:
    """nats = bits * log 2."""
    return _as_float(bits) * LOG2


def bits_per_dim(nll_nats_per_example, num_dims: int, num_bins: int = 256) -> jax.Array:
    """Bits per dimension of dequantized discrete data from an NLL over [0, 1)-scaled data.

    Discrete data x in {0, ..., num_bins - 1}^D is dequantized as y = x + u,
    u ~ U[0, 1)^D, and the model density p_1 is fitted to y / num_bins in
    [0, 1)^D. The density of y itself is p(y) = p_1(y / num_bins) num_bins^(-D),
    so

        nll over [0, num_bins)^D = nll over [0, 1)^D + D log(num_bins),

    and E[-log p(y)] bounds the discrete NLL -log P(x) from above (Uria, Murray
    and Larochelle, 2013, "RNADE"; Theis, van den Oord and Bethge, 2016, "A note
    on the evaluation of generative models"). Bits per dimension is that NLL
    over D log 2:

        bpd = (nll_[0,1) + D log(num_bins)) / (D log 2).

    A uniform model on [0, 1)^D has nll_[0,1) = 0 and scores log2(256) = 8
    bits/dim for 8-bit data. Data scaled to another range [a, b) first needs
    nll_[0,1) = nll_[a,b) + D log(b - a) (e.g. D log 2 for [-1, 1)).

    Args:
        nll_nats_per_example: -log p_1(y / num_bins) in nats, a scalar or [n].
        num_dims: D, the number of dimensions of one example (e.g. 28 * 28).
        num_bins: number of discrete levels per dimension (256 for 8-bit).

    Returns:
        Bits per dimension, with the shape of `nll_nats_per_example`.
    """
    nll = _as_float(nll_nats_per_example)
    return (nll + num_dims * math.log(num_bins)) / (num_dims * LOG2)
