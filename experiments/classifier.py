"""The feature classifier that image metrics (FID / KID / IS analogues) are computed with.

    python experiments/classifier.py --config experiments/configs/classifier_mnist.py \
        --workdir runs/classifier_mnist

Trains a LeNet by cross-entropy (with random shifts of the training images)
and writes the experiment contract into ``--workdir``: ``config.json``,
``metrics.jsonl``, ``metrics.json`` (``test_accuracy``,
``test_cross_entropy`` in nats, ``train_seconds``, ``steps``, ...), ``curves.png`` and
``checkpoints/``. ``gmjax.models.classifier.load_feature_network(workdir)``
then loads the network for ``gmjax.metrics.features``.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Dict, Optional

import jax
import ml_collections
import numpy as np

from experiments import runner
from gmjax.data import BatchIterator, load_dataset
from gmjax.data.augment import random_shift
from gmjax.metrics.features import class_accuracy
from gmjax.models.classifier import CLASSIFIERS, IMAGE_SHAPES, FeatureNetwork, build_classifier
from gmjax.nets.lenet import image_input
from gmjax.objectives.classification import cross_entropy_loss
from gmjax.training import (OPTIMIZERS, SCHEDULES, TrainState, data_mesh, make_optimizer,
                            make_train_step, read_jsonl)
from gmjax import viz

CHOICES = {"data.name": tuple(IMAGE_SHAPES), "model.name": CLASSIFIERS,
           "optim.name": OPTIMIZERS, "optim.schedule": SCHEDULES}
POSITIVE = ("data.batch_size", "train.steps", "train.log_every", "train.checkpoint_every",
            "train.steps_per_call", "optim.lr", "model.num_classes", "model.kernel_size",
            "model.feature_dim")


def check_config(config: ml_collections.ConfigDict) -> None:
    """Checks what ``runner.validate`` cannot: split strings and ranges."""
    runner.check_splits(config)
    if not 0 <= config.augment.max_shift < min(IMAGE_SHAPES[config.data.name][:2]) // 2:
        raise runner.ConfigError(f"--config.augment.max_shift={config.augment.max_shift} must "
                                 f"be >= 0 and under half the image side")
    if not 0 <= config.model.dropout_rate < 1:
        raise runner.ConfigError(f"--config.model.dropout_rate={config.model.dropout_rate} "
                                 f"must be in [0, 1)")


def evaluate(network: FeatureNetwork, images: np.ndarray, labels: np.ndarray) -> Dict[str, float]:
    """Held-out accuracy and cross-entropy (mean -log p(label | image), nats)."""
    probs = network.probs(images)
    ce = -np.mean(np.log(np.maximum(probs[np.arange(len(labels)), labels], 1e-30)))
    return {"test_accuracy": class_accuracy(probs, labels), "test_cross_entropy": float(ce)}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       progress: Optional[bool] = None) -> Dict[str, Any]:
    check_config(config)
    init_key, train_key = jax.random.split(jax.random.PRNGKey(config.seed))
    data_dir = config.data.data_dir or None
    train = load_dataset(config.data.name, config.data.train_split, data_dir=data_dir)
    test = load_dataset(config.data.name, config.data.test_split, data_dir=data_dir)

    model = build_classifier(config.model, config.model.num_classes)
    params = jax.jit(model.init)(init_key, image_input(train.x[:1]))

    def logits_fn(params, images, key):
        return model.apply(params, image_input(images), deterministic=False,
                           rngs={"dropout": key})

    augment = functools.partial(random_shift, max_shift=config.augment.max_shift)
    loss_fn = cross_entropy_loss(logits_fn, augment if config.augment.max_shift else None)
    optimizer = make_optimizer(config.optim, config.train.steps)
    mesh = data_mesh(config.train.num_devices or None)
    state = TrainState.create(params, optimizer, train_key)
    step = make_train_step(loss_fn, optimizer, mesh, steps_per_call=config.train.steps_per_call)
    batches = BatchIterator((train.x, train.y), config.data.batch_size, seed=config.seed,
                            process_index=jax.process_index(),
                            process_count=jax.process_count())

    def network(params) -> FeatureNetwork:
        return FeatureNetwork(model, params, data_name=config.data.name,
                              image_shape=IMAGE_SHAPES[config.data.name],
                              train_split=config.data.train_split,
                              test_split=config.data.test_split)

    result = runner.fit_with_config(config, state, step, batches.batch, workdir, mesh,
        eval_fn=lambda state, _: evaluate(network(state.params), test.x, test.y),
        progress=progress, desc=f"classifier {config.model.name} on {config.data.name}")

    metrics: Dict[str, Any] = evaluate(network(result.state.params), test.x, test.y)
    metrics.update(train_seconds=result.train_seconds, steps=result.steps,
                   num_train=len(train), num_test=len(test))
    if jax.process_index() == 0:
        viz.plot_curves(os.path.join(workdir, "curves.png"),
                        read_jsonl(os.path.join(workdir, "metrics.jsonl")),
                        names=("loss", "test_accuracy"),
                        title=f"{config.model.name} on {config.data.name} "
                              f"{config.data.train_split}: {100 * metrics['test_accuracy']:.2f}% "
                              f"on {config.data.test_split}")
    runner.write_metrics(workdir, metrics)
    return metrics


if __name__ == "__main__":
    runner.define_flags()
    runner.main(train_and_evaluate, CHOICES, POSITIVE)
