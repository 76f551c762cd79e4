"""scikit-learn's bundled 8x8 handwritten digits: small real images, no download.

The data are the 1,797 test-set images of the UCI "Optical Recognition of
Handwritten Digits" set (Alpaydin & Kaynak, 1998) shipped with scikit-learn
(``sklearn.datasets.load_digits``): 32x32 bitmaps counted into 4x4 blocks, so
each pixel is an integer ``0..16`` (17 levels). Images are returned as
``float32 [n, 8, 8, 1]`` equal to ``pixel / 16`` (in ``[0, 1]``) with ``int32``
labels ``0..9``.

Split: the file order is kept; the first ``floor(0.8 * 1797) = 1437`` images
are ``"train"`` and the last 360 are ``"test"``. Slices such as ``"test[:50%]"``
apply within a split (see ``gmjax.data.splits``).
"""

from __future__ import annotations

import numpy as np

from gmjax.data.splits import parse_split

NUM_LEVELS = 17  # pixel values 0..16
TRAIN_FRACTION = 0.8


def load_digits(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Returns ``(images float32 [n, 8, 8, 1] in [0, 1], labels int32 [n])`` for ``split``."""
    # Imported on use: importing sklearn takes about a second.
    from sklearn.datasets import load_digits as _sk_load_digits

    spec = parse_split(split)
    bunch = _sk_load_digits()
    images = (np.asarray(bunch.images, np.float32) / (NUM_LEVELS - 1))[..., None]  # [1797, 8, 8, 1]
    labels = np.asarray(bunch.target, np.int32)  # [1797]
    n_train = int(TRAIN_FRACTION * len(images))
    part = slice(0, n_train) if spec.base == "train" else slice(n_train, len(images))
    images, labels = images[part], labels[part]
    keep = spec.slice(len(images))
    return images[keep], labels[keep]
