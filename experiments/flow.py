"""Normalizing flows by maximum likelihood: train, evaluate, plot.

    python experiments/flow.py --config experiments/configs/flow_toy.py --workdir runs/flow

Writes the experiment contract into ``--workdir``: ``config.json``,
``metrics.jsonl``, ``metrics.json`` (``test_nll``, ``nll_excess`` where the
entropy is known, two-sample distances of model samples to test data,
``density_integral`` for 2-D data, ``train_seconds``, ``sample_seconds``,
``steps``), ``density.png`` (2-D data), ``curves.png`` and ``checkpoints/``.
``--config.data.name`` is any registered data set of vectors
(``gmjax.data.DATASETS``; one registered after import too), and its loader's
options come from ``data.options`` in the config file.
``--config.model.name=gmm`` fits the EM baseline instead (``train.steps`` EM
iterations, ``model.num_components`` components).
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Callable, Dict, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gmjax import experiment
from gmjax.data import BatchIterator, load_dataset
from gmjax.data.registry import check_dataset_options, vector_dataset_names
from gmjax.data.toy import TOY_DENSITIES
from gmjax.models import gmm
from gmjax.flows import FLOWS
from gmjax.models.flow import build_flow, check_spline_bound
from gmjax.objectives import nll_loss
from gmjax.training import (OPTIMIZERS, SCHEDULES, TrainState, data_mesh, make_optimizer,
                            make_train_step, read_jsonl)
from gmjax import metrics as M
from gmjax import viz

def model_names():
    """The vector flow recipes and "gmm", the Gaussian mixture fitted by EM (the classical
    baseline beside the flows)."""
    return [*FLOWS.recipe_names(event_rank=1), "gmm"]


# Registries and functions are read when a config is checked, so data sets and recipes
# registered after this module was imported are valid choices.
CHOICES = {"data.name": vector_dataset_names, "model.name": model_names,
           "optim.name": OPTIMIZERS, "optim.schedule": SCHEDULES}
POSITIVE = ("data.batch_size", "data.num_train", "data.num_test", "train.steps",
            "train.log_every", "train.checkpoint_every", "train.steps_per_call", "optim.lr",
            "model.num_layers", "model.num_components", "eval.num_samples")
TOY_DIM = 2  # every toy density is 2-D
# What model.name=gmm, fitted by EM on all training points at once, does not read.
EM_UNREAD = ("data.batch_size", "optim", "train.log_every", "train.eval_every",
             "train.checkpoint_every", "train.keep_checkpoints", "train.steps_per_call",
             "train.num_devices")


def data_options(config: ml_collections.ConfigDict) -> Dict[str, Any]:
    """``load_dataset``'s keyword arguments beyond the split: ``data.num_*`` as ``n``, the
    seed, ``data.data_dir`` (data sets that are not toy densities) and ``data.options``."""
    options = experiment.section_options(config, "data.options")
    if config.data.name not in TOY_DENSITIES:
        options["data_dir"] = config.data.data_dir or None
    return options


def check_config(config: ml_collections.ConfigDict) -> None:
    """What the run builds from ``config`` before it draws data: the data set's options,
    the flow with its optimizer, mesh and fit options (``model.name=gmm`` builds nothing
    ahead)."""
    options = data_options(config)
    if options.get("data_dir"):
        experiment.check_data_dir(config)
    try:
        check_dataset_options(config.data.name,
                              {k: v for k, v in options.items() if k != "data_dir"})
    except ValueError as e:
        raise experiment.ConfigError(f"bad --config.data.options: {e}") from None
    if config.model.name != "gmm":
        try:
            build_flow(config.model, TOY_DIM)
        except ValueError as e:
            raise experiment.ConfigError(f"bad --config.model.*: {e}") from None
        experiment.check_fit(config)


def unread_fields(config: ml_collections.ConfigDict) -> Dict[str, str]:
    """The fields a run of ``config`` does not read, and why (``gmjax.experiment.contract``)."""
    unread = ({"data.data_dir": "toy densities are sampled in memory; nothing is loaded"}
              if config.data.name in TOY_DENSITIES else {})
    if config.model.name == "gmm":
        unread.update(dict.fromkeys(EM_UNREAD, "model.name='gmm' is fitted by EM on all "
                                    "training points at once, without minibatches, optimizer, "
                                    "logs or checkpoints; train.steps counts EM iterations"))
        unread.update({path: "a flow option; model.name='gmm' reads model.num_components"
                       for path in experiment.leaf_fields(config)
                       if path.startswith("model.")
                       and path not in ("model.name", "model.num_components")})
    else:
        unread.update(experiment.unread_by(lambda c: build_flow(c.model, TOY_DIM), config,
                                           "model", f"not an option of {config.model.name!r}"))
        unread["model.num_components"] = "model.name='gmm' only"
        unread.update(experiment.unread_optimizer_fields(config))
    return unread


def mean_log_prob(log_prob: Callable[[np.ndarray], jax.Array], x: np.ndarray,
                  chunk: int = 8192) -> float:
    """Mean of ``log_prob(x)`` over the rows of ``x``, in chunks."""
    total = 0.0
    for i in range(0, len(x), chunk):
        total += float(jnp.sum(log_prob(x[i:i + chunk])))
    return total / len(x)


def grid_integral(log_prob: Callable[[np.ndarray], jax.Array], data: np.ndarray,
                  resolution: int = 400) -> float:
    """Riemann sum of exp(log_prob) over a box around the 2-D data (should be ~1)."""
    lo, hi = data.min(0), data.max(0)
    lo, hi = lo - 0.5 * (hi - lo), hi + 0.5 * (hi - lo)
    xs, ys, logp = viz.density_grid(log_prob, (lo[0], hi[0], lo[1], hi[1]), resolution)
    return float(np.exp(logp).sum() * (xs[1] - xs[0]) * (ys[1] - ys[0]))


@dataclasses.dataclass(frozen=True)
class FittedDensity:
    log_prob: Callable[[np.ndarray], jax.Array]  # [n, d] -> [n], jitted
    sample: Callable[[jax.Array], jax.Array]     # key -> [eval.num_samples, d], jitted
    train_seconds: float
    steps: int


def fit_flow(config, train, test, workdir, key, progress) -> FittedDensity:
    """Maximum likelihood with the shared fit loop (checkpoints, resume, NaN guard)."""
    init_key, train_key = jax.random.split(key)
    model = build_flow(config.model, train.x.shape[-1])
    check_spline_bound(config.model, train.x)  # SplineBoundWarning if data leave the box
    # Layers with data-dependent init (the ActNorms of model.standardize) take their
    # statistics from this batch, so it is thousands of points, not a shape example.
    params = jax.jit(model.init)(init_key, train.x[:4096])
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
        return {"test_nll": -mean_log_prob(lambda x: log_prob(state.params, x), test.x)}

    result = experiment.fit_with_config(config, state, step, batches.batch, workdir, mesh,
                                        eval_fn=evaluate, progress=progress,
                                        desc=f"flow {config.model.name} on {config.data.name}")
    params = result.state.params
    n = config.eval.num_samples
    return FittedDensity(
        log_prob=jax.jit(lambda x: model.apply(params, x)),
        sample=jax.jit(lambda k: model.apply(params, k, n, method=model.sample)),
        train_seconds=result.train_seconds, steps=result.steps)


def fit_em(config, train, test, workdir, key, progress) -> FittedDensity:
    """The classical baseline: a full-covariance Gaussian mixture fitted by EM."""
    del test, workdir, progress
    x = jnp.asarray(train.x)
    fitted, _ = gmm.fit_gmm(key, x, config.model.num_components, num_iters=config.train.steps)
    jax.block_until_ready(fitted)  # the first call compiles: time a second, identical one
    t0 = time.perf_counter()
    fitted, _ = jax.block_until_ready(
        gmm.fit_gmm(key, x, config.model.num_components, num_iters=config.train.steps))
    n = config.eval.num_samples
    return FittedDensity(log_prob=jax.jit(lambda v: gmm.log_prob(fitted, v)),
                         sample=jax.jit(lambda k: gmm.sample(fitted, k, n)),
                         train_seconds=time.perf_counter() - t0, steps=config.train.steps)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       progress: Optional[bool] = None) -> Dict[str, Any]:
    fit_key, sample_key = jax.random.split(jax.random.PRNGKey(config.seed))
    options = data_options(config)
    train = load_dataset(config.data.name, "train", n=config.data.num_train, seed=config.seed,
                         **options)
    test = load_dataset(config.data.name, "test", n=config.data.num_test, seed=config.seed,
                        **options)
    fitter = fit_em if config.model.name == "gmm" else fit_flow
    model = fitter(config, train, test, workdir, fit_key, progress)

    jax.block_until_ready(model.sample(sample_key))  # compile outside the timing
    t0 = time.perf_counter()
    samples = np.asarray(jax.block_until_ready(model.sample(sample_key)))
    sample_seconds = time.perf_counter() - t0

    metrics: Dict[str, Any] = {
        "test_nll": -mean_log_prob(model.log_prob, test.x),
        "train_seconds": model.train_seconds,
        "sample_seconds": sample_seconds,
        "steps": model.steps,
    }
    density = getattr(test, "density", None)
    if density is not None and density.has_log_prob:
        # Paired on the test set: mean of log p(x) - log q(x), an unbiased estimate of
        # KL(p || q) = test NLL - entropy with far less Monte Carlo noise than either.
        metrics["nll_excess"] = metrics["test_nll"] + mean_log_prob(density.log_prob, test.x)
    if test.x.shape[-1] == 2:
        metrics["density_integral"] = grid_integral(model.log_prob, test.x)
    metrics.update(two_sample_metrics(samples, test.x, sample_key))

    if jax.process_index() == 0:
        if test.x.shape[-1] == 2:  # a data set of one's own may have more dimensions
            viz.plot_density_2d(os.path.join(workdir, "density.png"), test.x, samples,
                                log_prob=model.log_prob,
                                title=f"{config.model.name} on {config.data.name}: "
                                      f"test NLL {metrics['test_nll']:.3f} nats")
        if os.path.exists(os.path.join(workdir, "metrics.jsonl")):
            viz.plot_curves(os.path.join(workdir, "curves.png"),
                            read_jsonl(os.path.join(workdir, "metrics.jsonl")),
                            names=("loss", "test_nll"))
    experiment.write_metrics(workdir, metrics)
    return metrics


def two_sample_metrics(samples: np.ndarray, reference: np.ndarray,
                       key: jax.Array) -> Dict[str, float]:
    """MMD (median-heuristic RBF), energy distance and sliced W1 to held-out data."""
    n = min(len(samples), len(reference))
    x, y = jnp.asarray(samples[:n]), jnp.asarray(reference[:n])
    return {name: float(M.METRICS.get(name)(x, y, key))
            for name in ("mmd", "energy_distance", "sliced_wasserstein")}


EXPERIMENT = experiment.Experiment(train_and_evaluate, choices=CHOICES, positive=POSITIVE,
                                   check=check_config, unread=unread_fields)

if __name__ == "__main__":
    experiment.main(EXPERIMENT)
