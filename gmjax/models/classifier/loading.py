"""Loading the feature network a classifier run trained, read-only.

A classifier workdir (written by the classifier experiment) holds
``config.json`` (which network, which data and splits), ``metrics.json`` (its
``test_accuracy``, written when training finished) and ``checkpoints/`` (the
train state). ``load_feature_network`` reads them without writing anything.
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional

import jax
import jax.numpy as jnp

from gmjax.models.classifier.feature_network import FeatureNetwork
from gmjax.models.classifier.networks import IMAGE_SHAPES, build_classifier
from gmjax.models.restore import restore_state_fields, saved_steps

PyTree = Any


class FeatureNetworkError(FileNotFoundError):
    """No usable feature network at a path (missing, unfinished or unreadable); says what to run."""


def train_hint(workdir: str, data_name: Optional[str] = None) -> str:
    """What trains (or, rerun, finishes) the feature network of ``data_name`` in ``workdir``."""
    if data_name in IMAGE_SHAPES:
        config = f"config classifier_{data_name}"
    else:
        config = "one of the configs " + ", ".join(f"classifier_{name}" for name in IMAGE_SHAPES)
    return f"the classifier experiment with {config} and --workdir {workdir}"


def load_feature_network(workdir: str, batch_size: int = 500) -> FeatureNetwork:
    """Loads the classifier trained in ``workdir``.

    Reads ``config.json`` (architecture, data set, splits), ``metrics.json``
    (``test_accuracy``, ``steps``) and the parameters of the checkpoint at the
    step ``metrics.json`` describes. Nothing in ``workdir`` is modified.

    Raises:
      FeatureNetworkError: the workdir, its config, its final metrics or a
        readable checkpoint is missing; the message says what to run.
    """
    workdir = os.path.abspath(os.fspath(workdir))
    config_path = os.path.join(workdir, "config.json")
    if not os.path.isfile(config_path):
        what = "does not exist" if not os.path.isdir(workdir) else "has no config.json"
        raise FeatureNetworkError(
            f"no feature network in {workdir}: the directory {what}. Train one with "
            f"{train_hint(workdir)}.")
    config = _read_json(config_path, workdir, hint=None)
    try:
        data_name = config["data"]["name"]
        hint = train_hint(workdir, data_name)
        model_config = config["model"]
        model = build_classifier(model_config, int(model_config.get("num_classes", 10)))
        image_shape = IMAGE_SHAPES[data_name]
        train_split, test_split = config["data"]["train_split"], config["data"]["test_split"]
    except (KeyError, TypeError, ValueError) as e:
        raise FeatureNetworkError(
            f"{config_path} is not the config of a classifier run ({type(e).__name__}: {e}); "
            f"train a feature network with {train_hint('<a fresh workdir>')}.") from e

    metrics_path = os.path.join(workdir, "metrics.json")
    if not os.path.isfile(metrics_path):
        raise FeatureNetworkError(
            f"{workdir} has no metrics.json: the classifier run did not finish. Finish it "
            f"(it resumes) by rerunning {hint}.")
    metrics = _read_json(metrics_path, workdir, hint)
    if "test_accuracy" not in metrics or "steps" not in metrics:
        raise FeatureNetworkError(f"{metrics_path} lacks test_accuracy / steps; rerun {hint}.")

    params = _restore_params(model, image_shape, os.path.join(workdir, "checkpoints"),
                             int(metrics["steps"]), hint)
    return FeatureNetwork(model, params, data_name=data_name, image_shape=image_shape,
                          train_split=train_split, test_split=test_split,
                          test_accuracy=float(metrics["test_accuracy"]), source=workdir,
                          batch_size=batch_size)


def _read_json(path: str, workdir: str, hint: Optional[str]) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        fix = f"rerun {hint}" if hint else "train a new one in a fresh workdir"
        raise FeatureNetworkError(f"{path} is unreadable ({type(e).__name__}: {e}); move "
                                  f"{workdir} away and {fix}.") from e


def _restore_params(model, image_shape: tuple[int, ...], directory: str, step: int,
                    hint: str) -> PyTree:
    """The ``params`` field of the train state saved at ``step`` (only that field is read)."""
    steps = saved_steps(directory)
    if not steps:
        raise FeatureNetworkError(f"no checkpoints in {directory}; rerun {hint}.")
    if step not in steps:
        raise FeatureNetworkError(
            f"metrics.json describes step {step} but {directory} holds steps {steps}; "
            f"finish the run by rerunning {hint}.")
    abstract = jax.eval_shape(model.init, jax.random.PRNGKey(0),
                              jnp.zeros((1,) + tuple(image_shape), jnp.float32))
    try:
        return restore_state_fields(directory, step, {"params": abstract})["params"]
    except Exception as e:  # orbax raises many types; all mean "unreadable"
        raise FeatureNetworkError(
            f"the checkpoint in {directory} could not be read ({type(e).__name__}: {e}). It is "
            f"corrupt or from a different network; move {os.path.dirname(directory)} away and "
            f"retrain with {hint}.") from e
