"""Input checks shared by the metrics: float dtype and [n, d] sample / feature shapes."""

from __future__ import annotations

import chex
import jax.numpy as jnp
import numpy as np


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


def check_features(x: chex.ArrayLike, y: chex.ArrayLike, min_rows: int = 2) -> None:
    """Raises unless x [n, d] and y [m, d] share d and have at least ``min_rows`` rows each.

    The numpy counterpart of `check_samples`, for the float64 feature metrics.
    """
    x_shape, y_shape = np.shape(x), np.shape(y)
    if len(x_shape) != 2 or len(y_shape) != 2 or x_shape[1] != y_shape[1]:
        raise ValueError(f"need features [n, d] and [m, d], got {x_shape} and {y_shape}")
    if x_shape[0] < min_rows or y_shape[0] < min_rows:
        raise ValueError(f"need at least {min_rows} rows in each feature set, got "
                         f"{x_shape[0]} and {y_shape[0]}")
