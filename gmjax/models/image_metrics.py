"""Every feature-space metric of generated images against real ones, in one call.

Image experiments (VAE, GAN, flow, diffusion) report the same set of numbers,
under the result-file names of the experiment contract, and always with the
feature network that produced them (``feature_network``), because values
from different feature networks are not comparable.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import chex
import numpy as np

from gmjax import metrics as F
from gmjax.models.classifier.feature_network import FeatureNetwork


def image_metrics(network: FeatureNetwork, samples: np.ndarray, reference: np.ndarray,
                  key: chex.PRNGKey, *, sample_labels: Optional[np.ndarray] = None,
                  num_neighbors: int = F.DEFAULT_NUM_NEIGHBORS, kid_subsets: int = 100,
                  kid_subset_size: int = 1000, is_splits: int = 1) -> Dict[str, Any]:
    """Compares generated ``samples`` with real ``reference`` images in ``network``'s features.

    Args:
      network: the feature network (``load_feature_network(workdir)``).
      samples, reference: images ``[n, H, W, C]``, uint8 or float in [0, 1].
        Use equally many of each: the Fréchet distance is biased by sample size.
      key: PRNG key for the KID subsets.
      sample_labels: the class each sample was generated for (conditional
        models); adds ``class_accuracy``.

    Returns:
      ``frechet_distance``, ``kid``, ``kid_std``, ``precision``, ``recall``,
      ``density``, ``coverage``, ``inception_score``, ``inception_score_std``,
      ``class_accuracy`` (with labels), and ``feature_network`` (a string
      naming the network and its test accuracy).
    """
    fake, fake_probs = network.features_and_probs(samples)
    real, _ = network.features_and_probs(reference)
    kid = F.kid(real, fake, key, num_subsets=kid_subsets, subset_size=kid_subset_size)
    pr = F.precision_recall(real, fake, num_neighbors)
    dc = F.density_coverage(real, fake, num_neighbors)
    score = F.inception_score(fake_probs, is_splits)
    metrics: Dict[str, Any] = {
        "frechet_distance": F.frechet_distance(real, fake),
        "kid": kid.mean, "kid_std": kid.std,
        "precision": pr.precision, "recall": pr.recall,
        "density": dc.density, "coverage": dc.coverage,
        "inception_score": score.mean, "inception_score_std": score.std,
    }
    if sample_labels is not None:
        metrics["class_accuracy"] = F.class_accuracy(fake_probs, sample_labels)
    metrics["feature_network"] = network.describe()
    return metrics
