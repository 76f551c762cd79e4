"""Density and coverage with k-NN balls around the real points (Naeem et al., 2020)."""

from __future__ import annotations

import functools
from typing import NamedTuple

import chex
import jax
import numpy as np

from gmjax.metrics.checks import as_float, check_samples
from gmjax.metrics.neighbors import (DEFAULT_NUM_NEIGHBORS, ball_counts, knn_squared_radii,
                                     nearest_squared_distance)


class DensityCoverage(NamedTuple):
    density: float
    coverage: float


@functools.partial(jax.jit, static_argnames=("k", "block_size"))
def _counts_and_covered(real, fake, k, block_size):
    r2 = knn_squared_radii(real, k, block_size)  # [N]
    counts = ball_counts(fake, real, r2, block_size)  # [M]
    covered = nearest_squared_distance(real, fake, block_size) <= r2  # [N]
    return counts, covered  # [M], [N]; summed on the host in int64


def density_coverage(real: chex.Array, fake: chex.Array, k: int = DEFAULT_NUM_NEIGHBORS, *,
                     block_size: int | None = None) -> DensityCoverage:
    """Density and coverage with k-NN balls around the real points only.

        density  = 1/(k M) sum_j sum_i 1[|y_j - x_i| <= NND_k(x_i)]
        coverage = (1/N) sum_i 1[exists j: |y_j - x_i| <= NND_k(x_i)]

    (Naeem, Oh, Uh, Choi and Yoo, "Reliable fidelity and diversity metrics for
    generative models", ICML 2020). Density counts how many real balls hold
    each sample (about 1 when y follows the real distribution, can exceed 1);
    coverage is the share of real balls that hold at least one sample. Balls
    are closed here, which only matters for exact ties.
    """
    real, fake = as_float(real), as_float(fake)
    check_samples(real, fake, min_rows=1)
    if not 1 <= k < real.shape[0]:
        raise ValueError(f"need 1 <= k < N, got k={k} for N={real.shape[0]} real points")
    counts, covered = _counts_and_covered(real, fake, k, block_size)
    density = np.sum(np.asarray(counts, np.int64)) / (k * fake.shape[0])
    return DensityCoverage(float(density), float(np.mean(np.asarray(covered))))
