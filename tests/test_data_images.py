"""Tests for the MNIST / Fashion-MNIST loaders: real files, local IDX folders, tfds glue."""

import dataclasses
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from gmjax.data import (
    DatasetNotFoundError,
    IDXFormatError,
    load_dataset,
    load_fashion_mnist,
    load_mnist,
    write_idx,
)
from gmjax.data import images as images_module

MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def _write_split(folder: Path, prefix: str, images, labels, gz: bool = True):
    folder.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", images)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", labels)


def _tiny(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)  # [n, 28, 28]
    return images, rng.integers(0, 10, n).astype(np.uint8)


def test_repository_mnist_test_set():
    x, y = load_mnist("test")
    assert x.shape == (10_000, 28, 28, 1) and x.dtype == np.uint8
    assert y.shape == (10_000,) and y.dtype == np.int32
    np.testing.assert_array_equal(np.bincount(y, minlength=10), MNIST_TEST_COUNTS)
    assert x.max() == 255 and x.min() == 0
    assert abs(x.mean() / 255 - 0.1325) < 5e-4  # the known MNIST test-set pixel mean


def test_mnist_split_slicing_counts():
    x, y = load_mnist("test")
    head, tail = load_mnist("test[:80%]"), load_mnist("test[80%:]")
    assert len(head[0]) == 8_000 and len(tail[0]) == 2_000
    np.testing.assert_array_equal(np.concatenate([head[1], tail[1]]), y)
    np.testing.assert_array_equal(tail[0], x[8_000:])
    assert len(load_mnist("test[:5000]")[0]) == 5_000
    assert len(load_mnist("test[-123:]")[1]) == 123
    with pytest.raises(ValueError, match="bad split"):
        load_mnist("test[:80")
    with pytest.raises(ValueError, match="unknown split 'valid'"):
        load_mnist("valid")


def test_mnist_through_load_dataset():
    ds = load_dataset("mnist", "test", n=100)
    assert ds.x.shape == (100, 28, 28, 1) and ds.y.shape == (100,) and ds.num_levels == 256
    assert ds.density is None and ds.name == "mnist" and ds.split == "test"


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="apt-get install dataset-fashion-mnist to run")
def test_fashion_mnist_from_debian_package():
    x_train, y_train = load_fashion_mnist("train")
    x_test, y_test = load_fashion_mnist("test")
    assert x_train.shape == (60_000, 28, 28, 1) and x_test.shape == (10_000, 28, 28, 1)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int32
    # Fashion-MNIST is balanced: 6,000 / 1,000 images per class.
    np.testing.assert_array_equal(np.bincount(y_train, minlength=10), [6_000] * 10)
    np.testing.assert_array_equal(np.bincount(y_test, minlength=10), [1_000] * 10)
    assert len(load_fashion_mnist("train[:5000]")[0]) == 5_000
    assert len(load_dataset("fashion_mnist", "test[80%:]")) == 2_000


def test_missing_mnist_train_lists_every_place(tmp_path):
    for folder in images_module.MNIST.fallback_dirs:
        if any(folder.glob("train-*")):
            pytest.skip(f"MNIST train files exist in {folder}")
    with pytest.raises(DatasetNotFoundError) as err:
        load_mnist("train", data_dir=tmp_path)
    assert isinstance(err.value, FileNotFoundError)
    message = str(err.value)
    places = [tmp_path, tmp_path / "mnist", *images_module.MNIST.fallback_dirs]
    for place in places:
        assert str(place) in message
    assert "tensorflow-datasets" in message and "--config.data.data_dir=DIR" in message
    assert "train-images-idx3-ubyte" in message


def test_missing_fashion_mnist_says_how_to_install(tmp_path, monkeypatch):
    gone = dataclasses.replace(images_module.FASHION_MNIST, fallback_dirs=(tmp_path / "nowhere",))
    monkeypatch.setitem(images_module.IMAGE_DATA_SOURCES, "fashion_mnist", gone)
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist") as err:
        load_fashion_mnist("test", data_dir=tmp_path)
    assert str(tmp_path / "nowhere") in str(err.value)


def test_idx_files_in_data_dir_and_subfolder(tmp_path):
    x, y = _tiny(5)
    _write_split(tmp_path, "train", x, y, gz=False)
    got_x, got_y = load_mnist("train", data_dir=tmp_path)
    np.testing.assert_array_equal(got_x[..., 0], x)
    np.testing.assert_array_equal(got_y, y)
    np.testing.assert_array_equal(load_mnist("train[1:3]", data_dir=tmp_path)[1], y[1:3])
    # The data_dir test split does not exist, so the repository MNIST test set is used.
    assert len(load_mnist("test", data_dir=tmp_path)[0]) == 10_000
    x2, y2 = _tiny(4, seed=1)
    _write_split(tmp_path / "sub" / "fashion_mnist", "t10k", x2, y2)
    np.testing.assert_array_equal(load_fashion_mnist("test", data_dir=tmp_path / "sub")[1], y2)


def test_corrupt_idx_in_data_dir_is_an_error_not_skipped(tmp_path):
    x, y = _tiny(3)
    _write_split(tmp_path, "t10k", x, y, gz=False)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(IDXFormatError, match="truncated") as err:
        load_mnist("test", data_dir=tmp_path)
    assert str(path) in str(err.value)
    _write_split(tmp_path, "t10k", x, y[:2], gz=False)
    with pytest.raises(IDXFormatError, match="2 labels for 3 images"):
        load_mnist("test", data_dir=tmp_path)


class _FakeSource:
    def __init__(self, images, labels):
        self.records = [
            {"image": im[..., None], "label": np.int64(lab)} for im, lab in zip(images, labels)
        ]

    def __len__(self):
        return len(self.records)

    def __getitem__(self, i):
        return self.records[i]


def _fake_tfds(prepared: bool, images, labels, calls):
    class Builder:
        def __init__(self, name, data_dir):
            calls.append((name, data_dir))

        def is_prepared(self):
            return prepared

        def as_data_source(self, split):
            calls.append(split)
            return _FakeSource(images, labels)

    return types.SimpleNamespace(builder=lambda name, data_dir: Builder(name, data_dir))


def test_prepared_tfds_data_come_first(tmp_path, monkeypatch):
    (tmp_path / "mnist" / "3.0.1").mkdir(parents=True)
    x, y = _tiny(10)
    calls = []
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", _fake_tfds(True, x, y, calls))
    got_x, got_y = load_mnist("train[2:6]", data_dir=tmp_path)
    assert calls == [("mnist", str(tmp_path)), "train"]
    np.testing.assert_array_equal(got_x[..., 0], x[2:6])
    np.testing.assert_array_equal(got_y, y[2:6])
    assert got_x.dtype == np.uint8 and got_y.dtype == np.int32


def test_unprepared_or_broken_tfds_falls_through(tmp_path, monkeypatch):
    (tmp_path / "mnist").mkdir()
    x, y = _tiny(6)
    _write_split(tmp_path, "train", x, y)
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", _fake_tfds(False, x[:1], y[:1], []))
    np.testing.assert_array_equal(load_mnist("train", data_dir=tmp_path)[1], y)
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # import fails
    np.testing.assert_array_equal(load_mnist("train", data_dir=tmp_path)[1], y)
    (tmp_path / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError, match="not prepared|could not be read"):
        load_mnist("train", data_dir=tmp_path)
