"""Sample-quality metrics on the outputs of a feature network (a classifier).

Image generators are compared in the feature space of a classifier, not in
pixel space. Given features ``x [n, d]`` of real images and ``y [m, d]`` of
generated ones (or class probabilities ``[n, C]``), this module computes

* the Fréchet distance between Gaussians fitted to the two feature sets
  (FID, Heusel et al., 2017, when the features are Inception-v3's);
* KID, the unbiased squared MMD with the cubic polynomial kernel, averaged
  over random subsets (Bińkowski et al., 2018);
* k-NN precision and recall (Kynkäänniemi et al., 2019) and density and
  coverage (Naeem et al., 2020);
* the Inception Score (Salimans et al., 2016) and the class accuracy of a
  conditional model, from class probabilities.

In gmjax the feature network is a LeNet trained in-repo
(``gmjax.models.classifier``), so these numbers are *analogues* of FID, KID
and IS: comparable between runs that use the same feature network only, never
with values published for Inception features. Every result file that holds
them should also name the network (``FeatureNetwork.describe()``).

Quantities that are small differences of large numbers (the Fréchet distance,
KID) are computed in float64 numpy; the nearest-neighbour metrics run in
jitted JAX, a block of rows at a time, so 10^4 x 10^4 points never hold the
full distance matrix. Everything is a pure function of arrays.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import xlogy

from gmjax.metrics.checks import as_float, check_samples
from gmjax.metrics.pairwise import default_block_size, squared_distances

DEFAULT_NUM_NEIGHBORS = 5  # k for precision / recall / density / coverage (Naeem et al.'s choice)


class MeanStd(NamedTuple):
    """A statistic averaged over subsets (KID) or splits (IS): mean and std (ddof=0)."""

    mean: float
    std: float


class PrecisionRecall(NamedTuple):
    precision: float
    recall: float


class DensityCoverage(NamedTuple):
    density: float
    coverage: float


# --- Fréchet distance ---------------------------------------------------------


def gaussian_moments(features: np.ndarray  # [n, d]
                     ) -> tuple[np.ndarray, np.ndarray]:  # [d], [d, d]
    """Mean and unbiased covariance (divisor n - 1) of ``features``, in float64."""
    x = np.asarray(features, np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need features [n >= 2, d], got shape {x.shape}")
    return x.mean(axis=0), np.cov(x, rowvar=False, ddof=1).reshape(x.shape[1], x.shape[1])


def _psd_sqrt(a: np.ndarray) -> np.ndarray:  # [d, d] symmetric PSD -> [d, d]
    """Symmetric square root through ``a = U diag(w) U^T``; rounding negatives of w become 0."""
    w, u = np.linalg.eigh((a + a.T) / 2.0)
    return (u * np.sqrt(np.clip(w, 0.0, None))) @ u.T


def frechet_distance_gaussians(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray,
                               cov2: np.ndarray) -> float:
    """Squared Fréchet (2-Wasserstein) distance between N(mu1, cov1) and N(mu2, cov2).

        d^2 = |mu1 - mu2|^2 + tr(cov1 + cov2 - 2 (cov1 cov2)^{1/2})

    (Dowson and Landau, 1982; used as FID by Heusel et al., "GANs trained by a
    two time-scale update rule converge to a local Nash equilibrium", NeurIPS
    2017). The trace of the square root is the sum of the square roots of the
    eigenvalues of cov1 cov2, which are those of the symmetric PSD matrix
    S = cov1^{1/2} cov2 cov1^{1/2}; computing them with ``eigh`` of S keeps
    everything real (no complex ``sqrtm`` output to discard), in float64.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    d = mu1.shape[0]
    for name, a, shape in (("mu2", mu2, (d,)), ("cov1", cov1, (d, d)), ("cov2", cov2, (d, d))):
        if a.shape != shape:
            raise ValueError(f"{name} has shape {a.shape}, expected {shape}")
    root1 = _psd_sqrt(cov1)
    s = root1 @ cov2 @ root1
    eig = np.linalg.eigvalsh((s + s.T) / 2.0)
    trace_sqrt = np.sum(np.sqrt(np.clip(eig, 0.0, None)))
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt)


def frechet_distance(x: np.ndarray, y: np.ndarray) -> float:  # [n, d], [m, d] -> scalar
    """Fréchet distance between Gaussians fitted to two feature sets (FID analogue).

    ``frechet_distance_gaussians(*gaussian_moments(x), *gaussian_moments(y))``.
    The estimate is biased upwards at finite n (Chong and Forsyth, 2020), so
    compare values computed from the same numbers of points.
    """
    _check_features(x, y)
    return frechet_distance_gaussians(*gaussian_moments(x), *gaussian_moments(y))


# --- KID ----------------------------------------------------------------------


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
    _check_features(x, y, min_rows=2)
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
    _check_features(x, y, min_rows=2)
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


# --- k-NN precision / recall and density / coverage ---------------------------


def _map_row_blocks(fn, queries: chex.Array, block_size: int) -> chex.Array:
    """``fn`` applied to blocks of rows of ``queries`` [n, d] with ``lax.map``; outputs [n, ...]."""
    n, d = queries.shape
    num_blocks = -(-n // block_size)
    padded = jnp.pad(queries, ((0, num_blocks * block_size - n), (0, 0)))
    out = jax.lax.map(fn, padded.reshape(num_blocks, block_size, d))
    return out.reshape(num_blocks * block_size, *out.shape[2:])[:n]


def _block(block_size: int | None, rows: int, cols: int) -> int:
    return default_block_size(rows, cols) if block_size is None else int(block_size)


def _knn_squared_radii(x: chex.Array, k: int, block_size: int | None) -> chex.Array:  # [n]
    if not 1 <= k < x.shape[0]:
        raise ValueError(f"need 1 <= k < n, got k={k} for n={x.shape[0]}")

    def kth(block):  # [b, d] -> [b]
        d2 = squared_distances(block, x)  # [b, n]
        # The k + 1 smallest include the point itself at distance 0. Taking the
        # min of top_k's values, not its column k, keeps XLA:CPU on its fast
        # top-k path (slicing the column measured 15x slower).
        return -jnp.min(jax.lax.top_k(-d2, k + 1)[0], axis=1)

    return _map_row_blocks(kth, x, _block(block_size, x.shape[0], x.shape[0]))


@functools.partial(jax.jit, static_argnames=("k", "block_size"))
def knn_radii(x: chex.Array, k: int = DEFAULT_NUM_NEIGHBORS,
              block_size: int | None = None) -> chex.Array:  # [n, d] -> [n]
    """NND_k(x_i): distance from each x_i to its k-th nearest neighbour among the other rows.

    Ties count with multiplicity (a duplicate of x_i is a neighbour at distance 0).
    """
    x = as_float(x)
    chex.assert_rank(x, 2)
    return jnp.sqrt(_knn_squared_radii(x, k, block_size))


def _ball_counts(queries: chex.Array, centers: chex.Array, r2: chex.Array,
                 block_size: int | None) -> chex.Array:  # [nq, d], [nc, d], [nc] -> [nq]
    """Per query, the number of closed balls ``|q - c_i|^2 <= r2_i`` that contain it (int32).

    Squared radii are compared with squared distances as computed, so a
    neighbour that defined a radius is always inside its ball (no sqrt rounding).
    """

    def count(block):  # [b, d] -> [b]
        inside = squared_distances(block, centers) <= r2[None, :]  # [b, nc]
        return jnp.sum(inside, axis=1, dtype=jnp.int32)

    return _map_row_blocks(count, queries, _block(block_size, queries.shape[0], centers.shape[0]))


def _nearest_squared_distance(queries: chex.Array, points: chex.Array,
                              block_size: int | None) -> chex.Array:  # [nq, d], [np, d] -> [nq]
    def nearest(block):  # [b, d] -> [b]
        return jnp.min(squared_distances(block, points), axis=1)

    return _map_row_blocks(nearest, queries, _block(block_size, queries.shape[0], points.shape[0]))


@functools.partial(jax.jit, static_argnames=("k", "block_size"))
def _precision_recall(real, fake, k, block_size):
    fake_in_real = _ball_counts(fake, real, _knn_squared_radii(real, k, block_size), block_size)
    real_in_fake = _ball_counts(real, fake, _knn_squared_radii(fake, k, block_size), block_size)
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
    on_real, on_fake = _precision_recall(real, fake, k, block_size)
    return PrecisionRecall(float(np.mean(np.asarray(on_real))),
                           float(np.mean(np.asarray(on_fake))))


@functools.partial(jax.jit, static_argnames=("k", "block_size"))
def _density_coverage(real, fake, k, block_size):
    r2 = _knn_squared_radii(real, k, block_size)  # [N]
    counts = _ball_counts(fake, real, r2, block_size)  # [M]
    covered = _nearest_squared_distance(real, fake, block_size) <= r2  # [N]
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
    counts, covered = _density_coverage(real, fake, k, block_size)
    density = np.sum(np.asarray(counts, np.int64)) / (k * fake.shape[0])
    return DensityCoverage(float(density), float(np.mean(np.asarray(covered))))


# --- class probabilities --------------------------------------------------------


def _check_probs(probs: np.ndarray) -> np.ndarray:
    p = np.asarray(probs, np.float64)
    if p.ndim != 2:
        raise ValueError(f"probs must be [n, classes], got shape {p.shape}")
    if np.any(p < 0) or not np.allclose(p.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError("probs must be rows of class probabilities (non-negative, summing to "
                         "1); pass softmax(logits), not logits")
    return p


def inception_score(probs: np.ndarray, num_splits: int = 1) -> MeanStd:  # [n, C]
    """Inception Score analogue: exp(E_x KL(p(y|x) || p(y))), per split of the samples.

        IS = exp( (1/n) sum_i sum_c p(c|x_i) log(p(c|x_i) / p(c)) ),  p(c) = (1/n) sum_i p(c|x_i)

    (Salimans et al., "Improved techniques for training GANs", NeurIPS 2016).
    It is 1 when every p(y|x) equals p(y) and at most C, reached when each
    prediction is one-hot and the classes are used equally often. The samples
    are cut into ``num_splits`` contiguous parts of (near) equal size; p(y) is
    the mean over each part, and the result is the mean and std of the
    per-part scores (the original protocol uses 10 splits of 50,000 samples).
    """
    p = _check_probs(probs)
    if not 1 <= num_splits <= len(p):
        raise ValueError(f"need 1 <= num_splits <= n, got {num_splits} for n={len(p)}")
    scores = []
    for part in np.array_split(p, num_splits):
        marginal = part.mean(axis=0, keepdims=True)  # [1, C]
        kl = np.sum(xlogy(part, part) - xlogy(part, marginal), axis=1)  # [n_part]
        scores.append(np.exp(np.mean(kl)))
    return MeanStd(float(np.mean(scores)), float(np.std(scores)))


def class_accuracy(probs: np.ndarray, labels: np.ndarray) -> float:  # [n, C], [n]
    """Share of samples whose most probable class is the label they were generated for.

    For class-conditional generators: ``mean_i 1[argmax_c p(c|x_i) = y_i]``.
    Logits work as well as probabilities (argmax is the same).
    """
    p, labels = np.asarray(probs), np.asarray(labels)
    if p.ndim != 2 or labels.shape != p.shape[:1]:
        raise ValueError(f"need probs [n, C] and labels [n], got {p.shape} and {labels.shape}")
    return float(np.mean(np.argmax(p, axis=1) == labels))


def _check_features(x, y, min_rows: int = 2) -> None:
    x_shape, y_shape = np.shape(x), np.shape(y)
    if len(x_shape) != 2 or len(y_shape) != 2 or x_shape[1] != y_shape[1]:
        raise ValueError(f"need features [n, d] and [m, d], got {x_shape} and {y_shape}")
    if x_shape[0] < min_rows or y_shape[0] < min_rows:
        raise ValueError(f"need at least {min_rows} rows in each feature set, got "
                         f"{x_shape[0]} and {y_shape[0]}")
