"""The in-repo feature network: a trained classifier whose features image metrics compare.

FID, KID, precision / recall and the Inception Score need a network that maps
an image to features and class probabilities. gmjax does not ship Inception
weights; it trains a small LeNet per data set (``experiments/classifier.py``)
and loads it here. Numbers computed with one feature network are comparable
with each other only, so every metric that uses it should be reported next to
``FeatureNetwork.describe()``, which names the network, its training data and
its held-out accuracy.

A classifier workdir holds ``config.json`` (which network, which data and
splits), ``metrics.json`` (its ``test_accuracy``, written when training
finished) and ``checkpoints/`` (the train state, written by
``gmjax.training.Checkpointer``: an orbax ``Composite`` of ``state`` and
``meta``). ``load_feature_network`` reads them without writing anything.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from typing import Any, Callable, Mapping, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gmjax.nets.lenet import LeNet, features_and_logits, image_input
from gmjax.registry import Registry

PyTree = Any

CLASSIFIERS: Registry[Callable[[Mapping[str, Any], int], nn.Module]] = Registry("classifier")

# Image shape (H, W, C) of each data set a feature network can be trained on.
IMAGE_SHAPES = {"mnist": (28, 28, 1), "fashion_mnist": (28, 28, 1), "digits": (8, 8, 1)}

# The command that trains the feature network of each data set (the default workdirs).
TRAIN_COMMANDS = {
    name: (f"python experiments/classifier.py --config experiments/configs/classifier_{name}.py "
           f"--workdir runs/classifier_{name}")
    for name in ("mnist", "fashion_mnist", "digits")
}


@CLASSIFIERS.register("lenet")
def _lenet(model: Mapping[str, Any], num_classes: int) -> nn.Module:
    return LeNet(num_classes=num_classes, channels=tuple(model["channels"]),
                 kernel_size=int(model["kernel_size"]), feature_dim=int(model["feature_dim"]),
                 dropout_rate=float(model["dropout_rate"]))


def build_classifier(model: Mapping[str, Any], num_classes: int = 10) -> nn.Module:
    """The Flax module for ``model.name`` (``__call__`` gives logits, ``features`` the features)."""
    return CLASSIFIERS.get(model["name"])(model, num_classes)


class FeatureNetworkError(FileNotFoundError):
    """No usable feature network at a path (missing, unfinished or unreadable); says what to run."""


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


def load_feature_network(workdir: str, batch_size: int = 500) -> FeatureNetwork:
    """Loads the classifier trained by ``experiments/classifier.py`` in ``workdir``.

    Reads ``config.json`` (architecture, data set, splits), ``metrics.json``
    (``test_accuracy``, ``steps``) and the parameters of the checkpoint at the
    step ``metrics.json`` describes. Nothing in ``workdir`` is modified.

    Raises:
      FeatureNetworkError: the workdir, its config, its final metrics or a
        readable checkpoint is missing; the message names the command to run.
    """
    workdir = os.path.abspath(os.fspath(workdir))
    config_path = os.path.join(workdir, "config.json")
    if not os.path.isfile(config_path):
        what = "does not exist" if not os.path.isdir(workdir) else "has no config.json"
        commands = "\n".join(f"  {c}" for c in TRAIN_COMMANDS.values())
        raise FeatureNetworkError(
            f"no feature network in {workdir}: the directory {what}. Train one with one of\n"
            f"{commands}\nand pass that --workdir.")
    config = _read_json(config_path, workdir, command=None)
    try:
        data_name = config["data"]["name"]
        command = _command(data_name, workdir)
        model_config = config["model"]
        model = build_classifier(model_config, int(model_config.get("num_classes", 10)))
        image_shape = IMAGE_SHAPES[data_name]
        train_split, test_split = config["data"]["train_split"], config["data"]["test_split"]
    except (KeyError, TypeError, ValueError) as e:
        raise FeatureNetworkError(
            f"{config_path} is not the config of a classifier run ({type(e).__name__}: {e}); "
            f"train a feature network with experiments/classifier.py, e.g.\n  "
            f"{TRAIN_COMMANDS['mnist']}") from e

    metrics_path = os.path.join(workdir, "metrics.json")
    if not os.path.isfile(metrics_path):
        raise FeatureNetworkError(
            f"{workdir} has no metrics.json: the classifier run did not finish. Finish it "
            f"(it resumes) with\n  {command}")
    metrics = _read_json(metrics_path, workdir, command)
    if "test_accuracy" not in metrics or "steps" not in metrics:
        raise FeatureNetworkError(f"{metrics_path} lacks test_accuracy / steps; rerun\n  {command}")

    params = _restore_params(model, image_shape, os.path.join(workdir, "checkpoints"),
                             int(metrics["steps"]), command)
    return FeatureNetwork(model, params, data_name=data_name, image_shape=image_shape,
                          train_split=train_split, test_split=test_split,
                          test_accuracy=float(metrics["test_accuracy"]), source=workdir,
                          batch_size=batch_size)


def _command(data_name: str, workdir: str) -> str:
    base = TRAIN_COMMANDS.get(data_name, TRAIN_COMMANDS["mnist"])
    return base.rsplit("--workdir", 1)[0] + f"--workdir {workdir}"


def _read_json(path: str, workdir: str, command: Optional[str]) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        fix = f"rerun\n  {command}" if command else "train a new one in a fresh --workdir"
        raise FeatureNetworkError(f"{path} is unreadable ({type(e).__name__}: {e}); move "
                                  f"{workdir} away and {fix}") from e


@contextlib.contextmanager
def quiet_absl():
    """Raises absl's log level to ERROR inside the block.

    Orbax logs at WARNING that a read-only manager is read-only; the loaders
    of trained models (this one and ``gmjax.models.gan``) keep that off the
    console.
    """
    from absl import logging as absl_logging

    previous = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)
    try:
        yield
    finally:
        absl_logging.set_verbosity(previous)


def _restore_params(model: nn.Module, image_shape: tuple[int, ...], directory: str, step: int,
                    command: str) -> PyTree:
    """The ``params`` field of the train state saved at ``step`` (only that field is read)."""
    import orbax.checkpoint as ocp

    if not os.path.isdir(directory):
        raise FeatureNetworkError(f"no checkpoints in {directory}; rerun\n  {command}")
    abstract = jax.eval_shape(model.init, jax.random.PRNGKey(0),
                              jnp.zeros((1,) + tuple(image_shape), jnp.float32))
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    abstract = {"params": jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=device), abstract)}
    try:
        with quiet_absl():
            options = ocp.CheckpointManagerOptions(read_only=True, create=False,
                                                   save_interval_steps=0)
            manager = ocp.CheckpointManager(directory, options=options)
            steps = list(manager.all_steps())
            if step not in steps:
                raise FeatureNetworkError(
                    f"metrics.json describes step {step} but {directory} holds steps {steps}; "
                    f"finish the run with\n  {command}")
            restore = ocp.args.PyTreeRestore(
                item=abstract, restore_args=ocp.checkpoint_utils.construct_restore_args(abstract),
                partial_restore=True)
            restored = manager.restore(step, args=ocp.args.Composite(state=restore))
            manager.close()
    except FeatureNetworkError:
        raise
    except Exception as e:  # orbax raises many types; all mean "unreadable"
        raise FeatureNetworkError(
            f"the checkpoint in {directory} could not be read ({type(e).__name__}: {e}). It is "
            f"corrupt or from a different network; move {os.path.dirname(directory)} away and "
            f"retrain with\n  {command}") from e
    return restored.state["params"]
