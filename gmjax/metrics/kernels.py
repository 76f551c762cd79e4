"""Gaussian kernels as functions of squared distance, and the median-heuristic bandwidth."""

from __future__ import annotations

import functools
from typing import Callable

import chex
import jax
import jax.numpy as jnp

from gmjax.metrics.checks import as_float, check_samples
from gmjax.metrics.pairwise import squared_distances


def rbf_kernel(bandwidths: chex.Array) -> Callable[[chex.Array], chex.Array]:
    """The Gaussian (RBF) kernel as a function of squared distance, or a mixture of them.

        k(d^2) = (1/B) sum_b exp(-d^2 / (2 sigma_b^2))

    Args:
        bandwidths: [B] bandwidths sigma_b > 0 (B = 1 for a single kernel).

    Returns:
        An elementwise function of squared distances with k(0) = 1.
    """
    coefficients = 0.5 / jnp.square(bandwidths)  # [num_bandwidths]

    def kernel(d2: chex.Array) -> chex.Array:
        # A Python loop over the (static) number of bandwidths keeps the tile
        # computation one fused elementwise loop instead of a [block, m, b] array.
        total = jnp.exp(-coefficients[0] * d2)
        for b in range(1, coefficients.shape[0]):
            total = total + jnp.exp(-coefficients[b] * d2)
        return total / coefficients.shape[0]

    return kernel


@functools.partial(jax.jit, static_argnames=("max_points",))
def median_heuristic(x: chex.Array, y: chex.Array, *, max_points: int = 1000) -> chex.Array:
    """Median distance between distinct points of the pooled sample (Gretton et al., 2012, sec. 8).

        sigma = median{ |z_i - z_j| : i < j },   z = [x; y]

    The pooled sample is thinned to at most `max_points` rows by taking every
    k-th row (deterministic; rows of x come before rows of y, so both samples
    are represented in proportion), which keeps the cost at one sort of
    max_points^2 distances. If that median is 0 (more than half the pairs
    coincide) the mean distance is used, and 1.0 if all points coincide.

    Args:
        x: [n, d] sample.
        y: [m, d] sample.
        max_points: largest number of pooled rows used.

    Returns:
        Scalar bandwidth sigma for k(x, y) = exp(-|x - y|^2 / (2 sigma^2)).
    """
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2, got {max_points}")
    x, y = as_float(x), as_float(y)
    check_samples(x, y)
    z = jnp.concatenate([x, y], axis=0)  # [n + m, d]
    stride = -(-z.shape[0] // max_points)
    z = z[::stride]  # [p, d], p >= 2
    p = z.shape[0]
    num_pairs = p * (p - 1) // 2
    upper = jnp.arange(p)[:, None] < jnp.arange(p)[None, :]  # [p, p], pairs i < j
    distances = jnp.sqrt(squared_distances(z, z))  # [p, p]
    # The pairs i < j sort first; the rest are pushed to the end as +inf.
    ordered = jnp.sort(jnp.where(upper, distances, jnp.inf).ravel())  # [p * p]
    median = 0.5 * (ordered[(num_pairs - 1) // 2] + ordered[num_pairs // 2])
    mean = jnp.sum(jnp.where(upper, distances, 0.0)) / num_pairs
    return jnp.where(median > 0, median, jnp.where(mean > 0, mean, 1.0))
