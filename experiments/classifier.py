"""The feature classifier that image metrics (FID / KID / IS analogues) are computed with.

    python experiments/classifier.py --config experiments/configs/classifier_mnist.py \
        --workdir runs/classifier_mnist

Trains a LeNet by cross-entropy (with random shifts of the training images)
and writes the experiment contract into ``--workdir``: ``config.json``,
``metrics.jsonl``, ``metrics.json`` (``test_accuracy``,
``test_cross_entropy`` in nats, ``train_seconds``, ``steps``, ...), ``curves.png`` and
``checkpoints/``. ``gmjax.models.classifier.load_feature_network(workdir)``
then loads the network whose features the image metrics of ``gmjax.metrics`` compare.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

import jax
import ml_collections

from gmjax import experiment
from gmjax.data import BatchIterator, load_dataset
from gmjax.models.classifier import (CLASSIFIERS, IMAGE_SHAPES, FeatureNetwork, build_classifier,
                                     classifier_loss, evaluate_classifier)
from gmjax.nets.lenet import image_input
from gmjax.training import (OPTIMIZERS, SCHEDULES, TrainState, data_mesh, make_optimizer,
                            make_train_step, read_jsonl)
from gmjax import viz

CHOICES = {"data.name": tuple(IMAGE_SHAPES), "model.name": CLASSIFIERS,
           "optim.name": OPTIMIZERS, "optim.schedule": SCHEDULES}
POSITIVE = ("data.batch_size", "train.steps", "train.log_every", "train.checkpoint_every",
            "train.steps_per_call", "optim.lr", "model.num_classes", "model.kernel_size",
            "model.feature_dim")


def check_config(config: ml_collections.ConfigDict) -> None:
    """What the run builds from ``config`` before it loads data (the network, its
    optimizer, mesh and fit options), and the splits, data directory and ranges."""
    experiment.check_splits(config)
    experiment.check_data_dir(config)
    if not 0 <= config.augment.max_shift < min(IMAGE_SHAPES[config.data.name][:2]) // 2:
        raise experiment.ConfigError(f"--config.augment.max_shift={config.augment.max_shift} "
                                     f"must be >= 0 and under half the image side")
    if not 0 <= config.model.dropout_rate < 1:
        raise experiment.ConfigError(f"--config.model.dropout_rate={config.model.dropout_rate} "
                                     f"must be in [0, 1)")
    build_classifier(config.model, config.model.num_classes)
    experiment.check_fit(config)


def unread_fields(config: ml_collections.ConfigDict) -> Dict[str, str]:
    """The fields a run of ``config`` does not read, and why (``gmjax.experiment.contract``)."""
    unread = {f"data.{name}": "a toy-density field: the classifier trains on "
                              "data.train_split and is tested on data.test_split"
              for name in ("num_train", "num_test") if name in config.data}
    unread.update(experiment.unread_by(
        lambda c: build_classifier(c.model, c.model.num_classes), config, "model",
        f"not an option of {config.model.name!r}"))
    unread.update(experiment.unread_optimizer_fields(config))
    return unread


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       progress: Optional[bool] = None) -> Dict[str, Any]:
    check_config(config)
    init_key, train_key = jax.random.split(jax.random.PRNGKey(config.seed))
    data_dir = config.data.data_dir or None
    train = load_dataset(config.data.name, config.data.train_split, data_dir=data_dir)
    test = load_dataset(config.data.name, config.data.test_split, data_dir=data_dir)

    model = build_classifier(config.model, config.model.num_classes)
    params = jax.jit(model.init)(init_key, image_input(train.x[:1]))

    loss_fn = classifier_loss(model, config.augment.max_shift)
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

    result = experiment.fit_with_config(config, state, step, batches.batch, workdir, mesh,
        eval_fn=lambda state, _: evaluate_classifier(network(state.params), test.x, test.y),
        progress=progress, desc=f"classifier {config.model.name} on {config.data.name}")

    metrics: Dict[str, Any] = evaluate_classifier(network(result.state.params), test.x, test.y)
    metrics.update(train_seconds=result.train_seconds, steps=result.steps,
                   num_train=len(train), num_test=len(test))
    if jax.process_index() == 0:
        viz.plot_curves(os.path.join(workdir, "curves.png"),
                        read_jsonl(os.path.join(workdir, "metrics.jsonl")),
                        names=("loss", "test_accuracy"),
                        title=f"{config.model.name} on {config.data.name} "
                              f"{config.data.train_split}: {100 * metrics['test_accuracy']:.2f}% "
                              f"on {config.data.test_split}")
    experiment.write_metrics(workdir, metrics)
    return metrics


EXPERIMENT = experiment.Experiment(train_and_evaluate, choices=CHOICES, positive=POSITIVE,
                                   check=check_config, unread=unread_fields)

if __name__ == "__main__":
    experiment.main(EXPERIMENT)
