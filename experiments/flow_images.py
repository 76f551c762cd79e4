"""Normalizing flows on images by maximum likelihood: bits per dimension and samples.

    python experiments/flow_images.py --config experiments/configs/flow_mnist.py \
        --workdir runs/flow_mnist

Discrete images x in {0, ..., L-1}^D (L = 256 for 8-bit data, 17 for the
sklearn digits) are dequantized inside the loss with the step's key,
u = (x + v) / L with v ~ U[0, 1)^D, and optionally mapped to
y = logit(alpha + (1 - 2 alpha) u) (``data.preprocess = "logit"``, RealNVP's
pre-processing) or to y = u - 1/2 (``"none"``). The flow models y, so

    log p_U(u) = log p_Y(y) + log|det dy/du|,
    bits/dim   = (-log p_U(u) + D log L) / (D log 2),

an upper bound, in expectation over v, on the discrete model's bits/dim
(Theis et al., ICLR 2016). The loss is the batch mean of that bits/dim
(``gmjax.objectives.dequantized_log_prob`` and ``bits_per_dim_loss``).
``model.actnorm`` switches ``realnvp_image``'s ActNorm layers (Glow always
has them).

Writes the experiment contract into ``--workdir``: ``config.json``,
``metrics.jsonl``, ``metrics.json`` (``bits_per_dim`` and ``test_nll`` -- nats
per image of the discrete data -- on the test split with one fixed
dequantization draw, ``train_seconds``, ``sample_seconds``, ``steps``),
``samples.png`` (an 8x8 grid at temperature ``eval.temperature``),
``curves.png`` and ``checkpoints/``.
"""

from __future__ import annotations

import functools
import math
import os
import time
from typing import Any, Callable, Dict, Optional, Tuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gmjax import experiment
from gmjax.data import (BatchIterator, dequantize_uniform, inverse_logit_transform,
                        load_dataset, logit_transform)
from gmjax.flows import FLOWS, Flow
from gmjax.metrics import bits_per_dim
from gmjax.models.flow import build_flow
from gmjax.objectives import bits_per_dim_loss, dequantized_log_prob
from gmjax.training import (OPTIMIZERS, SCHEDULES, TrainState, data_mesh, make_optimizer,
                            make_train_step, read_jsonl)
from gmjax import viz
from gmjax.viz import save_image_grid

IMAGE_SHAPES = {"digits": (8, 8, 1), "fashion_mnist": (28, 28, 1), "mnist": (28, 28, 1)}
IMAGE_DATA = tuple(IMAGE_SHAPES)
PREPROCESS = ("logit", "none")
CHOICES = {"data.name": IMAGE_DATA, "data.preprocess": PREPROCESS,
           "model.name": FLOWS.recipe_names(event_rank=3),
           "optim.name": OPTIMIZERS, "optim.schedule": SCHEDULES}
POSITIVE = ("data.batch_size", "train.steps", "train.log_every", "train.checkpoint_every",
            "train.steps_per_call", "optim.lr", "model.levels", "model.steps_per_level",
            "model.width", "model.init_batch", "eval.batch_size", "eval.temperature")
GRID = 8  # samples.png is GRID x GRID images


def integer_images(x: np.ndarray, num_levels: int) -> np.ndarray:
    """``uint8`` intensities ``0..num_levels-1`` (digits come as ``k / 16`` floats)."""
    if x.dtype == np.uint8:
        return x
    return np.rint(x * (num_levels - 1)).astype(np.uint8)


def preprocess(u: jax.Array, kind: str, alpha: float) -> Tuple[jax.Array, jax.Array]:
    """``u [n, ...] in [0, 1) -> (y, log|det dy/du| [n])``."""
    if kind == "logit":
        return logit_transform(u, alpha)
    return u - 0.5, jnp.zeros(u.shape[0], u.dtype)


def postprocess(y: jax.Array, kind: str, alpha: float) -> jax.Array:
    """The inverse of ``preprocess``: model space back to intensities in [0, 1]."""
    u = inverse_logit_transform(y, alpha)[0] if kind == "logit" else y + 0.5
    return jnp.clip(u, 0.0, 1.0)


def config_log_prob(log_prob: Callable, config: ml_collections.ConfigDict,
                    num_levels: int) -> Callable:
    """``(params, x uint8 [n, h, w, c], key) -> log p_U(u) [n]`` with u the dequantized x,
    pre-processed as ``config.data`` says."""
    transform = functools.partial(preprocess, kind=config.data.preprocess,
                                  alpha=config.data.logit_alpha)
    return dequantized_log_prob(log_prob, num_levels, transform)


def mean_log_prob(log_prob_u: Callable, params, x: np.ndarray, key: jax.Array,
                  chunk: int) -> float:
    """Mean ``log p_U`` over ``x`` in fixed-size chunks (the last one padded), key per chunk."""
    total = 0.0
    for i in range(0, len(x), chunk):
        part = x[i:i + chunk]
        padded = np.concatenate([part, x[:chunk - len(part)]]) if len(part) < chunk else part
        values = log_prob_u(params, padded, jax.random.fold_in(key, i))
        total += float(np.sum(np.asarray(values[:len(part)], np.float64)))
    return total / len(x)


def build_image_flow(model: ml_collections.ConfigDict, event_shape: Tuple[int, ...]) -> Flow:
    """The image recipe ``model.name`` with the config's sizes (``build_flow``).

    ``model.actnorm`` reaches ``realnvp_image`` (ActNorm before every coupling,
    or none); Glow always has ActNorm, and asking it for none is an error.
    """
    check_actnorm(model)
    return build_flow(model, tuple(event_shape))


def check_actnorm(model: ml_collections.ConfigDict) -> None:
    if not model.get("actnorm", True) and model.name != "realnvp_image":
        raise experiment.ConfigError(f"--config.model.actnorm=False: {model.name!r} always has "
                                     "ActNorm; only realnvp_image can go without")


def check_config(config: ml_collections.ConfigDict) -> None:
    """What the run builds from ``config`` before it loads data: the flow with its
    optimizer, mesh and fit options; and the splits, data directory and logit alpha."""
    experiment.check_splits(config)
    experiment.check_data_dir(config)
    if not 0 < config.data.logit_alpha < 0.5:
        raise experiment.ConfigError(f"--config.data.logit_alpha={config.data.logit_alpha} "
                                     "must be in (0, 0.5)")
    build_image_flow(config.model, IMAGE_SHAPES[config.data.name])
    experiment.check_fit(config)


def unread_fields(config: ml_collections.ConfigDict) -> Dict[str, str]:
    """The fields a run of ``config`` does not read, and why (``gmjax.experiment.contract``)."""
    return experiment.unread_optimizer_fields(config)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       progress: Optional[bool] = None) -> Dict[str, Any]:
    check_actnorm(config.model)  # before any work
    key = jax.random.PRNGKey(config.seed)
    init_key, train_key, eval_key, sample_key = jax.random.split(key, 4)

    data_dir = config.data.data_dir or None
    train = load_dataset(config.data.name, config.data.train_split, data_dir=data_dir)
    test = load_dataset(config.data.name, config.data.test_split, data_dir=data_dir)
    num_levels = train.num_levels
    train_x = integer_images(train.x, num_levels)
    test_x = integer_images(test.x, num_levels)
    event_shape = train_x.shape[1:]
    num_dims = math.prod(event_shape)

    model: Flow = build_image_flow(config.model, event_shape)
    log_prob_u = config_log_prob(model.apply, config, num_levels)
    # ActNorm's data-dependent init sees a dequantized, pre-processed training batch.
    init_u = dequantize_uniform(init_key, train_x[:config.model.init_batch], num_levels)
    init_y, _ = preprocess(init_u, config.data.preprocess, config.data.logit_alpha)
    params = jax.jit(model.init)(init_key, init_y)

    optimizer = make_optimizer(config.optim, config.train.steps)
    mesh = data_mesh(config.train.num_devices or None)
    state = TrainState.create(params, optimizer, train_key)
    step = make_train_step(bits_per_dim_loss(log_prob_u, num_dims, num_levels), optimizer, mesh,
                           steps_per_call=config.train.steps_per_call)
    batches = BatchIterator(train_x, config.data.batch_size, seed=config.seed,
                            process_index=jax.process_index(),
                            process_count=jax.process_count())
    eval_log_prob = jax.jit(log_prob_u)

    def test_bits_per_dim(params) -> float:
        log_p = mean_log_prob(eval_log_prob, params, test_x, eval_key, config.eval.batch_size)
        return float(bits_per_dim(-log_p, num_dims, num_levels))

    def evaluate(state, step_number):
        return {"bits_per_dim": test_bits_per_dim(state.params)}

    result = experiment.fit_with_config(config, state, step, batches.batch, workdir, mesh,
                                        eval_fn=evaluate, progress=progress,
                                        desc=f"flow {config.model.name} on {config.data.name}")
    params = result.state.params

    temperature = config.eval.temperature
    kind, alpha = config.data.preprocess, config.data.logit_alpha

    @jax.jit
    def sample(params, key):
        shape = (GRID * GRID, *event_shape)
        z = temperature * jax.random.normal(key, (math.prod(shape),)).reshape(shape)
        y = model.apply(params, z, method=lambda m, v: m.bijector().forward(v))
        return postprocess(y, kind, alpha)

    jax.block_until_ready(sample(params, sample_key))  # compile outside the timing
    t0 = time.perf_counter()
    samples = np.asarray(jax.block_until_ready(sample(params, sample_key)))
    sample_seconds = time.perf_counter() - t0

    bpd = test_bits_per_dim(params)
    metrics: Dict[str, Any] = {
        "bits_per_dim": bpd,
        "test_nll": bpd * num_dims * math.log(2.0),
        "train_seconds": result.train_seconds,
        "sample_seconds": sample_seconds,
        "steps": result.steps,
    }
    if jax.process_index() == 0:
        save_image_grid(os.path.join(workdir, "samples.png"), samples, GRID,
                        f"{config.model.name} on {config.data.name}\n"
                        f"{config.data.test_split}: {bpd:.3f} bits/dim, T = {temperature:g}")
        viz.plot_curves(os.path.join(workdir, "curves.png"),
                        read_jsonl(os.path.join(workdir, "metrics.jsonl")),
                        names=("loss", "bits_per_dim"))
    experiment.write_metrics(workdir, metrics)
    return metrics


EXPERIMENT = experiment.Experiment(train_and_evaluate, choices=CHOICES, positive=POSITIVE,
                                   check=check_config, unread=unread_fields)

if __name__ == "__main__":
    experiment.main(EXPERIMENT)
