"""Two-sample distances between a sample x [n, d] and a sample y [m, d].

* Unbiased MMD^2 with Gaussian (RBF) kernels: one bandwidth, the median
  heuristic, or an equal-weight mixture of bandwidths (Gretton et al., 2012).
* Energy distance (Szekely and Rizzo, 2013).
* The "adjusted" form of any distance, which subtracts the value a perfect
  sampler would get from the same number of points (sliced Wasserstein lives
  in `sliced.py`).
* `METRICS`, a registry of these distances under their result-file names.

The kernel sums run in blocks of rows (see `pairwise.pair_sum`), so 10^4 x
10^4 points never hold a 10^8-entry matrix. Every function here is a pure
function of arrays; the public ones are jitted, with shape-like arguments
static.
"""

from __future__ import annotations

import functools
from typing import Callable

import chex
import jax
import jax.numpy as jnp

from gmjax.metrics.checks import as_float, check_samples
from gmjax.metrics.kernels import median_heuristic, rbf_kernel
from gmjax.metrics.pairwise import pair_sum
from gmjax.metrics.sliced import sliced_wasserstein
from gmjax.registry import Registry

# Multiples of the median-heuristic bandwidth used by `mmd_rbf_mixture` when no
# bandwidths are given.
DEFAULT_BANDWIDTH_SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)


def _unbiased_mmd2(
    kernel: Callable[[chex.Array], chex.Array],
    x: chex.Array,  # [n, d]
    y: chex.Array,  # [m, d]
    block_size: int | None,
) -> chex.Array:
    """MMD_u^2 of Gretton et al. (2012), eq. 3, for a kernel given as k(d^2)."""
    n, m = x.shape[0], y.shape[0]
    kxx = pair_sum(kernel, x, x, exclude_diagonal=True, block_size=block_size)
    kyy = pair_sum(kernel, y, y, exclude_diagonal=True, block_size=block_size)
    kxy = pair_sum(kernel, x, y, block_size=block_size)
    return kxx / (n * (n - 1)) + kyy / (m * (m - 1)) - 2.0 * kxy / (n * m)


@functools.partial(jax.jit, static_argnames=("block_size",))
def mmd_rbf(
    x: chex.Array, y: chex.Array, bandwidth: chex.Numeric, *, block_size: int | None = None
) -> chex.Array:
    """Unbiased squared MMD with the Gaussian kernel k(x, y) = exp(-|x - y|^2 / (2 sigma^2)).

        MMD_u^2 = 1/(n(n-1)) sum_{i != j} k(x_i, x_j) + 1/(m(m-1)) sum_{i != j} k(y_i, y_j)
                  - 2/(nm) sum_{i, j} k(x_i, y_j)

    (Gretton et al., 2012, "A kernel two-sample test", JMLR, eq. 3). The
    estimator is unbiased for MMD^2, so it is often slightly negative when x and
    y come from the same distribution.

    Args:
        x: [n, d] sample, n >= 2.
        y: [m, d] sample, m >= 2.
        bandwidth: scalar sigma > 0.
        block_size: rows per block of the pair sums (default: about 2^21 / m).

    Returns:
        Scalar MMD_u^2.
    """
    x, y = as_float(x), as_float(y)
    check_samples(x, y, min_rows=2)
    bandwidths = jnp.reshape(jnp.asarray(bandwidth, x.dtype), (1,))  # [1]
    return _unbiased_mmd2(rbf_kernel(bandwidths), x, y, block_size)


@functools.partial(jax.jit, static_argnames=("block_size",))
def mmd_median(x: chex.Array, y: chex.Array, *, block_size: int | None = None) -> chex.Array:
    """Unbiased squared MMD with an RBF kernel whose bandwidth is `median_heuristic(x, y)`.

    This is the `mmd` of result files. See `mmd_rbf` for the estimator.

    Args:
        x: [n, d] sample, n >= 2.
        y: [m, d] sample, m >= 2.
        block_size: rows per block of the pair sums.

    Returns:
        Scalar MMD_u^2.
    """
    return mmd_rbf(x, y, median_heuristic(x, y), block_size=block_size)


@functools.partial(jax.jit, static_argnames=("block_size",))
def mmd_rbf_mixture(
    x: chex.Array,
    y: chex.Array,
    bandwidths: chex.Array | None = None,
    *,
    block_size: int | None = None,
) -> chex.Array:
    """Unbiased squared MMD with an equal-weight mixture of RBF kernels.

        k(x, y) = (1/B) sum_b exp(-|x - y|^2 / (2 sigma_b^2))

    A sum of characteristic kernels is characteristic, and the mixture is
    less sensitive to one badly chosen bandwidth (Li, Swersky and Zemel, 2015,
    "Generative moment matching networks"). The estimator is that of `mmd_rbf`.

    Args:
        x: [n, d] sample, n >= 2.
        y: [m, d] sample, m >= 2.
        bandwidths: [B] bandwidths sigma_b; by default the median heuristic
            times DEFAULT_BANDWIDTH_SCALES = (1/4, 1/2, 1, 2, 4).
        block_size: rows per block of the pair sums.

    Returns:
        Scalar MMD_u^2.
    """
    x, y = as_float(x), as_float(y)
    check_samples(x, y, min_rows=2)
    if bandwidths is None:
        scales = jnp.asarray(DEFAULT_BANDWIDTH_SCALES, x.dtype)
        bandwidths = median_heuristic(x, y) * scales
    bandwidths = jnp.asarray(bandwidths, x.dtype)
    chex.assert_rank(bandwidths, 1)
    return _unbiased_mmd2(rbf_kernel(bandwidths), x, y, block_size)


@functools.partial(jax.jit, static_argnames=("unbiased", "block_size"))
def energy_distance(
    x: chex.Array,
    y: chex.Array,
    *,
    unbiased: bool = True,
    block_size: int | None = None,
) -> chex.Array:
    """Energy distance D^2(P, Q) = 2 E|X - Y| - E|X - X'| - E|Y - Y'|.

    (Szekely and Rizzo, 2013, "Energy statistics: a class of statistics based on
    distances", J. Stat. Plan. Inference.) It is zero only when P = Q, and it
    equals 2 MMD^2 for the distance-induced kernel (Sejdinovic et al., 2013).
    The within-sample means are U-statistics, sum_{i != j} |x_i - x_j| / (n(n-1)),
    which makes the estimate unbiased; with `unbiased=False` they are
    V-statistics (divide by n^2), the default of `dcor.energy_distance`, which
    is never negative but is biased upwards.

    Args:
        x: [n, d] sample, n >= 2.
        y: [m, d] sample, m >= 2.
        unbiased: U-statistic (True) or V-statistic (False) estimate.
        block_size: rows per block of the pair sums.

    Returns:
        Scalar estimate of D^2 (not its square root).
    """
    x, y = as_float(x), as_float(y)
    check_samples(x, y, min_rows=2)
    n, m = x.shape[0], y.shape[0]
    dxx = pair_sum(jnp.sqrt, x, x, exclude_diagonal=True, block_size=block_size)
    dyy = pair_sum(jnp.sqrt, y, y, exclude_diagonal=True, block_size=block_size)
    dxy = pair_sum(jnp.sqrt, x, y, block_size=block_size)
    nxx, nyy = (n * (n - 1), m * (m - 1)) if unbiased else (n * n, m * m)
    return 2.0 * dxy / (n * m) - dxx / nxx - dyy / nyy


def adjusted(
    metric: Callable[[chex.Array, chex.Array], chex.Array],
    x: chex.Array,
    y_ref_1: chex.Array,
    y_ref_2: chex.Array,
) -> chex.Array:
    """metric(x, y_ref_1) - metric(y_ref_2, y_ref_1).

    y_ref_1 and y_ref_2 are two independent samples of the target, y_ref_2 of
    the same size as x. The subtracted term is what a perfect sampler scores
    with the same number of points, so the adjusted value is about 0 for a
    perfect sampler and removes the finite-sample bias of metrics such as the
    empirical Wasserstein distance. Random metrics should use the same key for
    both terms (e.g. `lambda a, b: sliced_wasserstein(a, b, key, p=1)`).
    """
    return metric(x, y_ref_1) - metric(y_ref_2, y_ref_1)


def adjusted_w1(
    x: chex.Array,
    y_ref_1: chex.Array,
    y_ref_2: chex.Array,
    key: chex.PRNGKey,
    *,
    num_projections: int = 128,
) -> chex.Array:
    """`adjusted` sliced Wasserstein-1, the `adjusted_w1` of result files.

    Both terms use the same `num_projections` directions drawn from `key`.
    """

    def metric(a: chex.Array, b: chex.Array) -> chex.Array:
        return sliced_wasserstein(a, b, key, p=1, num_projections=num_projections)

    return adjusted(metric, x, y_ref_1, y_ref_2)


def adjusted_mmd(
    x: chex.Array,
    y_ref_1: chex.Array,
    y_ref_2: chex.Array,
    bandwidth: chex.Numeric | None = None,
) -> chex.Array:
    """`adjusted` unbiased MMD^2, the `adjusted_mmd` of result files.

    Both terms use one kernel, so they are comparable: by default its
    bandwidth is `median_heuristic(y_ref_1, y_ref_2)`, which depends on the
    target only, not on the sampler being scored.
    """
    if bandwidth is None:
        bandwidth = median_heuristic(y_ref_1, y_ref_2)
    metric = functools.partial(mmd_rbf, bandwidth=bandwidth)
    return adjusted(metric, x, y_ref_1, y_ref_2)


# Every entry is called as metric(x [n, d], y [m, d], key) -> scalar, so a
# caller can tabulate all of them in one loop; the deterministic ones ignore
# the key.
METRICS: Registry[Callable[..., chex.Array]] = Registry("two-sample metric")


@METRICS.register("mmd")
def _mmd_entry(x: chex.Array, y: chex.Array, key: chex.PRNGKey | None = None) -> chex.Array:
    """Unbiased MMD^2, RBF kernel with median-heuristic bandwidth (`mmd_median`)."""
    del key
    return mmd_median(x, y)


@METRICS.register("energy_distance")
def _energy_entry(x: chex.Array, y: chex.Array, key: chex.PRNGKey | None = None) -> chex.Array:
    """Unbiased energy distance D^2 (`energy_distance`)."""
    del key
    return energy_distance(x, y)


@METRICS.register("sliced_wasserstein")
def _sliced_entry(x: chex.Array, y: chex.Array, key: chex.PRNGKey) -> chex.Array:
    """Sliced Wasserstein-1 with 128 directions drawn from `key`, as in `adjusted_w1`."""
    return sliced_wasserstein(x, y, key, p=1, num_projections=128)
