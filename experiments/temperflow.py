"""TemperFlow and its baselines on a target: config -> build -> run -> write.

    python experiments/temperflow.py --config experiments/configs/temperflow_2d.py \
        --workdir runs/temperflow_circle --config.data.name=circle

``--config.method``: ``temperflow`` (Qiu and Wang, 2024), ``temperflow+rej``
(the trained flow as a rejection proposal), ``kl`` (reverse KL straight at
beta = 1), or the MCMC baselines ``mh``, ``hmc``, ``pt``. Writes into
``--workdir``: ``config.json``, ``metrics.jsonl`` (one record per stage),
``metrics.json``, ``samples.npy``, ``samples.png`` and, for flows,
``beta_trace.png``, ``weight_trace.png`` and ``checkpoints/`` (running again
resumes). ``metrics.json``: the target's ``quality_metrics`` (modes, weights,
sign patterns), ``adjusted_w1`` / ``adjusted_mmd`` against exact draws,
``train_seconds``, ``sample_seconds`` (median of timed draws after compiling)
and, for ``temperflow``, the same under ``rejection``.
"""

from __future__ import annotations

import os
from typing import Any, Dict

import jax
import numpy as np

from gmjax import experiment, viz
from gmjax.experiment.temperflow import (chain_options, evaluate, make_kernel, make_target,
                                         run_chains, sample_flow, sampler_config,
                                         target_options, unused_sampler_fields)
from gmjax.models.flow import build_flow
from gmjax.samplers import mcmc
from gmjax.samplers.rejection import RejectionError
from gmjax.samplers.temperflow import mode_weight_hook, run_temperflow
from gmjax.targets import TARGETS
from gmjax.training.optim import make_optimizer
from gmjax.viz.energy import plot_samples_on_density
from gmjax.viz.samplers import plot_beta_trace, plot_target_samples, plot_weight_trace

# TARGETS is read when a config is checked: targets registered after import are valid.
CHOICES = {"method": ["temperflow", "temperflow+rej", "kl", *mcmc.MCMC_SAMPLERS],
           "data.name": TARGETS}
POSITIVE = ("data.batch_size", "eval.num_samples", "eval.replicates", "eval.replicate_size",
            "eval.timed_draws", "eval.timing_repeats", "mcmc.num_chains", "mcmc.burn_in",
            "mcmc.thin", "sampler.min_acceptance")


def train_and_evaluate(config, workdir: str, progress=None) -> Dict[str, Any]:
    target = make_target(config)
    train_key, sample_key, eval_key = jax.random.split(jax.random.PRNGKey(config.seed), 3)
    out: Dict[str, Any] = {"method": config.method, "target": config.data.name,
                           "dim": target.dim}
    title = f"{config.method} on {config.data.name}"
    if config.method in mcmc.MCMC_SAMPLERS:
        samples, seconds, info = run_chains(config, target, sample_key)
        out.update(info, train_seconds=0.0, sample_seconds=seconds)
    else:
        kernel = make_kernel(config, target)
        run = run_temperflow(kernel, kernel.init(train_key), workdir,
                             log_every=config.train.log_every,
                             checkpoint_every=config.train.checkpoint_every,
                             keep_checkpoints=config.train.keep_checkpoints, progress=progress,
                             on_stage=mode_weight_hook(kernel, config.eval.stage_weight_draws,
                                                       train_key))
        params = run.state.params
        samples, seconds, info = sample_flow(config, kernel, params, sample_key,
                                             config.method == "temperflow+rej")
        betas, ess = [s["beta"] for s in run.stages], [s["ess"] for s in run.stages if "ess" in s]
        out.update(info, train_seconds=run.train_seconds, sample_seconds=seconds, betas=betas,
                   num_betas=len(set(betas)), steps=sum(s["steps"] for s in run.stages),
                   **({"is_ess_min": min(ess), "is_ess_collapsed_stages": sum(
                       s["ess_collapsed"] for s in run.stages)} if ess else {}))
        plot_beta_trace(os.path.join(workdir, "beta_trace.png"), run.stages, title=title)
        plot_weight_trace(os.path.join(workdir, "weight_trace.png"), run.stages,
                          target.true_weights(), title=title + ": mode weights along the curve")
        if config.method == "temperflow":  # the same flow as a rejection proposal
            try:
                x, s, rej = sample_flow(config, kernel, params, sample_key, rejection=True)
                out["rejection"] = dict(rej, sample_seconds=s,
                                        **evaluate(config, target, x, eval_key))
            except RejectionError as e:
                out["rejection"] = {"error": str(e)}
    out.update(evaluate(config, target, samples, eval_key))
    np.save(os.path.join(workdir, "samples.npy"), samples)
    path = os.path.join(workdir, "samples.png")
    if config.data.name == "latent_ebm":
        viz.save_image_grid(path, np.asarray(target.decode(samples[:64])), rows=8, title=title)
    elif config.data.name == "learned_ebm":  # no exact sampler: the draws over exp(-E)
        plot_samples_on_density(path, samples, jax.jit(target.log_prob), title=title,
                                name=f"{config.method} draws")
    else:
        exact = np.asarray(target.sample(seed=eval_key, sample_shape=(len(samples),)))
        plot_target_samples(path, samples, exact, jax.jit(target.log_prob), title=title)
    experiment.write_metrics(workdir, out)
    return out


def check_config(config) -> None:
    """Builds, before any work, what the run builds from the config: the target (with
    ``data.options``), the sampler config, flow, optimizer and mesh (flows) or the chains'
    options (MCMC)."""
    if config.data.name == "clayton" and config.data.dim < 8:
        raise experiment.ConfigError(f"--config.data.dim={config.data.dim}: the Clayton target "
                                     f"has 8 bimodal coordinates, so dim must be >= 8")
    if config.data.name == "latent_ebm" and not config.data.gan_workdir:
        raise experiment.ConfigError("--config.data.gan_workdir must name a trained GAN's workdir")
    if config.data.name in ("latent_ebm", "learned_ebm"):
        target_options(config)  # checks the options; the networks are loaded by the run
        dim = 2
    else:
        dim = make_target(config).dim
    try:
        if config.method in mcmc.MCMC_SAMPLERS:
            chain_options(config)
            config.mcmc.init_scale  # noqa: B018  (any value: the chains' initial spread)
            return
        sampler_config(config)
        build_flow(config.model, dim)
        make_optimizer(config.optim, injectable=True)
    except ValueError as e:
        raise experiment.ConfigError(f"bad --config.sampler.*, --config.model.*, "
                                     f"--config.optim.* or --config.mcmc.*: {e}") from None
    experiment.config_mesh(config)
    t = config.train
    for name in ("log_every", "checkpoint_every"):
        if t[name] < 0 or t[name] % t.steps_per_call:
            raise experiment.ConfigError(f"--config.train.{name}={t[name]} must be a multiple of "
                                         f"--config.train.steps_per_call={t.steps_per_call} "
                                         f"(0: once per call / between stages only)")
    if t.keep_checkpoints < 1 or config.eval.stage_weight_draws < 0:
        raise experiment.ConfigError("--config.train.keep_checkpoints must be >= 1 and "
                                     "--config.eval.stage_weight_draws >= 0 (0: off)")


def unread_fields(config) -> Dict[str, str]:
    """The fields a run of ``config`` does not read, and why."""
    unread = dict.fromkeys(("data.data_dir", "data.num_train", "data.num_test"),
                           "a sampler's target is a density, not a data set")
    if config.data.name != "clayton":
        unread["data.dim"] = f"data.name={config.data.name!r} has a fixed dimension"
    if config.data.name != "latent_ebm":
        unread["data.gan_workdir"] = "only data.name='latent_ebm' reads a trained GAN"
    if config.method in mcmc.MCMC_SAMPLERS:
        unread.update(dict.fromkeys(
            ("model", "sampler", "optim", "train", "data.batch_size", "eval.stage_weight_draws",
             "eval.timed_draws", "eval.timing_repeats"), "the MCMC baselines train no flow"))
        if config.method != "hmc":
            unread["mcmc.num_integration_steps"] = "HMC only"
        if config.method != "pt":
            unread.update(dict.fromkeys(("mcmc.beta_min", "mcmc.num_betas"), "PT only"))
        return unread
    unread["mcmc"] = f"method={config.method!r} trains a flow"
    unread["train.eval_every"] = ("TemperFlow evaluates at the end; eval.stage_weight_draws "
                                  "measures the mode weights after every stage")
    unread.update({f"sampler.{k}": v for k, v in unused_sampler_fields(config).items()
                   if k in config.sampler})
    if config.method == "kl":
        unread["train.steps"] = "method='kl' trains sampler.steps_init + sampler.steps_final"
        unread["sampler.min_acceptance"] = "method='kl' makes no rejection step"
    unread.update(experiment.unread_optimizer_fields(config))
    unread.update(experiment.unread_by(lambda c: build_flow(c.model, 2), config, "model",
                                       f"model.name={config.model.name!r} does not use it"))
    return unread


EXPERIMENT = experiment.Experiment(
    train_and_evaluate, choices=CHOICES, positive=POSITIVE, check=check_config,
    unread=unread_fields, expected_failures=(RejectionError,),
    resumable=("sampler.final_kl_steps", "sampler.final_rounds"))

if __name__ == "__main__":
    experiment.main(EXPERIMENT)
