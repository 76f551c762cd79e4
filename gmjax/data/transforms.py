"""Pixel pre-processing as pure functions: scaling, binarization, dequantization, logit.

All take jax or numpy arrays; the ones that draw noise take an explicit jax
key (``binarize_dynamic``, ``dequantize_uniform``) so they can sit inside a
jitted loss. ``binarize_static`` is a one-off, host-side data set transform and
uses numpy.

Likelihood bookkeeping for 8-bit images with ``D`` pixels: if
``u = dequantize_uniform(key, x)`` lies in ``[0, 1)^D`` and a model has
continuous density ``p_U``, then ``log P(x) >= E_u[log p_U(u)] - D log 256``
(Theis et al., "A note on the evaluation of generative models", ICLR 2016).
If the model is trained on ``y = logit_transform(u)`` with density ``p_Y``,
``log p_U(u) = log p_Y(y) + log_det``, with ``log_det`` as returned. Bits per
dimension are ``-(log p_Y(y) + log_det - D log 256) / (D log 2)``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np


def scale_uint8(x):  # [...] uint8 -> [...] float32
    """Maps 8-bit intensities ``0..255`` to ``[0, 1]``: ``x / 255``."""
    return jnp.asarray(x, jnp.float32) / 255.0


def binarize_static(x, rng_or_threshold: np.random.Generator | float = 0.5) -> np.ndarray:
    """Binarizes ``x`` in ``[0, 1]`` once, for a fixed binary data set (numpy, float32).

    With a ``np.random.Generator``, each pixel is an independent
    ``Bernoulli(x)`` draw, the stochastic binarization of Salakhutdinov &
    Murray ("On the quantitative analysis of deep belief networks", ICML 2008);
    the same generator state gives the same data set. With a number ``t``,
    pixels become ``1[x > t]``.
    """
    x = np.asarray(x, dtype=np.float32)
    if isinstance(rng_or_threshold, np.random.Generator):
        return (rng_or_threshold.uniform(size=x.shape) < x).astype(np.float32)
    return (x > float(rng_or_threshold)).astype(np.float32)


def binarize_dynamic(key: jax.Array, x):  # [...] in [0, 1] -> [...] in {0, 1}
    """A fresh ``Bernoulli(x)`` draw per pixel on every call (dynamic binarization).

    Used inside a loss so every step sees a new binarization of the same
    grey-level images, as in the IWAE experiments (Burda et al., ICLR 2016).
    """
    x = jnp.asarray(x)
    dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32
    return jax.random.bernoulli(key, x).astype(dtype)


def dequantize_uniform(key: jax.Array, x, num_bins: int = 256):  # [...] ints -> [...] float32
    """Uniform dequantization ``(x + u) / num_bins``, ``u ~ U[0, 1)`` per value.

    Integer ``x = k`` in ``0..num_bins-1`` lands in ``[k / num_bins, (k + 1) / num_bins)``
    (Uria et al., "RNADE", NeurIPS 2013; Theis et al., ICLR 2016). The sum
    ``k + u`` is clamped below ``k + 1`` so float32 rounding never reaches the
    next bin.

    The noise is drawn flat and reshaped: with jax's (default) partitionable
    threefry the numbers are the same as a draw of shape ``x.shape``, but on
    jax 0.10's CPU backend a draw of rank 3 or more takes seconds to compile
    and a flat one well under one.
    """
    x = jnp.asarray(x).astype(jnp.float32)
    u = jax.random.uniform(key, (x.size,), jnp.float32).reshape(x.shape)
    upper = jnp.nextafter(x + 1.0, x)  # largest float32 below k + 1
    return jnp.minimum(x + u, upper) / num_bins


def logit_transform(x, alpha: float = 0.05):  # [batch, ...] -> ([batch, ...], [batch])
    """``y = logit(alpha + (1 - 2 alpha) x)`` and its per-example log-Jacobian.

    With ``p = alpha + (1 - 2 alpha) x``, ``dy/dx = (1 - 2 alpha) / (p (1 - p))``
    elementwise, so ``log_det = sum_i [log(1 - 2 alpha) - log p_i - log(1 - p_i)]``,
    summed over all axes but the first (batch) axis; the Jacobian is diagonal,
    so this is exact. Squeezing ``x in [0, 1]`` into ``[alpha, 1 - alpha]``
    keeps the logit finite at 0 and 1. RealNVP (Dinh et al., "Density
    estimation using Real NVP", ICLR 2017, Sec. 4.1) uses ``alpha = 0.05`` with
    ``alpha + (1 - alpha) x``; the symmetric ``1 - 2 alpha`` form used here is
    that of MAF (Papamakarios et al., NeurIPS 2017).
    """
    x = jnp.asarray(x)
    _check_alpha(alpha)
    p = alpha + (1.0 - 2.0 * alpha) * x
    y = jnp.log(p) - jnp.log1p(-p)
    log_jac = math.log(1.0 - 2.0 * alpha) - jnp.log(p) - jnp.log1p(-p)
    return y, _sum_per_example(log_jac)


def inverse_logit_transform(y, alpha: float = 0.05):  # [batch, ...] -> ([batch, ...], [batch])
    """Inverse of ``logit_transform``: ``x = (sigmoid(y) - alpha) / (1 - 2 alpha)``.

    Returns ``(x, log_det)`` with ``log_det = sum_i [log s_i + log(1 - s_i) -
    log(1 - 2 alpha)]``, ``s = sigmoid(y)``, the negative of the forward
    ``log_det`` at ``x``. ``log s = -softplus(-y)`` and ``log(1 - s) =
    -softplus(y)`` keep it finite for large ``|y|``.
    """
    y = jnp.asarray(y)
    _check_alpha(alpha)
    x = (jax.nn.sigmoid(y) - alpha) / (1.0 - 2.0 * alpha)
    log_jac = -jax.nn.softplus(-y) - jax.nn.softplus(y) - math.log(1.0 - 2.0 * alpha)
    return x, _sum_per_example(log_jac)


def _sum_per_example(values):  # [batch, ...] -> [batch]
    if values.ndim == 0:
        raise ValueError("expected a batch of examples [batch, ...], got a scalar")
    return jnp.sum(values.reshape(values.shape[0], -1), axis=-1)


def _check_alpha(alpha: float) -> None:
    if not 0.0 <= alpha < 0.5:
        raise ValueError(f"alpha must lie in [0, 0.5), got {alpha}")
