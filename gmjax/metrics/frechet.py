"""The Fréchet distance between Gaussians fitted to two feature sets (the FID analogue).

Computed in float64 numpy: it is a small difference of large numbers.
"""

from __future__ import annotations

import numpy as np

from gmjax.metrics.checks import check_features


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
    check_features(x, y)
    return frechet_distance_gaussians(*gaussian_moments(x), *gaussian_moments(y))
