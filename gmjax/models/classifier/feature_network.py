"""A trained classifier used as a feature map: features and class probabilities of images.

FID, KID, precision / recall and the Inception Score need a network that maps
an image to features and class probabilities. gmjax does not ship Inception
weights; it trains a small LeNet per data set and uses it here. Numbers
computed with one feature network are comparable with each other only, so
every metric that uses it should be reported next to
``FeatureNetwork.describe()``, which names the network, its training data and
its held-out accuracy.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import numpy as np

from gmjax.nets.lenet import features_and_logits, image_input

PyTree = Any


def predict_in_batches(fn: Callable[[jax.Array], Any], images: np.ndarray,
                       batch_size: int) -> Any:
    """``fn`` over ``images`` in fixed-size batches (the last one padded, so one compilation).

    Returns the outputs of every batch concatenated along axis 0, as numpy.
    """
    n = len(images)
    outputs = []
    for start in range(0, n, batch_size):
        batch = np.asarray(images[start:start + batch_size])
        rows = len(batch)
        if rows < batch_size:
            batch = np.concatenate([batch, np.zeros((batch_size - rows,) + batch.shape[1:],
                                                    batch.dtype)])
        outputs.append(jax.tree.map(lambda a: np.asarray(a)[:rows], fn(batch)))
    return jax.tree.map(lambda *parts: np.concatenate(parts), *outputs)


@functools.lru_cache(maxsize=16)
def _compiled_outputs(model: nn.Module) -> Callable:
    """``jit((params, images) -> (features, probs))``, shared by networks of one architecture.

    Modules are hashable dataclasses, so the networks built for each periodic
    evaluation of a training run reuse one compilation.
    """

    def outputs(params, images):
        phi, logits = features_and_logits(model, params, image_input(images))
        return phi, jax.nn.softmax(logits, axis=-1)

    return jax.jit(outputs)


class FeatureNetwork:
    """A trained classifier used as a feature map for image metrics.

    Attributes:
      model: the Flax module (``LeNet``).
      params: its parameters.
      data_name: the data set it was trained on (``mnist``, ``fashion_mnist``, ``digits``).
      train_split, test_split: the splits it was trained and evaluated on.
      test_accuracy: accuracy on ``test_split`` (None when unknown).
      image_shape: ``(H, W, C)`` of the images it takes.
      source: where it was loaded from (a workdir), for ``describe()``.
    """

    def __init__(self, model: nn.Module, params: PyTree, *, data_name: str,
                 image_shape: tuple[int, int, int], train_split: str = "train",
                 test_split: str = "test", test_accuracy: Optional[float] = None,
                 source: str = "", batch_size: int = 500):
        self.model, self.params = model, params
        self.data_name, self.image_shape = data_name, tuple(image_shape)
        self.train_split, self.test_split = train_split, test_split
        self.test_accuracy, self.source = test_accuracy, source
        self.batch_size = int(batch_size)
        self._outputs = _compiled_outputs(model)

    @property
    def feature_dim(self) -> int:
        return int(self.model.feature_dim)

    @property
    def num_classes(self) -> int:
        return int(self.model.num_classes)

    def features_and_probs(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``([n, feature_dim], [n, classes])`` float32 for images ``[n, H, W, C]``.

        Images are ``uint8`` intensities ``0..255`` or floats in ``[0, 1]``;
        floats outside ``[0, 1]`` (e.g. a ``tanh`` generator's ``[-1, 1]``)
        are refused rather than silently mis-scaled.
        """
        images = self._check(images)
        return predict_in_batches(lambda b: self._outputs(self.params, b), images,
                                  self.batch_size)

    def features(self, images: np.ndarray) -> np.ndarray:  # [n, H, W, C] -> [n, feature_dim]
        """Penultimate-layer features (see ``features_and_probs`` for the image scale)."""
        return self.features_and_probs(images)[0]

    def probs(self, images: np.ndarray) -> np.ndarray:  # [n, H, W, C] -> [n, classes]
        """Class probabilities ``softmax(logits)`` (see ``features_and_probs``)."""
        return self.features_and_probs(images)[1]

    def describe(self) -> str:
        """Which network this is: architecture, training data, held-out accuracy, source."""
        m = self.model
        arch = (f"{type(m).__name__}({m.kernel_size}x{m.kernel_size} convs "
                f"{'-'.join(str(c) for c in m.channels)}, {m.feature_dim}-d features)")
        acc = ("accuracy unknown" if self.test_accuracy is None
               else f"accuracy {100 * self.test_accuracy:.2f}% on {self.data_name} "
                    f"{self.test_split}")
        where = f" [{self.source}]" if self.source else ""
        return f"{arch} trained on {self.data_name} {self.train_split}, {acc}{where}"

    def __repr__(self) -> str:
        return f"FeatureNetwork({self.describe()})"

    def _check(self, images) -> np.ndarray:
        images = np.asarray(images)
        if images.ndim == 3 and self.image_shape[-1] == 1:
            images = images[..., None]
        if images.ndim != 4 or images.shape[1:] != self.image_shape or not len(images):
            raise ValueError(f"this feature network takes images [n, "
                             f"{', '.join(map(str, self.image_shape))}] ({self.data_name}), "
                             f"got shape {images.shape}")
        if images.dtype != np.uint8:
            if not np.issubdtype(images.dtype, np.floating):
                raise ValueError(f"images must be uint8 or float in [0, 1], got {images.dtype}")
            lo, hi = float(images.min(initial=0.0)), float(images.max(initial=0.0))
            if lo < -1e-3 or hi > 1 + 1e-3:
                raise ValueError(f"float images must lie in [0, 1], got values in [{lo:.3g}, "
                                 f"{hi:.3g}]; map [-1, 1] outputs with (x + 1) / 2 first")
        return images
