"""Every data set by name: ``load_dataset(name, split) -> Dataset``.

Names: the toy densities of ``gmjax.data.toy`` (``moons``, ``circles``,
``8gaussians``, ``25gaussians``, ``checkerboard``, ``pinwheel``, ``2spirals``,
``swissroll``, ``rings``), ``digits`` (sklearn 8x8), ``mnist`` and
``fashion_mnist``, and the tabular ``wine`` (13 features) and ``breast_cancer``
(30) of ``gmjax.data.tabular``. ``DATASETS.get(name)`` is the loader
``(split, *, data_dir, n, seed, **options) -> Dataset``; an unknown name fails
with the list of valid ones.

A data set of one's own is a loader registered under a new name, at any
time (scripts read the registry when they check a config)::

    @DATASETS.register("my_data")
    def load(split, *, data_dir=None, n=None, seed=0, noise=0.1):
        ...
        return Dataset(x=x, y=None, name="my_data", split=split)

Its keyword arguments beyond ``data_dir``, ``n`` and ``seed`` are its
options: ``load_dataset("my_data", noise=0.2)``, or ``data.options.noise``
in an experiment config. The built-in data sets take no options.

Toy densities have no fixed data set, so splits are drawn:

* ``"train"``: ``n`` points (default 50,000) from ``default_rng([seed, TRAIN_TAG])``;
* ``"test"``: ``n`` points (default 10,000) from ``default_rng([0, TEST_TAG])``,
  the same for every ``seed``, so test NLLs of different runs are comparable.

The tags differ, so no train seed reproduces the test stream. Slices
(``"train[:80%]"``) apply to the drawn points. For real data ``n`` keeps the
first ``n`` examples of the (sliced) split and ``seed`` is unused (shuffling
belongs to ``BatchIterator``).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Mapping

import numpy as np

from gmjax.data import digits, images, tabular
from gmjax.data.splits import parse_split
from gmjax.data.toy import TOY_DENSITIES, ToyDensity
from gmjax.registry import Registry, check_options

TOY_TRAIN_SIZE = 50_000
TOY_TEST_SIZE = 10_000
TRAIN_TAG = 0x7472_6169  # "trai"
TEST_TAG = 0x7465_7374  # "test"


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """One split of a data set, in memory.

    Attributes:
      x: examples, ``[n, 2]`` float32 (toy), ``[n, 8, 8, 1]`` float32 in [0, 1]
        (digits), ``[n, 28, 28, 1]`` uint8 (mnist, fashion_mnist) or ``[n, d]`` float32
        standardized with the training split's statistics (wine: d = 13,
        breast_cancer: d = 30).
      y: ``int32 [n]`` labels, or ``None`` (toy densities).
      name, split: what was asked for.
      density: the toy density object (``log_prob``, ``entropy``), else ``None``.
      num_levels: number of intensity levels of discrete images (256 for
        uint8, 17 for digits, whose ``x * 16`` are the integers), else ``None``.
    """

    x: np.ndarray
    y: np.ndarray | None
    name: str
    split: str
    density: ToyDensity | None = None
    num_levels: int | None = None

    def __len__(self) -> int:
        return len(self.x)


Loader = Callable[..., Dataset]
DATASETS: Registry[Loader] = Registry("data set")
# The arguments every loader takes; the rest of its keyword arguments are its options.
LOADER_ARGUMENTS = ("split", "data_dir", "n", "seed")


def load_dataset(
    name: str,
    split: str = "train",
    *,
    data_dir: str | os.PathLike | None = None,
    n: int | None = None,
    seed: int = 0,
    **options: Any,
) -> Dataset:
    """Loads ``split`` of data set ``name`` (see the module docstring for ``n`` and ``seed``).

    ``options`` go to the loader (see ``check_dataset_options``).
    """
    loader = DATASETS.get(name)
    check_dataset_options(name, options)
    return loader(split, data_dir=data_dir, n=n, seed=seed, **options)


def check_dataset_options(name: str, options: Mapping[str, Any]) -> None:
    """Raises ``ValueError`` when the loader of ``name`` does not take ``options`` (an
    unknown option, or a required one missing), naming the options it takes; loads nothing.
    """
    check_options(DATASETS.get(name), options, f"data set {name!r}", fixed=LOADER_ARGUMENTS)


def vector_dataset_names() -> list[str]:
    """The registered data sets whose examples are vectors: every name but the image
    data sets (``digits``, ``mnist``, ``fashion_mnist``), at the time of the call."""
    return [name for name in DATASETS.names() if name not in IMAGE_DATASETS]


def _toy_loader(density: ToyDensity) -> Loader:
    def load(split: str, *, data_dir=None, n=None, seed: int = 0) -> Dataset:
        del data_dir  # toy densities need no files
        spec = parse_split(split)
        if spec.base == "train":
            size, rng = TOY_TRAIN_SIZE, np.random.default_rng([int(seed), TRAIN_TAG])
        else:
            size, rng = TOY_TEST_SIZE, np.random.default_rng([0, TEST_TAG])
        size = size if n is None else int(n)
        x = density.sample(rng, size)
        x = x[spec.slice(size)]
        return Dataset(x=x, y=None, name=density.name, split=split, density=density)

    return load


def _first_n(x: np.ndarray, y: np.ndarray, n: int | None, name: str, split: str):
    if n is None:
        return x, y
    if not 0 < n <= len(x):
        raise ValueError(f"n={n} but {name} {split!r} has {len(x)} examples")
    return x[:n], y[:n]


@DATASETS.register("digits")
def _load_digits(split: str, *, data_dir=None, n=None, seed: int = 0) -> Dataset:
    del data_dir, seed
    x, y = _first_n(*digits.load_digits(split), n, "digits", split)
    return Dataset(x=x, y=y, name="digits", split=split, num_levels=digits.NUM_LEVELS)


def _image_loader(name: str) -> Loader:
    def load(split: str, *, data_dir=None, n=None, seed: int = 0) -> Dataset:
        del seed
        x, y = _first_n(*images.load_image_dataset(name, split, data_dir=data_dir), n, name, split)
        return Dataset(x=x, y=y, name=name, split=split, num_levels=256)

    return load


def _tabular_loader(name: str) -> Loader:
    def load(split: str, *, data_dir=None, n=None, seed: int = 0) -> Dataset:
        del data_dir, seed  # bundled with sklearn; the split is fixed (tabular.SPLIT_SEED)
        x, y = _first_n(*tabular.load_tabular(name, split), n, name, split)
        return Dataset(x=x, y=y, name=name, split=split)

    return load


for _name in TOY_DENSITIES.names():
    DATASETS.register(_name)(_toy_loader(TOY_DENSITIES.get(_name)))
for _name in images.IMAGE_DATA_SOURCES:
    DATASETS.register(_name)(_image_loader(_name))
for _name in tabular.TABULAR_DATA_SOURCES:
    DATASETS.register(_name)(_tabular_loader(_name))
del _name
IMAGE_DATASETS = frozenset(("digits", *images.IMAGE_DATA_SOURCES))
