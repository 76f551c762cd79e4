"""k-nearest-neighbour radii and ball counts, a block of rows at a time.

The k-NN metrics (`precision_recall`, `density_coverage`) compare each point
with the k-NN balls of another set. Everything runs in jitted JAX over blocks
of rows (``lax.map``), so 10^4 x 10^4 points never hold the full distance
matrix. Squared radii are compared with squared distances as computed, so a
neighbour that defined a radius is always inside its ball (no sqrt rounding).
"""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp

from gmjax.metrics.checks import as_float
from gmjax.metrics.pairwise import default_block_size, squared_distances

DEFAULT_NUM_NEIGHBORS = 5  # k for precision / recall / density / coverage (Naeem et al.'s choice)


def map_row_blocks(fn, queries: chex.Array, block_size: int) -> chex.Array:
    """``fn`` applied to blocks of rows of ``queries`` [n, d] with ``lax.map``; outputs [n, ...]."""
    n, d = queries.shape
    num_blocks = -(-n // block_size)
    padded = jnp.pad(queries, ((0, num_blocks * block_size - n), (0, 0)))
    out = jax.lax.map(fn, padded.reshape(num_blocks, block_size, d))
    return out.reshape(num_blocks * block_size, *out.shape[2:])[:n]


def _block(block_size: int | None, rows: int, cols: int) -> int:
    return default_block_size(rows, cols) if block_size is None else int(block_size)


def knn_squared_radii(x: chex.Array, k: int, block_size: int | None) -> chex.Array:  # [n]
    """NND_k(x_i)^2 for every row (un-jitted; see `knn_radii`)."""
    if not 1 <= k < x.shape[0]:
        raise ValueError(f"need 1 <= k < n, got k={k} for n={x.shape[0]}")

    def kth(block):  # [b, d] -> [b]
        d2 = squared_distances(block, x)  # [b, n]
        # The k + 1 smallest include the point itself at distance 0. Taking the
        # min of top_k's values, not its column k, keeps XLA:CPU on its fast
        # top-k path (slicing the column measured 15x slower).
        return -jnp.min(jax.lax.top_k(-d2, k + 1)[0], axis=1)

    return map_row_blocks(kth, x, _block(block_size, x.shape[0], x.shape[0]))


@functools.partial(jax.jit, static_argnames=("k", "block_size"))
def knn_radii(x: chex.Array, k: int = DEFAULT_NUM_NEIGHBORS,
              block_size: int | None = None) -> chex.Array:  # [n, d] -> [n]
    """NND_k(x_i): distance from each x_i to its k-th nearest neighbour among the other rows.

    Ties count with multiplicity (a duplicate of x_i is a neighbour at distance 0).
    """
    x = as_float(x)
    chex.assert_rank(x, 2)
    return jnp.sqrt(knn_squared_radii(x, k, block_size))


def ball_counts(queries: chex.Array, centers: chex.Array, r2: chex.Array,
                block_size: int | None) -> chex.Array:  # [nq, d], [nc, d], [nc] -> [nq]
    """Per query, the number of closed balls ``|q - c_i|^2 <= r2_i`` that contain it (int32)."""

    def count(block):  # [b, d] -> [b]
        inside = squared_distances(block, centers) <= r2[None, :]  # [b, nc]
        return jnp.sum(inside, axis=1, dtype=jnp.int32)

    return map_row_blocks(count, queries, _block(block_size, queries.shape[0], centers.shape[0]))


def nearest_squared_distance(queries: chex.Array, points: chex.Array,
                             block_size: int | None) -> chex.Array:  # [nq, d], [np, d] -> [nq]
    """Per query, the squared distance to the nearest of ``points``."""

    def nearest(block):  # [b, d] -> [b]
        return jnp.min(squared_distances(block, points), axis=1)

    return map_row_blocks(nearest, queries, _block(block_size, queries.shape[0], points.shape[0]))
