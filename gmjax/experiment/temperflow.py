"""TemperFlow and its MCMC baselines built from an experiment config (``experiments/temperflow.py``).

The script, the diagnostics and the tables share these: the target, the
kernel and a saved run from a config (``make_target``, ``make_kernel``,
``load_run``), the chains of the MCMC baselines (``run_chains``), the
flow's draws and their timing (``sample_flow``), the scores of a sample
(``evaluate``) and where a flow lacks a Clayton target's mass
(``missing_mass``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Any, Callable, Dict, Optional, Tuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gmjax import metrics
from gmjax.experiment.config import ConfigError, section_options
from gmjax.experiment.fitting import config_mesh
from gmjax.models.flow import build_flow
from gmjax.models.ebm import learned_ebm_target
from gmjax.models.gan import latent_ebm_target
from gmjax.samplers import mcmc
from gmjax.samplers.rejection import rejection_sample
from gmjax.samplers.temperflow import TemperFlow, TemperFlowConfig, TemperFlowState
from gmjax.samplers.temperflow.kernel import Schedule
from gmjax.samplers.timing import median_seconds
from gmjax.targets import Target, build_target
from gmjax.training.checkpoint import Checkpointer

SAMPLER_FIELDS = [f.name for f in dataclasses.fields(TemperFlowConfig)]


def target_options(config) -> Dict[str, Any]:
    """The options the target is built with: the fields of ``data.options`` (each read by
    name; none when the config has no such section) and, for ``clayton``, ``data.dim``.

    Raises:
      ConfigError: for ``data.options.dim`` with ``clayton`` (its dimension is
        ``data.dim``) and for any option with ``latent_ebm`` (its networks come
        from ``data.gan_workdir``).
    """
    options = section_options(config, "data.options")
    name = config.data.name
    if name == "clayton":
        if "dim" in options:
            raise ConfigError("--config.data.options.dim: the Clayton target's dimension is "
                              "--config.data.dim")
        options["dim"] = config.data.dim
    if name == "latent_ebm" and options:
        raise ConfigError(f"--config.data.options ({', '.join(sorted(options))}): "
                          f"data.name='latent_ebm' takes no options; its networks come from "
                          f"--config.data.gan_workdir")
    if name == "learned_ebm" and (not options.get("workdir") or set(options) - {"workdir"}):
        raise ConfigError(f"--config.data.options ({', '.join(sorted(options)) or 'none'}): "
                          f"data.name='learned_ebm' takes exactly one option, workdir: the "
                          f"workdir of an energy trained by the ebm experiment")
    return options


def make_target(config) -> Target:
    """The target ``data.name`` names, built with ``target_options(config)``; targets
    registered in ``gmjax.targets.TARGETS`` after import count too.

    Raises:
      ConfigError: for options the target does not take (naming the ones it takes)
        or values it refuses.
    """
    options = target_options(config)
    if config.data.name == "latent_ebm":
        return latent_ebm_target(config.data.gan_workdir)
    if config.data.name == "learned_ebm":
        return learned_ebm_target(options["workdir"])
    try:
        return build_target(config.data.name, **options)
    except ConfigError:
        raise
    except ValueError as e:
        raise ConfigError(f"bad --config.data.options for --config.data.name="
                          f"{config.data.name!r}: {e}") from None


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


DEPTH_QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)


def missing_mass(target: Target, log_q: Callable[[jax.Array], jax.Array], key: jax.Array,
                 draws: int, flow_draws: Optional[np.ndarray] = None) -> Dict[str, Any]:
    """Where a density q lacks a Clayton target's mass: E_p[log p - log q] over exact draws of p.

    The Clayton density is normalized, so the mean gap is the forward
    KL(p || q); a large mean gap within a group of draws says q puts almost
    no mass there. The groups:

    * ``by_negatives``: the number k of negative coordinates among the first
      m = ``num_bimodal`` (k = m is the all-negative pattern, a third of
      the mass), with p's share of each k and, from ``flow_draws``, q's share
      (``negative_count_shares``): the copula makes p's shares U-shaped,
      while a q without the dependence has nearly binomial ones;
    * ``by_depth``: quantile bins (``DEPTH_QUANTILES``) under p of
      sum_j log F_j(X_j), the depth of X in the copula's lower tail, where
      the Clayton dependence puts a thin ridge along the diagonal.

    Returns ``dim``, ``num_bimodal``, ``draws``, ``forward_kl``, ``gap_above_2`` (the share of
    draws with log p - log q > 2), ``by_negatives``: a list of ``(k, share_p,
    mean_gap, share_q or None)`` for the k that occur, and ``by_depth``: a list
    of ``(lo_quantile, hi_quantile, lo, hi, mean_gap)``.
    """
    x = target.sample(seed=key, sample_shape=(draws,))
    gap = np.asarray(target.log_prob(x) - log_q(x), np.float64)
    depth = np.asarray(jnp.sum(target.marginal_log_cdf(x), axis=-1), np.float64)
    negatives = np.asarray(target.negative_counts(x))
    share_q = None if flow_draws is None else target.negative_count_shares(flow_draws)
    by_negatives = [(k, float(np.mean(negatives == k)), float(gap[negatives == k].mean()),
                     None if share_q is None else float(share_q[k]))
                    for k in range(target.num_bimodal + 1) if np.any(negatives == k)]
    edges = np.quantile(depth, DEPTH_QUANTILES)
    by_depth = []
    for i in range(len(DEPTH_QUANTILES) - 1):
        inside = (depth >= edges[i]) & (depth <= edges[i + 1])
        by_depth.append((DEPTH_QUANTILES[i], DEPTH_QUANTILES[i + 1], float(edges[i]),
                         float(edges[i + 1]), float(gap[inside].mean())))
    return {"dim": target.dim, "num_bimodal": target.num_bimodal, "draws": draws,
            "forward_kl": float(gap.mean()), "gap_above_2": float(np.mean(gap > 2)),
            "by_negatives": by_negatives, "by_depth": by_depth}


def missing_mass_text(result: Dict[str, Any], label: str) -> str:
    """``missing_mass``'s result as lines of text, headed by ``label``."""
    with_q = any(row[3] is not None for row in result["by_negatives"])
    lines = [f"{label} (p = {result['dim']}): forward KL(p || q) = {result['forward_kl']:.3f} "
             f"nats from {result['draws']} exact draws; log f - log q > 2 on "
             f"{result['gap_above_2']:.3f} of them",
             f"by the number of negative coordinates among the first {result['num_bimodal']} "
             f"(share of p, mean log f - log q{', share of the flow' if with_q else ''}):"]
    for k, share_p, gap, share_q in result["by_negatives"]:
        lines.append(f"  {k}: {share_p:.3f}  {gap:8.3f}"
                     + (f"  {share_q:.3f}" if share_q is not None else ""))
    lines.append("by the lower-tail depth sum_j log F_j(x_j), in quantile bins of p:")
    for q_lo, q_hi, lo, hi, gap in result["by_depth"]:
        bin_name = f"{100 * q_lo:g}-{100 * q_hi:g}%"
        lines.append(f"  {bin_name:>7} [{lo:8.1f}, {hi:6.1f}]: {gap:8.3f}")
    return "\n".join(lines)
