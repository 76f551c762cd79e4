"""Normalizing flows by maximum likelihood: train, evaluate, plot.

    python experiments/flow.py --config experiments/configs/flow_toy.py --workdir runs/flow

Writes the experiment contract into ``--workdir``: ``config.json``,
``metrics.jsonl``, ``metrics.json`` (``test_nll``, ``nll_excess`` where the
entropy is known, two-sample distances of model samples to test data,
``train_seconds``, ``sample_seconds``, ``steps``), ``density.png``,
``curves.png`` and ``checkpoints/``.
"""

from __future__ import annotations

import os
import time
from typing import Any, Dict, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from experiments import runner
from gmjax.data import DATASETS, BatchIterator, load_dataset
from gmjax.data.toy import TOY_DENSITIES
from gmjax.models.flow import FLOW_MODELS, build_flow
from gmjax.objectives import nll_loss
from gmjax.training import (OPTIMIZERS, SCHEDULES, TrainState, data_mesh, fit, make_optimizer,
                            make_train_step, read_jsonl)
from gmjax import metrics as M
from gmjax import viz

CHOICES = {"data.name": TOY_DENSITIES, "model.name": FLOW_MODELS,
           "optim.name": OPTIMIZERS, "optim.schedule": SCHEDULES}
POSITIVE = ("data.batch_size", "train.steps", "train.log_every", "train.checkpoint_every",
            "train.steps_per_call", "optim.lr", "model.num_layers", "eval.num_samples")


def mean_log_prob(log_prob, params, x: np.ndarray, chunk: int = 8192) -> float:
    """Mean of ``log_prob(params, x)`` over ``x``, in chunks (float64 accumulation)."""
    total = 0.0
    for i in range(0, len(x), chunk):
        total += float(jnp.sum(log_prob(params, x[i:i + chunk]).astype(jnp.float32)))
    return total / len(x)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       progress: Optional[bool] = None) -> Dict[str, Any]:
    key = jax.random.PRNGKey(config.seed)
    init_key, train_key, sample_key = jax.random.split(key, 3)

    train = load_dataset(config.data.name, "train", n=config.data.num_train, seed=config.seed)
    test = load_dataset(config.data.name, "test", n=config.data.num_test, seed=config.seed)
    model = build_flow(config.model, dim=train.x.shape[-1])
    params = jax.jit(model.init)(init_key, train.x[:2])
    log_prob = jax.jit(model.apply)

    optimizer = make_optimizer(config.optim, config.train.steps)
    mesh = data_mesh(config.train.num_devices or None)
    state = TrainState.create(params, optimizer, train_key)
    step = make_train_step(nll_loss(model.apply), optimizer, mesh,
                           steps_per_call=config.train.steps_per_call)
    batches = BatchIterator(train.x, config.data.batch_size, seed=config.seed,
                            process_index=jax.process_index(),
                            process_count=jax.process_count())

    def evaluate(state, step_number):
        return {"test_nll": -mean_log_prob(log_prob, state.params, test.x)}

    result = fit(state, step, batches.batch, num_steps=config.train.steps, workdir=workdir,
                 mesh=mesh, log_every=config.train.log_every,
                 checkpoint_every=config.train.checkpoint_every,
                 keep_checkpoints=config.train.keep_checkpoints,
                 eval_every=config.train.eval_every, eval_fn=evaluate,
                 steps_per_call=config.train.steps_per_call, progress=progress,
                 desc=f"flow {config.model.name} on {config.data.name}")
    params = result.state.params

    sample = jax.jit(lambda p, k: model.apply(p, k, config.eval.num_samples, method=model.sample))
    jax.block_until_ready(sample(params, sample_key))  # compile outside the timing
    t0 = time.perf_counter()
    samples = np.asarray(jax.block_until_ready(sample(params, sample_key)))
    sample_seconds = time.perf_counter() - t0

    metrics: Dict[str, Any] = {
        "test_nll": -mean_log_prob(log_prob, params, test.x),
        "train_seconds": result.train_seconds,
        "sample_seconds": sample_seconds,
        "steps": result.steps,
    }
    density = getattr(test, "density", None)
    if density is not None and density.has_log_prob:
        metrics["nll_excess"] = metrics["test_nll"] - density.entropy()
    metrics.update(two_sample_metrics(samples, test.x, sample_key))

    if jax.process_index() == 0:
        viz.plot_density_2d(os.path.join(workdir, "density.png"), test.x, samples,
                            log_prob=lambda x: log_prob(params, x),
                            title=f"{config.model.name} on {config.data.name}: "
                                  f"test NLL {metrics['test_nll']:.3f} nats")
        viz.plot_curves(os.path.join(workdir, "curves.png"),
                        read_jsonl(os.path.join(workdir, "metrics.jsonl")),
                        names=("loss", "test_nll"))
    runner.write_metrics(workdir, metrics)
    return metrics


def two_sample_metrics(samples: np.ndarray, reference: np.ndarray,
                       key: jax.Array) -> Dict[str, float]:
    """MMD (median-heuristic RBF), energy distance and sliced W1 to held-out data."""
    n = min(len(samples), len(reference))
    x, y = jnp.asarray(samples[:n]), jnp.asarray(reference[:n])
    return {name: float(M.METRICS.get(name)(x, y, key))
            for name in ("mmd", "energy_distance", "sliced_wasserstein")}


if __name__ == "__main__":
    runner.define_flags()
    runner.main(train_and_evaluate, CHOICES, POSITIVE)
