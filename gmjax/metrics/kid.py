"""KID: the unbiased squared MMD with a cubic polynomial kernel, averaged over subsets.

Computed in float64 numpy: it is a small difference of large numbers.
"""

from __future__ import annotations

import chex
import jax
import numpy as np

from gmjax.metrics.checks import check_features
from gmjax.metrics.results import MeanStd


def polynomial_kernel(x: np.ndarray, y: np.ndarray, degree: int = 3,
                      coef0: float = 1.0) -> np.ndarray:  # [n, d], [m, d] -> [n, m]
    """k(x, y) = (x . y / d + coef0)^degree, in float64."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return (x @ y.T / x.shape[1] + coef0) ** degree


def polynomial_mmd2(x: np.ndarray, y: np.ndarray, degree: int = 3,
                    coef0: float = 1.0) -> float:  # [n, d], [m, d] -> scalar
    """Unbiased MMD^2 (Gretton et al., 2012, eq. 3) with ``polynomial_kernel``.

        MMD_u^2 = sum_{i != j} k(x_i, x_j) / (n (n - 1)) + sum_{i != j} k(y_i, y_j) / (m (m - 1))
                  - 2 sum_{i, j} k(x_i, y_j) / (n m)

    Forms the n x n, m x m and n x m kernel matrices (meant for KID subsets).
    """
    check_features(x, y, min_rows=2)
    n, m = len(x), len(y)
    kxx = polynomial_kernel(x, x, degree, coef0)
    kyy = polynomial_kernel(y, y, degree, coef0)
    kxy = polynomial_kernel(x, y, degree, coef0)
    sum_xx = kxx.sum() - np.trace(kxx)
    sum_yy = kyy.sum() - np.trace(kyy)
    return float(sum_xx / (n * (n - 1)) + sum_yy / (m * (m - 1)) - 2.0 * kxy.sum() / (n * m))


def kid(x: np.ndarray, y: np.ndarray, key: chex.PRNGKey, *, num_subsets: int = 100,
        subset_size: int = 1000) -> MeanStd:
    """Kernel (Inception) distance: ``polynomial_mmd2`` averaged over random subsets.

        KID = (1/S) sum_s MMD_u^2(x[I_s], y[J_s]),   k(a, b) = (a . b / d + 1)^3

    (Bińkowski, Sutherland, Arbel and Gretton, "Demystifying MMD GANs", ICLR
    2018). Each subset draws ``min(subset_size, n, m)`` rows of x and of y
    without replacement (subsets are independent of each other). Unlike the
    Fréchet distance, the estimate is unbiased, so KID of two samples of one
    distribution is 0 on average at any sample size (single subsets can be
    negative).

    Returns:
      ``MeanStd`` over the ``num_subsets`` subset estimates.
    """
    check_features(x, y, min_rows=2)
    if num_subsets < 1 or subset_size < 2:
        raise ValueError(f"need num_subsets >= 1 and subset_size >= 2, got "
                         f"{num_subsets} and {subset_size}")
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    size = min(subset_size, len(x), len(y))
    key_x, key_y = jax.random.split(key)
    rows_x = _subsets(key_x, len(x), num_subsets, size)  # [S, size]
    rows_y = _subsets(key_y, len(y), num_subsets, size)
    estimates = [polynomial_mmd2(x[i], y[j]) for i, j in zip(rows_x, rows_y)]
    return MeanStd(float(np.mean(estimates)), float(np.std(estimates)))


def _subsets(key: chex.PRNGKey, n: int, num_subsets: int, size: int) -> np.ndarray:
    """``num_subsets`` independent draws of ``size`` of ``range(n)`` without replacement."""
    keys = jax.random.split(key, num_subsets)
    return np.asarray(jax.vmap(lambda k: jax.random.permutation(k, n)[:size])(keys))
