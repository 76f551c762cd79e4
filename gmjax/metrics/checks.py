"""Input checks shared by the metrics: float dtype and [n, d] sample shapes."""

from __future__ import annotations

import chex
import jax.numpy as jnp


def as_float(a: chex.ArrayLike) -> chex.Array:
    """`a` as a JAX array of a floating dtype (integers become float32; float64 stays)."""
    a = jnp.asarray(a)
    return a.astype(jnp.promote_types(a.dtype, jnp.float32))


def check_samples(x: chex.Array, y: chex.Array, min_rows: int = 1) -> None:
    """Raises unless x [n, d] and y [m, d] are matrices of points of one dimension d."""
    chex.assert_rank([x, y], 2)
    chex.assert_axis_dimension(y, 1, x.shape[1])
    if x.shape[0] < min_rows or y.shape[0] < min_rows:
        raise ValueError(
            f"need at least {min_rows} points in each sample, got {x.shape[0]} and {y.shape[0]}"
        )
