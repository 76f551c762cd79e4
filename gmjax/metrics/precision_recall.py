"""Improved precision and recall with k-NN manifolds (Kynkäänniemi et al., 2019)."""

from __future__ import annotations

import functools
from typing import NamedTuple

import chex
import jax
import numpy as np

from gmjax.metrics.checks import as_float, check_samples
from gmjax.metrics.neighbors import DEFAULT_NUM_NEIGHBORS, ball_counts, knn_squared_radii


class PrecisionRecall(NamedTuple):
    precision: float
    recall: float


@functools.partial(jax.jit, static_argnames=("k", "block_size"))
def _on_manifolds(real, fake, k, block_size):
    fake_in_real = ball_counts(fake, real, knn_squared_radii(real, k, block_size), block_size)
    real_in_fake = ball_counts(real, fake, knn_squared_radii(fake, k, block_size), block_size)
    return fake_in_real > 0, real_in_fake > 0  # [M], [N]; shares are taken on the host


def precision_recall(real: chex.Array, fake: chex.Array, k: int = DEFAULT_NUM_NEIGHBORS, *,
                     block_size: int | None = None) -> PrecisionRecall:
    """Improved precision and recall with k-NN manifolds.

        precision = (1/M) sum_j 1[exists i: |y_j - x_i| <= NND_k(x_i)]
        recall    = (1/N) sum_i 1[exists j: |x_i - y_j| <= NND_k(y_j)]

    for real features x [N, d], generated features y [M, d], and NND_k the
    distance to the k-th nearest neighbour within the same set (Kynkäänniemi,
    Karras, Laine, Lehtinen and Aila, "Improved precision and recall metric
    for assessing generative models", NeurIPS 2019). Precision is the share of
    samples on the real manifold (quality), recall the share of real data on
    the generated manifold (coverage of modes).
    """
    real, fake = as_float(real), as_float(fake)
    check_samples(real, fake, min_rows=k + 1)
    on_real, on_fake = _on_manifolds(real, fake, k, block_size)
    return PrecisionRecall(float(np.mean(np.asarray(on_real))),
                           float(np.mean(np.asarray(on_fake))))
