"""Energy-based models on 2-D toy data: contrastive divergence with Langevin negatives.

    python experiments/ebm.py --config experiments/configs/ebm_toy.py \
        --workdir runs/ebm_8gaussians
    python experiments/ebm.py --config experiments/configs/ebm_toy.py \
        --workdir runs/ebm_rings --config.data.name=rings

Trains an energy ``E_theta`` (``model.*``, ``gmjax.models.ebm.build_energy``)
by the contrastive-divergence loss ``gmjax.objectives.ebm.contrastive_divergence_loss``
(``objective.alpha``: Du and Mordatch's energy-magnitude regularizer). Each
step draws ``data.batch_size`` chain starts from the replay buffer
(``buffer.size`` points; a start is fresh uniform noise on
``[buffer.low, buffer.high)^2`` with probability ``buffer.reinit_prob``),
runs ``langevin.steps`` Langevin steps ``x - (eps/2) grad E + sigma z``
(``langevin.step_size`` eps, ``langevin.noise_scale`` sigma,
``langevin.grad_clip``) and writes the end points back. The buffer is part
of the checkpointed train state, so a resumed run continues the same chains.

Writes the experiment contract into ``--workdir``: ``config.json``,
``metrics.jsonl``, ``metrics.json``, ``checkpoints/`` and the figures
``density.png`` (test data | Langevin samples | exp(-E) / Z),
``langevin.png`` (Langevin samples over the contours of exp(-E)) and
``curves.png``. ``metrics.json`` holds, against the test points:
``mmd``, ``energy_distance``, ``sliced_wasserstein`` of ``eval.num_samples``
fresh Langevin chains run ``eval.langevin_steps`` steps from noise, the same
with the prefix ``buffer_`` for as many replay-buffer points, ``test_nll``
(nats, with ``log Z`` a Riemann sum of exp(-E) on a grid around the data,
``log_normalizer``), ``nll_excess`` (paired, where the data's density is
known), ``modes_captured`` / ``high_quality_frac`` / ``mode_weight_tv`` of
the Langevin samples for Gaussian-mixture data, ``train_seconds``,
``sample_seconds`` (the fresh chains) and ``steps``.

The trained energy is a sampling target: ``gmjax.models.ebm.learned_ebm_target(workdir)``;
``experiments/configs/temperflow_ebm.py`` runs TemperFlow on it.
"""

from __future__ import annotations

import os
import time
from typing import Any, Dict, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import struct

from gmjax import experiment, viz
from gmjax import metrics as M
from gmjax.data import BatchIterator, load_dataset
from gmjax.data.toy import TOY_DENSITIES
from gmjax.models.ebm import ENERGY_NETS, build_energy, data_modes, grid_log_normalizer
from gmjax.nets.energy import ENERGY_ACTIVATIONS
from gmjax.objectives.ebm import (contrastive_divergence_loss, langevin_negatives,
                                  replay_buffer_init, replay_buffer_push, replay_buffer_sample,
                                  uniform_noise)
from gmjax.training import OPTIMIZERS, SCHEDULES, make_optimizer, read_jsonl
from gmjax.training.step import build_train_step, device_key, gradient_update
from gmjax.viz.energy import plot_samples_on_density

DIM = 2  # every toy density is 2-D
CHOICES = {"data.name": TOY_DENSITIES, "model.net": ENERGY_NETS,
           "model.activation": tuple(ENERGY_ACTIVATIONS), "optim.name": OPTIMIZERS,
           "optim.schedule": SCHEDULES}
POSITIVE = ("data.batch_size", "data.num_train", "data.num_test", "train.steps",
            "train.log_every", "train.checkpoint_every", "train.steps_per_call", "optim.lr",
            "langevin.steps", "langevin.step_size", "buffer.size", "eval.num_samples",
            "eval.grid_resolution")


@struct.dataclass
class EBMState:
    """The train state of an EBM: ``TrainState``'s fields and the replay buffer.

    Attributes:
      step, params, opt_state, key: as in ``gmjax.training.TrainState``.
      buffer: ``[buffer.size, d]`` past negatives, the chains' starting points.
    """

    step: jax.Array
    params: Any
    opt_state: Any
    key: jax.Array
    buffer: jax.Array


def langevin_options(config) -> Dict[str, Any]:
    """``langevin_negatives``' keyword options from the ``langevin`` block."""
    lv = config.langevin
    return dict(step_size=float(lv.step_size), noise_scale=float(lv.noise_scale),
                grad_clip=float(lv.grad_clip))


def make_ebm_step(net, config, optimizer, mesh):
    """The train step: buffer draw, ``langevin.steps`` Langevin steps, a CD update, a push.

    The chains use ``fold_in(key, step)`` without the device index, so every
    device draws the same negatives and the buffer stays replicated; each
    device's loss sees its shard of the data and all the negatives.
    """
    loss = contrastive_divergence_loss(net.apply, config.objective.alpha)
    n, steps, options = config.data.batch_size, config.langevin.steps, langevin_options(config)
    b = config.buffer
    reinit, low, high = float(b.reinit_prob), float(b.low), float(b.high)

    def one_step(state: EBMState, batch, norm):
        start_key, chain_key = jax.random.split(jax.random.fold_in(state.key, state.step))
        x0, slots, _ = replay_buffer_sample(state.buffer, start_key, n, reinit, low, high)
        negatives = langevin_negatives(net.apply, state.params, x0, chain_key, steps, **options)
        params, opt_state, metrics = gradient_update(
            loss, optimizer, state.params, state.opt_state, (batch, negatives),
            device_key(state.key, state.step), grad_norm=norm)
        return state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                             buffer=replay_buffer_push(state.buffer, slots, negatives)), metrics

    return build_train_step(one_step, mesh, steps_per_call=config.train.steps_per_call)


def check_config(config: ml_collections.ConfigDict) -> None:
    """Builds the energy, the loss and the optimizer, and checks the sampler's and the
    buffer's values, before any data are drawn."""
    try:
        build_energy(config.model, (DIM,))
        contrastive_divergence_loss(lambda p, x: x, config.objective.alpha)
    except ValueError as e:
        raise experiment.ConfigError(f"bad --config.model.* or --config.objective.*: {e}") \
            from None
    lv, b = config.langevin, config.buffer
    if not lv.noise_scale >= 0 or not lv.grad_clip >= 0:
        raise experiment.ConfigError(
            f"--config.langevin.noise_scale={lv.noise_scale} and --config.langevin.grad_clip="
            f"{lv.grad_clip} must be >= 0 (grad_clip 0: no clipping)")
    if not 0 <= b.reinit_prob <= 1:
        raise experiment.ConfigError(f"--config.buffer.reinit_prob={b.reinit_prob} must be in "
                                     f"[0, 1] (Du and Mordatch: 0.05)")
    if not b.low < b.high:
        raise experiment.ConfigError(f"--config.buffer.low={b.low} must be below "
                                     f"--config.buffer.high={b.high}: the noise box")
    if config.eval.langevin_steps < 0:
        raise experiment.ConfigError(f"--config.eval.langevin_steps={config.eval.langevin_steps} "
                                     f"must be >= 0")
    experiment.check_fit(config)


def unread_fields(config: ml_collections.ConfigDict) -> Dict[str, str]:
    unread = {"data.data_dir": "toy densities are sampled in memory; nothing is loaded"}
    unread.update(experiment.unread_by(lambda c: build_energy(c.model, (DIM,)), config, "model",
                                       f"not an option of model.net={config.model.net!r}"))
    unread.update(experiment.unread_optimizer_fields(config))
    return unread


def bounds_around(x: np.ndarray, margin: float = 0.5):
    """The data's box widened by ``margin`` of its size on every side."""
    lo, hi = x.min(0), x.max(0)
    lo, hi = lo - margin * (hi - lo), hi + margin * (hi - lo)
    return (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]))


def two_sample_metrics(samples: np.ndarray, reference: np.ndarray, key: jax.Array,
                       prefix: str = "") -> Dict[str, float]:
    """MMD (median-heuristic RBF), energy distance and sliced W1 to held-out data."""
    n = min(len(samples), len(reference))
    x, y = jnp.asarray(samples[:n]), jnp.asarray(reference[:n])
    return {prefix + name: float(M.METRICS.get(name)(x, y, key))
            for name in ("mmd", "energy_distance", "sliced_wasserstein")}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       progress: Optional[bool] = None) -> Dict[str, Any]:
    key = jax.random.PRNGKey(config.seed)
    init_key, buffer_key, train_key, sample_key, metric_key = jax.random.split(key, 5)
    train = load_dataset(config.data.name, "train", n=config.data.num_train, seed=config.seed)
    test = load_dataset(config.data.name, "test", n=config.data.num_test, seed=config.seed)
    train_x, test_x = np.asarray(train.x, np.float32), np.asarray(test.x, np.float32)
    net = build_energy(config.model, (DIM,))
    params = net.init(init_key, jnp.asarray(train_x[:1]))
    optimizer = make_optimizer(config.optim, config.train.steps)
    b = config.buffer
    buffer = replay_buffer_init(buffer_key, b.size, (DIM,), b.low, b.high)
    state = EBMState(step=jnp.zeros((), jnp.int32), params=params,
                     opt_state=optimizer.init(params), key=train_key, buffer=buffer)
    mesh = experiment.config_mesh(config)
    step = make_ebm_step(net, config, optimizer, mesh)
    batches = BatchIterator(train_x, config.data.batch_size, seed=config.seed,
                            process_index=jax.process_index(),
                            process_count=jax.process_count())
    energy = jax.jit(net.apply)
    bounds = bounds_around(test_x)
    resolution = config.eval.grid_resolution

    def nll(params):
        """(test NLL, log Z): log Z a Riemann sum of exp(-E) on the grid."""
        log_z = grid_log_normalizer(lambda x: energy(params, x), bounds, resolution)
        return float(np.mean(np.asarray(energy(params, test_x)))) + log_z, log_z

    def evaluate(state, step_number):
        test_nll, log_z = nll(state.params)
        return {"test_nll": test_nll, "log_normalizer": log_z}

    result = experiment.fit_with_config(
        config, state, step, batches.batch, workdir, mesh, eval_fn=evaluate, progress=progress,
        desc=f"EBM ({config.langevin.steps} Langevin steps) on {config.data.name}")
    params, buffer = result.state.params, np.asarray(result.state.buffer)

    # Fresh chains from the noise box, timed after compiling.
    n, options = config.eval.num_samples, langevin_options(config)
    chains = jax.jit(lambda p, k: langevin_negatives(
        net.apply, p, uniform_noise(jax.random.fold_in(k, 1), (n, DIM), b.low, b.high), k,
        config.eval.langevin_steps, **options))
    jax.block_until_ready(chains(params, sample_key))
    t0 = time.perf_counter()
    samples = np.asarray(jax.block_until_ready(chains(params, sample_key)))
    sample_seconds = time.perf_counter() - t0

    test_nll, log_z = nll(params)
    metrics: Dict[str, Any] = {"test_nll": test_nll, "log_normalizer": log_z}
    density = getattr(test, "density", None)
    if density is not None and density.has_log_prob:
        # Paired on the test set, as experiments/flow.py: mean log p(x) - log q(x).
        metrics["nll_excess"] = test_nll + float(np.mean(np.asarray(density.log_prob(test_x))))
    metrics.update(two_sample_metrics(samples, test_x, metric_key))
    shown = buffer[np.asarray(jax.random.permutation(metric_key, len(buffer)))[:n]]
    metrics.update(two_sample_metrics(shown, test_x, metric_key, prefix="buffer_"))
    modes = data_modes(config.data.name)
    if modes is not None:
        mm = M.mode_metrics(jnp.asarray(samples), modes.centres, modes.sd, modes.weights)
        metrics.update(modes_captured=int(mm.modes_captured), num_modes=int(len(modes.centres)),
                       high_quality_frac=float(mm.high_quality_frac),
                       mode_weight_tv=float(mm.mode_weight_tv))
    metrics.update(langevin_steps=config.eval.langevin_steps, num_samples=n,
                   train_seconds=result.train_seconds, sample_seconds=sample_seconds,
                   steps=result.steps)

    if jax.process_index() == 0:
        name = f"EBM on {config.data.name}"
        log_prob = lambda x: -np.asarray(energy(params, x)) - log_z  # noqa: E731
        viz.plot_density_2d(os.path.join(workdir, "density.png"), test_x, samples,
                            log_prob=log_prob, bounds=bounds,
                            title=f"{name}: test NLL {test_nll:.3f} nats",
                            names=("test data", f"Langevin samples "
                                   f"({config.eval.langevin_steps} steps from noise)",
                                   "exp(-E) / Z"))
        plot_samples_on_density(os.path.join(workdir, "langevin.png"), samples, log_prob,
                                title=f"{name}: MMD {metrics['mmd']:.4f} to the test data",
                                bounds=bounds, name="Langevin samples")
        if os.path.exists(os.path.join(workdir, "metrics.jsonl")):
            viz.plot_curves(os.path.join(workdir, "curves.png"),
                            read_jsonl(os.path.join(workdir, "metrics.jsonl")),
                            names=("cd", "test_nll"),
                            labels={"cd": "E(data) - E(negatives)",
                                    "test_nll": "test NLL (nats)"})
    experiment.write_metrics(workdir, metrics)
    return metrics


EXPERIMENT = experiment.Experiment(train_and_evaluate, choices=CHOICES, positive=POSITIVE,
                                   check=check_config, unread=unread_fields)

if __name__ == "__main__":
    experiment.main(EXPERIMENT)
