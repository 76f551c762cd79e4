"""Blocked sums over all pairs of two point sets.

Kernel two-sample statistics need sums such as

    S = sum_{i, j} f(|x_i - y_j|^2)

over every pair of rows of x [n, d] and y [m, d]. Forming the n x m matrix at
once is impossible for n = m = 10^5 and wasteful for 10^4, so `pair_sum`
walks over blocks of rows of x with `jax.lax.map`: each step holds one
[block, m] tile, reduces it to per-row sums, and the per-row sums are added at
the end. Summing rows first and then the row sums (a two-level sum) keeps
the float32 rounding error far below that of one running total over n m
terms, which matters because MMD and energy distance are small differences of
large sums: at 10^4 x 10^4 points, float32 MMD^2 is within 2e-8 of float64.
"""

from __future__ import annotations

from typing import Callable

import chex
import jax
import jax.numpy as jnp

# Squared distances of points with at most this many coordinates are summed
# coordinate by coordinate (exact zero on the diagonal, one fused loop); wider
# points use |x|^2 + |y|^2 - 2 x.y, which turns the work into a matrix product.
_DIRECT_MAX_DIM = 16

# Default tile size in elements: 2^21 float32 values are 8 MiB, small enough
# to stay in cache-friendly territory (larger tiles measured slower on CPU).
_TILE_ELEMENTS = 1 << 21


def squared_distances(x: chex.Array, y: chex.Array) -> chex.Array:
    """All squared Euclidean distances, D_ij = |x_i - y_j|^2.

    Args:
        x: [n, d] points.
        y: [m, d] points.

    Returns:
        [n, m] squared distances, never negative.
    """
    chex.assert_rank([x, y], 2)
    dim = x.shape[1]
    if dim <= _DIRECT_MAX_DIM:
        d2 = jnp.zeros((x.shape[0], y.shape[0]), jnp.result_type(x, y))
        for k in range(dim):
            d2 = d2 + jnp.square(x[:, k, None] - y[None, :, k])
        return d2
    xx = jnp.sum(jnp.square(x), axis=1)  # [n]
    yy = jnp.sum(jnp.square(y), axis=1)  # [m]
    xy = jnp.matmul(x, y.T, precision=jax.lax.Precision.HIGHEST)  # [n, m]
    return jnp.maximum(xx[:, None] + yy[None, :] - 2.0 * xy, 0.0)


def default_block_size(num_rows: int, num_cols: int) -> int:
    """Rows per block so that one [block, num_cols] tile has about 2^21 entries."""
    return int(max(1, min(num_rows, _TILE_ELEMENTS // max(num_cols, 1))))


def pair_sum(
    fn: Callable[[chex.Array], chex.Array],
    x: chex.Array,
    y: chex.Array,
    *,
    exclude_diagonal: bool = False,
    block_size: int | None = None,
) -> chex.Array:
    """S = sum_{i, j} fn(|x_i - y_j|^2), computed one block of rows at a time.

    Args:
        fn: elementwise function of squared distances (an RBF kernel, sqrt, ...).
        x: [n, d] points.
        y: [m, d] points.
        exclude_diagonal: drop the pairs i == j. Used when y is x, for the
            U-statistic sums over i != j; then the diagonal is left out exactly
            instead of being subtracted afterwards.
        block_size: rows of x per block; by default about 2^21 / m.

    Returns:
        Scalar sum, in the floating dtype of the inputs.
    """
    chex.assert_rank([x, y], 2)
    chex.assert_axis_dimension(y, 1, x.shape[1])
    n, dim = x.shape
    m = y.shape[0]
    if exclude_diagonal and n != m:
        raise ValueError(f"exclude_diagonal needs x and y of equal length, got {n} and {m}")
    block = default_block_size(n, m) if block_size is None else int(block_size)
    if block < 1:
        raise ValueError(f"block_size must be positive, got {block}")
    num_blocks = -(-n // block)
    padded = num_blocks * block
    x_blocks = jnp.pad(x, ((0, padded - n), (0, 0))).reshape(num_blocks, block, dim)
    starts = jnp.arange(num_blocks) * block  # [num_blocks]
    cols = jnp.arange(m)  # [m]

    def row_sums(args):
        x_block, start = args  # [block, d], []
        values = fn(squared_distances(x_block, y))  # [block, m]
        rows = start + jnp.arange(block)  # [block]
        keep = (rows < n)[:, None]  # [block, 1]
        if exclude_diagonal:
            keep = keep & (rows[:, None] != cols[None, :])
        return jnp.sum(jnp.where(keep, values, 0.0), axis=1)  # [block]

    sums = jax.lax.map(row_sums, (x_blocks, starts))  # [num_blocks, block]
    return jnp.sum(sums)
