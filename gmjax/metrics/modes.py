"""Mode coverage of samples from a mixture target with known mode centres.

The protocol of VEEGAN (Srivastava, Valkov, Russell, Gutmann and Sutton, 2017,
"VEEGAN: reducing mode collapse in GANs using implicit variational learning")
and PacGAN (Lin, Khetan, Fanti and Oh, 2018): draw 2,500 samples,
assign each to its nearest mode centre, and call it *high quality* when it lies
within three standard deviations of that centre. Then

    modes_captured    = #{modes with >= min_count high-quality samples}
    high_quality_frac = #{high-quality samples} / n
    q_k               = #{high-quality samples at mode k} / #{high-quality samples}
    mode_weight_tv    = (1/2) sum_k |q_k - w_k|          (w: the true mode weights)
    reverse_kl        = KL(q || w) = sum_k q_k log(q_k / (w_k + eps))

The KL is "reverse" because the sampler's histogram q comes first, as in
PacGAN's reverse-KL column: it stays finite when modes are missed (q_k = 0
terms are 0 by the convention 0 log 0 = 0) and is log K when every sample sits
at one of K equally weighted modes. eps (default 1e-12) only matters when a
true weight is 0 and samples still land there, where it turns an infinite KL
into a large finite one.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from gmjax.metrics.checks import as_float
from gmjax.metrics.pairwise import squared_distances

# Samples per evaluation in the VEEGAN / PacGAN protocol.
DEFAULT_NUM_SAMPLES = 2500


class ModeMetrics(NamedTuple):
    """Mode-coverage summary; the scalar fields are named as in result files."""

    modes_captured: chex.Array  # [] int, modes with >= min_count high-quality samples
    high_quality_frac: chex.Array  # [] share of samples within num_sd sd of their mode
    mode_weights: chex.Array  # [num_modes] q, normalised over high-quality samples
    mode_weight_tv: chex.Array  # [] (1/2) sum |q - w|
    reverse_kl: chex.Array  # [] KL(q || w)
    counts: chex.Array  # [num_modes] int, high-quality samples per mode
    assignment: chex.Array  # [n] int, index of the nearest mode of every sample
    high_quality: chex.Array  # [n] bool


@functools.partial(jax.jit, static_argnames=("min_count",))
def mode_metrics(
    samples: chex.Array,
    centres: chex.Array,
    sd: chex.Numeric,
    weights: chex.Array | None = None,
    *,
    num_sd: chex.Numeric = 3.0,
    min_count: int = 1,
    eps: chex.Numeric = 1e-12,
) -> ModeMetrics:
    """Mode coverage and quality of `samples` for a mixture with the given modes.

    Each sample goes to the centre nearest in Euclidean distance; it is high
    quality when that distance is at most num_sd * sd of that mode.

    Args:
        samples: [n, d] samples (the protocol uses n = DEFAULT_NUM_SAMPLES).
        centres: [num_modes, d] mode centres.
        sd: per-mode standard deviation, a scalar or [num_modes].
        weights: [num_modes] true mode weights (normalised here); uniform by default.
        num_sd: radius of the high-quality ball in standard deviations.
        min_count: high-quality samples a mode needs to count as captured.
        eps: added to the true weights inside the log of the reverse KL.

    Returns:
        ModeMetrics. If no sample is high quality, q is all zeros and the
        distances take their worst values: mode_weight_tv = 1 and
        reverse_kl = inf, so producing nothing never scores better than
        producing something.
    """
    samples, centres = as_float(samples), as_float(centres)
    chex.assert_rank([samples, centres], 2)
    chex.assert_axis_dimension(centres, 1, samples.shape[1])
    num_modes = centres.shape[0]
    sd = jnp.broadcast_to(jnp.asarray(sd, samples.dtype), (num_modes,))  # [num_modes]
    if weights is None:
        weights = jnp.full((num_modes,), 1.0 / num_modes, samples.dtype)
    weights = jnp.asarray(weights, samples.dtype)
    chex.assert_shape(weights, (num_modes,))
    weights = weights / jnp.sum(weights)

    d2 = squared_distances(samples, centres)  # [n, num_modes]
    assignment = jnp.argmin(d2, axis=1)  # [n]
    nearest_d2 = jnp.take_along_axis(d2, assignment[:, None], axis=1)[:, 0]  # [n]
    high_quality = nearest_d2 <= jnp.square(num_sd * sd[assignment])  # [n]

    counts = jnp.zeros((num_modes,), jnp.int32).at[assignment].add(high_quality.astype(jnp.int32))
    num_high = jnp.sum(counts)
    any_high = num_high > 0
    q = counts.astype(samples.dtype) / jnp.maximum(num_high, 1)  # [num_modes]

    tv = jnp.where(any_high, 0.5 * jnp.sum(jnp.abs(q - weights)), 1.0)
    kl_terms = jax.scipy.special.xlogy(q, q) - jax.scipy.special.xlogy(q, weights + eps)
    reverse_kl = jnp.where(any_high, jnp.sum(kl_terms), jnp.inf)
    return ModeMetrics(
        modes_captured=jnp.sum(counts >= min_count),
        high_quality_frac=jnp.mean(high_quality.astype(samples.dtype)),
        mode_weights=q,
        mode_weight_tv=tv,
        reverse_kl=reverse_kl,
        counts=counts,
        assignment=assignment,
        high_quality=high_quality,
    )
