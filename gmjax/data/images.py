"""MNIST and Fashion-MNIST from local files, never from the network.

MNIST (LeCun et al., 1998) and Fashion-MNIST (Xiao et al., "Fashion-MNIST: a
novel image dataset for benchmarking machine learning algorithms", 2017) are
both 28x28 grey-level images in 10 classes, 60,000 for training and 10,000 for
testing. Loaders return ``uint8 [n, 28, 28, 1]`` images and ``int32 [n]``
labels.

Where they are looked for, in order (the first that has the split wins):

1. tensorflow-datasets, if the data set is already prepared under ``data_dir``
   (or, without ``data_dir``, under ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``),
   read with ``tfds.data_source`` (random access, no TensorFlow needed; the data
   must have been prepared with ``file_format="array_record"``), falling back
   to ``builder.as_dataset`` when TensorFlow is installed. Nothing is downloaded.
2. IDX files ``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``
   (``t10k-...`` for the test split) in ``data_dir`` or ``data_dir/<name>``.
   A flat ``data_dir`` is taken to hold the data set that was asked for.
3. Fashion-MNIST only: ``/usr/share/datasets/fashion-mnist``, installed by the
   Debian package ``dataset-fashion-mnist`` (all 70,000 images).
4. MNIST only: ``<repository>/data/mnist/``, then ``<repository>/../shared/data/mnist/``
   (these hold the real MNIST *test* set only).

If no place has the split, ``DatasetNotFoundError`` lists every place searched
and how to get the data. A corrupt file that is found raises ``IDXFormatError``
rather than being skipped.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from gmjax.data.idx import IDXFormatError, read_idx
from gmjax.data.splits import SplitSpec, parse_split

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGE_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
_IDX_PREFIX = {"train": "train", "test": "t10k"}


class DatasetNotFoundError(FileNotFoundError):
    """A data set is not on this machine; the message lists where it was looked for."""


@dataclasses.dataclass(frozen=True)
class ImageDataSource:
    """Where one image data set may live, and how a user can get it."""

    name: str  # gmjax name, also the tensorflow-datasets name
    subdirs: tuple[str, ...]  # sub-folders of data_dir that may hold its IDX files
    fallback_dirs: tuple[Path, ...]  # machine / repository folders searched after data_dir
    how_to_get: tuple[str, ...]


# How a folder of data is named: on an experiment's command line, and to the loaders.
_DATA_DIR = "--config.data.data_dir=DIR (data_dir=DIR in Python)"
_IDX_FILES = ("train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
              "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz")

MNIST = ImageDataSource(
    name="mnist",
    subdirs=("mnist",),
    fallback_dirs=(REPO_ROOT / "data" / "mnist", REPO_ROOT.parent / "shared" / "data" / "mnist"),
    how_to_get=(
        "the repository copy (data/mnist) holds only the test split (t10k files)",
        f"put the IDX files ({_IDX_FILES}) into a folder DIR and pass {_DATA_DIR}",
        "or, on a machine with network access, run "
        "tfds.builder('mnist', data_dir=DIR).download_and_prepare("
        f"file_format='array_record'), copy DIR here and pass {_DATA_DIR}",
    ),
)

FASHION_MNIST = ImageDataSource(
    name="fashion_mnist",
    subdirs=("fashion_mnist", "fashion-mnist"),
    fallback_dirs=(Path("/usr/share/datasets/fashion-mnist"),),
    how_to_get=(
        "install the Debian package dataset-fashion-mnist: apt-get install dataset-fashion-mnist "
        "(it puts the IDX files into /usr/share/datasets/fashion-mnist, searched without "
        "--config.data.data_dir)",
        f"or put the IDX files ({_IDX_FILES}) into a folder DIR and pass {_DATA_DIR}",
        "or, on a machine with network access, run "
        "tfds.builder('fashion_mnist', data_dir=DIR).download_and_prepare("
        f"file_format='array_record'), copy DIR here and pass {_DATA_DIR}",
    ),
)

IMAGE_DATA_SOURCES = {source.name: source for source in (MNIST, FASHION_MNIST)}


def load_mnist(split: str = "train", data_dir: str | os.PathLike | None = None):
    """MNIST ``(images uint8 [n, 28, 28, 1], labels int32 [n])``; see the module docstring."""
    return load_image_dataset("mnist", split, data_dir=data_dir)


def load_fashion_mnist(split: str = "train", data_dir: str | os.PathLike | None = None):
    """Fashion-MNIST ``(images uint8 [n, 28, 28, 1], labels int32 [n])``; see the module doc."""
    return load_image_dataset("fashion_mnist", split, data_dir=data_dir)


def load_image_dataset(name: str, split: str = "train", data_dir: str | os.PathLike | None = None):
    """Loads ``split`` of the image data set ``name`` from the first place that has it.

    Returns ``(images uint8 [n, 28, 28, 1], labels int32 [n])``.

    Raises:
      ValueError: unknown ``name`` or a bad split string.
      DatasetNotFoundError: no searched place has the split.
      IDXFormatError: a found IDX file is corrupt.
    """
    if name not in IMAGE_DATA_SOURCES:
        choices = ", ".join(IMAGE_DATA_SOURCES)
        raise ValueError(f"unknown image data set {name!r}; valid choices: {choices}")
    source = IMAGE_DATA_SOURCES[name]
    spec = parse_split(split)
    searched: list[str] = []

    tfds_dir = Path(data_dir) if data_dir is not None else _default_tfds_dir()
    found = _from_tfds(source.name, spec, tfds_dir, searched)
    if found is None:
        for folder in _idx_dirs(source, data_dir):
            found = _from_idx_dir(spec.base, folder, searched)
            if found is not None:
                images, labels = found
                keep = spec.slice(len(images))
                found = images[keep], labels[keep]
                break
    if found is None:
        raise DatasetNotFoundError(_not_found_message(source, split, searched))
    images, labels = found
    return _validate(images, labels, source.name, split)


def _default_tfds_dir() -> Path:
    return Path(os.environ.get("TFDS_DATA_DIR", Path.home() / "tensorflow_datasets"))


def _idx_dirs(source: ImageDataSource, data_dir) -> list[Path]:
    dirs = []
    if data_dir is not None:
        dirs.append(Path(data_dir))
        dirs.extend(Path(data_dir) / sub for sub in source.subdirs)
    dirs.extend(source.fallback_dirs)
    return dirs


def _find_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _from_idx_dir(base: str, folder: Path, searched: list[str]):
    prefix = _IDX_PREFIX[base]
    image_stem, label_stem = f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"
    image_file, label_file = _find_file(folder, image_stem), _find_file(folder, label_stem)
    where = f"IDX files {image_stem}[.gz] and {label_stem}[.gz] in {folder}"
    if image_file is None or label_file is None:
        missing = [s for s, f in ((image_stem, image_file), (label_stem, label_file)) if f is None]
        why = "folder does not exist" if not folder.is_dir() else f"no {' or '.join(missing)}[.gz]"
        searched.append(f"{where}: {why}")
        return None
    images, labels = read_idx(image_file), read_idx(label_file)
    if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE[:2] or images.dtype != np.uint8:
        raise IDXFormatError(
            f"{image_file}: expected uint8 images [n, 28, 28], got {images.dtype} {images.shape}"
        )
    if labels.shape != images.shape[:1]:
        raise IDXFormatError(
            f"{label_file}: {labels.shape[0] if labels.ndim else 'no'} labels for "
            f"{images.shape[0]} images in {image_file}"
        )
    return images[..., None], labels


def _from_tfds(tfds_name: str, spec: SplitSpec, tfds_dir: Path, searched: list[str]):
    where = f"tensorflow-datasets {tfds_name!r} in {tfds_dir}"
    # Prepared tfds data live in <data_dir>/<name>/<version>/; skip the (slow) import otherwise.
    if not (tfds_dir / tfds_name).is_dir():
        searched.append(f"{where}: no folder {tfds_dir / tfds_name}")
        return None
    try:
        import tensorflow_datasets as tfds

        builder = tfds.builder(tfds_name, data_dir=os.fspath(tfds_dir))
        if not builder.is_prepared():
            searched.append(f"{where}: not prepared")
            return None
        return _read_tfds(tfds, builder, spec)
    except Exception as err:  # absence of TF, an old tfds, a format that needs TF: fall through
        reason = f"{type(err).__name__}: {err}".replace("\n", " ")
        searched.append(f"{where}: could not be read ({reason})")
        return None


def _read_tfds(tfds, builder, spec: SplitSpec):
    try:
        source = builder.as_data_source(split=spec.base)
    except Exception:
        # tfrecord-prepared data need TensorFlow; this raises if it is absent.
        arrays = tfds.as_numpy(builder.as_dataset(split=spec.base, batch_size=-1))
        keep = spec.slice(len(arrays["label"]))
        return np.asarray(arrays["image"][keep]), np.asarray(arrays["label"][keep])
    indices = range(len(source))[spec.slice(len(source))]
    records = source.__getitems__(list(indices)) if hasattr(source, "__getitems__") else [
        source[i] for i in indices
    ]
    images = np.stack([np.asarray(r["image"]) for r in records])
    labels = np.asarray([r["label"] for r in records])
    return images, labels


def _validate(images: np.ndarray, labels: np.ndarray, name: str, split: str):
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.shape[1:] != IMAGE_SHAPE or images.dtype != np.uint8:
        raise ValueError(
            f"{name} {split}: expected uint8 images [n, 28, 28, 1], "
            f"got {images.dtype} {images.shape}"
        )
    labels = np.asarray(labels).astype(np.int32)
    in_range = labels.size == 0 or 0 <= labels.min() <= labels.max() < NUM_CLASSES
    if labels.shape != images.shape[:1] or not in_range:
        raise ValueError(f"{name} {split}: labels must be [n] in 0..9 for {images.shape[0]} images")
    return images, labels


def _not_found_message(source: ImageDataSource, split: str, searched: list[str]) -> str:
    lines = [f"data set {source.name!r} split {split!r} was not found on this machine. Searched:"]
    lines += [f"  - {entry}" for entry in searched]
    lines.append("To get it:")
    lines += [f"  - {hint}" for hint in source.how_to_get]
    lines.append("gmjax never downloads data and never substitutes fake data.")
    return "\n".join(lines)
