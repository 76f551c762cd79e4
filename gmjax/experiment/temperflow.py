"""TemperFlow and its MCMC baselines built from an experiment config (``experiments/temperflow.py``).

The script, the diagnostics and the tables share these: the target, the
kernel and a saved run from a config (``make_target``, ``make_kernel``,
``load_run``), the chains of the MCMC baselines (``run_chains``), the
flow's draws and their timing (``sample_flow``) and the scores of a sample
(``evaluate``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Any, Dict, Optional, Tuple

import jax
import ml_collections
import numpy as np

from gmjax import metrics
from gmjax.experiment.fitting import config_mesh
from gmjax.models.flow import build_flow
from gmjax.models.gan import latent_ebm_target
from gmjax.samplers import mcmc
from gmjax.samplers.rejection import rejection_sample
from gmjax.samplers.temperflow import TemperFlow, TemperFlowConfig, TemperFlowState
from gmjax.samplers.temperflow.kernel import Schedule
from gmjax.samplers.timing import median_seconds
from gmjax.targets import Target, build_target
from gmjax.training.checkpoint import Checkpointer

SAMPLER_FIELDS = [f.name for f in dataclasses.fields(TemperFlowConfig)]


def make_target(config) -> Target:
    if config.data.name == "latent_ebm":
        return latent_ebm_target(config.data.gan_workdir)
    return build_target(config.data.name, **({"dim": config.data.dim}
                                             if config.data.name == "clayton" else {}))


def unused_sampler_fields(config) -> Dict[str, str]:
    s = config.sampler
    if config.method == "kl":
        return TemperFlowConfig.unused_fields("kl")
    return TemperFlowConfig.unused_fields("temperflow", s.beta_schedule, s.stage_loss,
                                          s.defensive_share)


def sampler_config(config) -> TemperFlowConfig:
    """The ``sampler`` block (the fields the chosen method uses) with ``train.steps`` as the
    middle stages' steps, ``data.batch_size`` and ``train.steps_per_call``."""
    unused = unused_sampler_fields(config)
    values = {name: config.sampler[name] for name in SAMPLER_FIELDS
              if name in config.sampler and name not in unused}
    if "steps_mid" not in unused:
        values["steps_mid"] = config.train.steps
    return TemperFlowConfig(**values, method="kl" if config.method == "kl" else "temperflow",
                            batch_size=config.data.batch_size,
                            steps_per_call=config.train.steps_per_call)


def make_kernel(config: ml_collections.ConfigDict, target: Target) -> TemperFlow:
    """The kernel a run of ``config`` trains: its flow, sampler config, optimizer and mesh."""
    return TemperFlow(build_flow(config.model, target.dim), target, sampler_config(config),
                      config.optim, mesh=config_mesh(config))


def load_run(workdir: str, stage: Optional[int] = None
             ) -> Tuple[ml_collections.ConfigDict, TemperFlow, TemperFlowState]:
    """A saved run's config, kernel and state after ``stage`` stages (default: the last
    checkpoint), for tools that read runs."""
    with open(os.path.join(workdir, "config.json")) as f:
        config = ml_collections.ConfigDict(json.load(f))
    kernel = make_kernel(config, make_target(config))
    checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"))
    try:
        state, meta = checkpointer.restore(kernel.init(jax.random.PRNGKey(config.seed)), step=stage)
    finally:
        checkpointer.close()
    return config, kernel, state.replace(schedule=Schedule(**meta["schedule"]))


def chain_options(config) -> Dict[str, Any]:
    c = config.mcmc
    options: Dict[str, Any] = {"step_size": c.step_size} if c.step_size > 0 else {}
    if config.method == "hmc":
        options["num_integration_steps"] = c.num_integration_steps
    if config.method == "pt":
        options["betas"] = mcmc.geometric_ladder(c.beta_min, c.num_betas)
    return options


def sample_flow(config, kernel: TemperFlow, params, key: jax.Array, rejection: bool):
    """``eval.num_samples`` draws (through rejection), the median seconds of
    ``eval.timed_draws`` more, and the rejection step's numbers."""
    n, m, info = config.eval.num_samples, config.eval.timed_draws, {}
    if rejection:
        def draw(k, n=m, bound=None):
            return rejection_sample(kernel.sample_and_log_prob, params, kernel.target.log_prob,
                                    k, n, log_bound=bound,
                                    min_acceptance=config.sampler.min_acceptance)
        x, info = draw(key, n)
        seconds = median_seconds(lambda k: draw(k, bound=info["log_bound"])[0], key,
                                 config.eval.timing_repeats)
    else:
        x = kernel.sample(params, key, n)
        seconds = median_seconds(lambda k: kernel.sample(params, k, m), key,
                                 config.eval.timing_repeats)
    return np.asarray(x), seconds, info


def run_chains(config, target: Target, key: jax.Array):
    """``mcmc.num_chains`` chains pooled to ``eval.num_samples`` draws; seconds of a second run."""
    c = config.mcmc
    init_key, run_key = jax.random.split(key)
    init = c.init_scale * jax.random.normal(init_key, (c.num_chains, target.dim))

    def run():
        return jax.block_until_ready(mcmc.run_mcmc(
            config.method, target.log_prob, run_key, init, burn_in=c.burn_in, thin=c.thin,
            num_draws=math.ceil(config.eval.num_samples / c.num_chains), **chain_options(config)))

    run()  # compiles
    t0 = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - t0
    chains = np.asarray(result.samples)
    info = {"acceptance_rate": float(result.acceptance_rate), "num_chains": c.num_chains,
            **{k: float(v) for k, v in mcmc.effective_sample_size_summary(chains).items()},
            **({"swap_rate": float(result.swap_rate)} if result.swap_rate is not None else {})}
    return chains.reshape(-1, target.dim)[:config.eval.num_samples], seconds, info


def evaluate(config, target: Target, samples: np.ndarray, key: jax.Array) -> Dict[str, Any]:
    out = dict(target.quality_metrics(samples))
    size, reps = config.eval.replicate_size, config.eval.replicates
    try:
        exact = np.asarray(target.sample(seed=key, sample_shape=(2 * size * reps,)))
    except NotImplementedError:
        return out
    rng = np.random.default_rng(config.seed)
    return {**out, **metrics.adjusted_distances(samples, exact, reps, size, rng)}
