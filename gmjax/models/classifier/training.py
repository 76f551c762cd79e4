"""Training and evaluating a classifier: the loss with augmentation and dropout, held-out scores."""

from __future__ import annotations

import functools
from typing import Any, Callable, Dict, Tuple

import flax.linen as nn
import jax
import numpy as np

from gmjax.data.augment import random_shift
from gmjax.metrics import class_accuracy
from gmjax.models.classifier.feature_network import FeatureNetwork
from gmjax.nets.lenet import image_input
from gmjax.objectives.classification import cross_entropy_loss

PyTree = Any


def classifier_loss(model: nn.Module, max_shift: int = 0
                    ) -> Callable[[PyTree, Tuple[jax.Array, jax.Array], jax.Array],
                                  Tuple[jax.Array, Dict[str, jax.Array]]]:
    """The train-step loss of ``model``: cross-entropy on randomly shifted images, with dropout.

    ``loss(params, (images [n, H, W, C], labels [n]), key)``: the key draws
    the shifts (``random_shift`` by up to ``max_shift`` pixels; none when 0)
    and the dropout masks (``gmjax.objectives.cross_entropy_loss``).
    """

    def logits_fn(params: PyTree, images: jax.Array, key: jax.Array) -> jax.Array:
        return model.apply(params, image_input(images), deterministic=False,
                           rngs={"dropout": key})

    augment = functools.partial(random_shift, max_shift=max_shift) if max_shift else None
    return cross_entropy_loss(logits_fn, augment)


def evaluate_classifier(network: FeatureNetwork, images: np.ndarray, labels: np.ndarray
                        ) -> Dict[str, float]:
    """Held-out ``test_accuracy`` and ``test_cross_entropy`` (mean -log p(label | image), nats)."""
    probs = network.probs(images)
    ce = -np.mean(np.log(np.maximum(probs[np.arange(len(labels)), labels], 1e-30)))
    return {"test_accuracy": class_accuracy(probs, labels), "test_cross_entropy": float(ce)}
