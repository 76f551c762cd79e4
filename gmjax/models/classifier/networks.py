"""Classifier networks by name, and the image shapes they are trained on."""

from __future__ import annotations

from typing import Any, Callable, Mapping

import flax.linen as nn

from gmjax.nets.lenet import LeNet
from gmjax.registry import Registry

CLASSIFIERS: Registry[Callable[[Mapping[str, Any], int], nn.Module]] = Registry("classifier")

# Image shape (H, W, C) of each data set a feature network can be trained on.
IMAGE_SHAPES = {"mnist": (28, 28, 1), "fashion_mnist": (28, 28, 1), "digits": (8, 8, 1)}


@CLASSIFIERS.register("lenet")
def _lenet(model: Mapping[str, Any], num_classes: int) -> nn.Module:
    return LeNet(num_classes=num_classes, channels=tuple(model["channels"]),
                 kernel_size=int(model["kernel_size"]), feature_dim=int(model["feature_dim"]),
                 dropout_rate=float(model["dropout_rate"]))


def build_classifier(model: Mapping[str, Any], num_classes: int = 10) -> nn.Module:
    """The Flax module for ``model.name`` (``__call__`` gives logits, ``features`` the features)."""
    return CLASSIFIERS.get(model["name"])(model, num_classes)
