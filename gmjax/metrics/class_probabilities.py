"""Metrics of a classifier's class probabilities on generated images: IS and class accuracy."""

from __future__ import annotations

import numpy as np
from scipy.special import xlogy

from gmjax.metrics.results import MeanStd


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
