"""scikit-learn's bundled tabular data sets: small real vectors, no download.

* ``wine``: the 178 wines of the UCI "Wine" set (Forina et al.; three cultivars),
  13 chemical measurements each (``sklearn.datasets.load_wine``);
* ``breast_cancer``: the 569 cases of the UCI "Breast Cancer Wisconsin
  (Diagnostic)" set (Street, Wolberg and Mangasarian, 1993; malignant or
  benign), 30 features of cell nuclei each (``sklearn.datasets.load_breast_cancer``).

Split: a fixed permutation of the examples (``numpy.random.default_rng(SPLIT_SEED)``,
the same for every run); its first ``floor(0.8 n)`` examples are ``"train"``
(142 wines, 455 cases) and the rest ``"test"`` (36, 114). Both splits are
standardized with the training split's statistics: each feature minus its
training mean, divided by its training standard deviation (``ddof=0``), so the
training split has mean 0 and variance 1 per feature and the test split
approximately. Returned as ``float32 [n, d]`` with the ``int32`` class labels
(0, 1, 2 for wine; 0 malignant, 1 benign for breast cancer). Slices such as
``"test[:50%]"`` apply within a split (see ``gmjax.data.splits``).

Densities of these data are in the standardized coordinates: a log-likelihood
in the original units is the standardized one minus ``sum(log(std))``.
"""

from __future__ import annotations

import numpy as np

from gmjax.data.splits import parse_split

SPLIT_SEED = 0
TRAIN_FRACTION = 0.8
# Name -> (the sklearn loader's name, number of features).
TABULAR_DATA_SOURCES = {"wine": ("load_wine", 13), "breast_cancer": ("load_breast_cancer", 30)}


def _raw(name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(features float64 [n, d], labels int32 [n])`` in sklearn's order."""
    if name not in TABULAR_DATA_SOURCES:
        raise ValueError(f"unknown tabular data set {name!r}; valid choices: "
                         f"{', '.join(sorted(TABULAR_DATA_SOURCES))}")
    # Imported on use: importing sklearn takes about a second.
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, TABULAR_DATA_SOURCES[name][0])()
    return np.asarray(bunch.data, np.float64), np.asarray(bunch.target, np.int32)


def split_indices(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The fixed ``(train, test)`` indices of ``n`` examples."""
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    n_train = int(TRAIN_FRACTION * n)
    return order[:n_train], order[n_train:]


def training_statistics(name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(mean [d], std [d])`` of the training split in the original units (float64)."""
    x, _ = _raw(name)
    train = x[split_indices(len(x))[0]]
    return train.mean(axis=0), train.std(axis=0)


def load_tabular(name: str, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Returns ``(features float32 [n, d] standardized, labels int32 [n])`` for ``split``."""
    spec = parse_split(split)
    x, y = _raw(name)
    train, test = split_indices(len(x))
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    part = train if spec.base == "train" else test
    x, y = ((x[part] - mean) / std).astype(np.float32), y[part]
    keep = spec.slice(len(x))
    return x[keep], y[keep]
