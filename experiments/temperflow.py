"""TemperFlow and its baselines on a target: train (or run the chains), sample, score, plot.

    python experiments/temperflow.py --config experiments/configs/temperflow_2d.py \
        --workdir runs/temperflow_circle --config.data.name=circle

``--config.method`` picks the sampler: ``temperflow`` (Qiu and Wang, 2024),
``temperflow+rej`` (the same flow as the proposal of a rejection sampler),
``kl`` (reverse KL straight at beta = 1), ``l2-fixed-grid`` (the L2 sampler on
a fixed beta grid), and the MCMC baselines ``mh``, ``hmc`` and ``pt``
(parallel tempering). Writes the experiment contract into ``--workdir``:
``config.json``, ``metrics.jsonl`` (one record per tempering stage),
``metrics.json``, ``beta_trace.png`` (flows), ``samples.png`` and, for flows,
``checkpoints/`` after every stage (running again resumes at the next stage).
On mixtures and Clayton a flow's stage records also hold its mode weights beside
the tempered target's (``weight_trace``; plotted in ``weight_trace.png``).

Metrics (against exact draws of the target, where it has them):

* ``adjusted_w1``, ``adjusted_mmd``: W1 (exact, by assignment) and unbiased
  MMD^2 between ``eval.replicate_size`` sampler points and as many exact
  points, minus the same metric between two independent exact samples;
  averaged over ``eval.replicates`` replicates (``*_se``: standard error).
* mixtures: ``modes_captured`` (of ``num_modes``), ``mode_weight_tv`` and
  ``mode_weight_max_error`` (max_k |q_k - w_k|), ``high_quality_frac``.
* Clayton: ``sign_patterns_present`` in 20,000 samples (of 256),
  ``positive_frac_max_error`` = max_{j<8} |P(x_j > 0) - 0.3|,
  ``pattern_weight_tv`` against the exact pattern weights.
* ``is_ess_min``, ``is_ess_collapsed_stages`` (adaptive schedule): the smallest
  effective sample size of the reference's importance weights over the stages,
  and how many stages fell below ``samplers.temperflow.MIN_ESS`` (their kl
  estimates, and so the betas after them, are unreliable).
* ``rejection`` (method ``temperflow`` only): the same numbers for the
  flow used as a rejection proposal, with its ``acceptance_rate``.
* ``train_seconds`` (flows: all stages, compilation included),
  ``num_betas``, ``sample_seconds`` (flows: the median of
  ``eval.timing_repeats`` timed draws of ``eval.timed_draws`` points after
  compilation; MCMC: the whole run of the chains, burn-in included),
  ``acceptance_rate``.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any, Dict, List, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from experiments import runner
from gmjax import metrics as M
from gmjax import viz
from gmjax.models.flow import FLOW_MODELS, build_flow
from gmjax.objectives.sampling import L2_FORMS, terms_ess
from gmjax.samplers import mcmc
from gmjax.samplers.temperflow import (DEFAULT_REF_CUTOFFS, RejectionError, Schedule, TemperFlow,
                                       TemperFlowConfig, rejection_sample)
from gmjax.targets import TARGETS, Target, build_target
from gmjax.training import Checkpointer, MetricsWriter, data_mesh
from gmjax.training.loop import NonFiniteError
from gmjax.viz.samplers import plot_beta_trace, plot_sample_pairs, plot_weight_trace

FLOW_METHODS = {"temperflow": "temperflow", "temperflow+rej": "temperflow", "kl": "kl",
                "l2-fixed-grid": "l2_fixed"}
MCMC_METHODS = ("mh", "hmc", "pt")
CHOICES = {"method": [*FLOW_METHODS, *MCMC_METHODS], "data.name": TARGETS,
           "model.name": FLOW_MODELS, "sampler.l2_form": L2_FORMS}
POSITIVE = ("data.batch_size", "train.steps", "train.steps_per_call", "optim.lr",
            "sampler.steps_init", "sampler.steps_final", "sampler.final_rounds",
            "sampler.estimate_draws",
            "mcmc.num_chains", "mcmc.burn_in", "mcmc.thin", "eval.num_samples",
            "eval.replicates", "eval.replicate_size", "eval.timed_draws",
            "eval.timing_repeats")


def load_run_config(workdir: str) -> ml_collections.ConfigDict:
    """The config a run in ``workdir`` saved, with fields added to gmjax since then
    filled with the defaults of ``experiments/configs/temperflow_2d.py`` (for tools
    that read old runs; resuming a run still requires its exact saved config)."""
    from experiments.configs import temperflow_2d

    def merge(base: Dict[str, Any], saved: Dict[str, Any]) -> Dict[str, Any]:
        out = dict(base)
        for k, v in saved.items():
            out[k] = merge(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) \
                else v
        return out

    with open(os.path.join(workdir, "config.json")) as f:
        saved = json.load(f)
    defaults = json.loads(temperflow_2d.get_config().to_json_best_effort())
    return ml_collections.ConfigDict(merge(defaults, saved))


def restore_flow(config: ml_collections.ConfigDict, workdir: str, stage: Optional[int] = None):
    """``(target, sampler, state)`` of a run's flow after ``stage`` stages (default: the
    last checkpoint), for read-only tools; ``config`` is the run's, e.g. from
    ``load_run_config``, with any sampler settings the tool changes."""
    target = make_target(config)
    sampler = TemperFlow(build_flow(config.model, target.dim), target, sampler_config(config))
    state, _ = sampler.init(jax.random.PRNGKey(config.seed))
    checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"))
    try:
        state, _ = checkpointer.restore(state, step=stage)
    finally:
        checkpointer.close()
    return target, sampler, state


def make_target(config: ml_collections.ConfigDict) -> Target:
    name = config.data.name
    if name == "clayton":
        return build_target(name, dim=config.data.dim)
    if name == "latent_ebm":
        return build_target(name, workdir=config.data.gan_workdir)
    return build_target(name)


def sampler_config(config: ml_collections.ConfigDict) -> TemperFlowConfig:
    s = config.sampler
    return TemperFlowConfig(
        method=FLOW_METHODS[config.method], beta0=s.beta0, kl_decay=s.kl_decay,
        steps_init=s.steps_init, steps_mid=config.train.steps, steps_final=s.steps_final,
        steps_growth=s.steps_growth,
        batch_size=config.data.batch_size, lr=config.optim.lr, lr_decay=s.lr_decay,
        max_betas=s.max_betas, estimate_draws=s.estimate_draws,
        ref_cutoffs=None if s.ref_every_stage else DEFAULT_REF_CUTOFFS,
        num_fixed_betas=s.num_fixed_betas, upweight=s.upweight,
        l2_kl_weight=s.l2_kl_weight, l2_form=s.l2_form, final_rounds=s.final_rounds,
        final_kl_steps=s.final_kl_steps,
        defensive_share=s.defensive_share, defensive_scale=s.defensive_scale,
        grad_clip=config.optim.grad_clip, steps_per_call=config.train.steps_per_call)


def check_config(config: ml_collections.ConfigDict) -> None:
    """Builds a flow method's ``TemperFlowConfig`` so its checks run before the workdir is made."""
    if config.method in FLOW_METHODS:
        try:
            sampler_config(config)
        except ValueError as e:
            raise runner.ConfigError(f"bad sampler settings (--config.sampler.*, "
                                     f"--config.train.*): {e}") from None


def train_flow(config, target: Target, workdir: str, key: jax.Array,
               progress: Optional[bool]) -> Dict[str, Any]:
    """Runs the tempering stage by stage, checkpointing after each; resumes from the last."""
    flow = build_flow(config.model, target.dim)
    num_devices = config.train.num_devices or None
    sampler = TemperFlow(flow, target, sampler_config(config), mesh=data_mesh(num_devices),
                         progress=bool(progress))
    state, schedule = sampler.init(key)
    checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"),
                                keep=config.train.keep_checkpoints)
    writer = MetricsWriter(os.path.join(workdir, "metrics.jsonl"))
    train_seconds = 0.0
    if checkpointer.latest_step() is not None:
        state, meta = checkpointer.restore(state)
        schedule = Schedule.from_json(meta["schedule"])
        train_seconds = float(meta["train_seconds"])
        writer.truncate_after(schedule.stage)
    try:
        t0 = time.perf_counter()
        for state, schedule in sampler.run(state, schedule):
            train_seconds += time.perf_counter() - t0
            if config.eval.stage_weight_draws:  # outside the timed training
                schedule.stages[-1].update(stage_weights(
                    sampler, state.params, target, schedule.stages[-1]["beta"],
                    jax.random.fold_in(key, 10**6 + schedule.stage),
                    config.eval.stage_weight_draws))
            record = dict(schedule.stages[-1], step=schedule.stage, split="stage",
                          train_seconds=train_seconds)
            writer.write(record)
            checkpointer.save(schedule.stage, state, {"schedule": schedule.to_json(),
                                                      "train_seconds": train_seconds})
            t0 = time.perf_counter()
    except NonFiniteError as e:
        raise NonFiniteError(e.step, e.name, e.value, checkpointer.latest_step(),
                             checkpointer.directory) from None
    finally:
        checkpointer.close()
    return {"sampler": sampler, "state": state, "schedule": schedule,
            "train_seconds": train_seconds}


def weight_indicators(target: Target, x: np.ndarray) -> Optional[np.ndarray]:
    """``[n, k]`` 0/1 indicators whose means are the weights the experiment checks.

    Clayton: x_j > 0 for the first 8 coordinates (P = 0.3 at beta = 1);
    mixtures: the nearest mode centre; other targets: None.
    """
    if hasattr(target, "sign_patterns"):
        return (x[:, :8] > 0).astype(np.float64)
    modes = target.modes()
    if modes is None:
        return None
    nearest = M.mode_metrics(jnp.asarray(x), modes.centres, modes.sd, modes.weights).assignment
    return np.eye(len(modes.centres))[np.asarray(nearest)]


def true_weights(target: Target) -> Optional[List[float]]:
    """The weights ``weight_indicators`` estimate, at beta = 1 (None where unknown)."""
    if hasattr(target, "sign_patterns"):
        return [0.3] * 8
    modes = target.modes()
    if modes is None:
        return None
    w = np.asarray(modes.weights, np.float64)
    return (w / w.sum()).tolist()


def weight_trace(indicators: np.ndarray, log_f: np.ndarray, log_q: np.ndarray
                 ) -> Dict[str, Any]:
    """The flow's weights beside the tempered target's, both from the flow's draws.

    ``indicators [n, k]`` of draws X_i ~ q, ``log_f`` = beta log f(X_i) and
    ``log_q`` = log q(X_i). The flow's weights are the indicator means; the
    target's are their self-normalized importance-sampling estimates under
    p_beta (weights ∝ f^beta / q), consistent whatever q is, but only as
    good as ``weights_is_ess`` (the weights' effective sample size) allows.
    ``weights_lag`` = max_k |flow - target|: how far the flow's mode weights
    trail the curve at this stage.
    """
    log_w = log_f - log_q
    w = np.exp(log_w - np.max(log_w))
    w /= w.sum()
    flow = indicators.mean(axis=0)
    est = w @ indicators
    return {"weights_flow": flow.tolist(), "weights_target_is": est.tolist(),
            "weights_is_ess": float(terms_ess(jnp.asarray(log_w))),
            "weights_lag": float(np.max(np.abs(flow - est)))}


def stage_weights(sampler: TemperFlow, params, target: Target, beta: float, key: jax.Array,
                  n: int) -> Dict[str, Any]:
    """``weight_trace`` of ``n`` draws of the flow after a stage ({} for other targets).

    Clayton also records ``sign_counts_flow``: the flow's shares of draws with
    k = 0 ... 8 of the first 8 coordinates negative (p's are U-shaped at beta = 1,
    a third of the mass at k = 8; a flow without the copula's dependence has
    nearly binomial ones).
    """
    x, log_q = sampler.sample_and_log_prob(params, key, n)
    x = np.asarray(x)
    indicators = weight_indicators(target, x)
    if indicators is None:
        return {}
    log_f = beta * np.asarray(sampler.target_log_prob(x), np.float64)
    out = weight_trace(indicators, log_f, np.asarray(log_q, np.float64))
    if hasattr(target, "sign_patterns"):
        out["sign_counts_flow"] = sign_count_shares(target, x).tolist()
    return out


def sign_count_shares(target, x: np.ndarray) -> np.ndarray:
    """Clayton: the shares of ``x`` with k = 0 ... 8 of the first 8 coordinates negative."""
    counts = np.asarray(target.negative_counts(x))
    return np.bincount(counts, minlength=target.num_bimodal + 1) / len(counts)


def draw_flow(config, trained: Dict[str, Any], target: Target, key: jax.Array):
    """``eval.num_samples`` draws from the flow (or through rejection), and their timing.

    The seconds returned are the median over ``eval.timing_repeats`` timed draws
    of ``eval.timed_draws`` points after compilation (Table S1 times 10^4 points).
    """
    sampler, params = trained["sampler"], trained["state"].params
    n, m = config.eval.num_samples, config.eval.timed_draws
    info: Dict[str, Any] = {}
    if config.method == "temperflow+rej":
        propose = sampler.flow_sample_and_log_prob
        floor = config.sampler.min_acceptance
        x, info = rejection_sample(propose, params, target.log_prob, key, n,
                                   min_acceptance=floor)  # compiles, sets the bound

        def draw(k):  # the same jitted proposal batches as above: nothing left to compile
            return rejection_sample(propose, params, target.log_prob, k, m,
                                    log_bound=info["log_bound"], min_acceptance=floor)[0]
    else:
        x = sampler.sample(params, key, n)

        def draw(k):
            return sampler.sample(params, k, m)

        jax.block_until_ready(draw(jax.random.fold_in(key, 1)))  # compiles for m points
    seconds = []
    for r in range(config.eval.timing_repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(draw(jax.random.fold_in(key, 2 + r)))
        seconds.append(time.perf_counter() - t0)
    return np.asarray(x), float(np.median(seconds)), info


def run_chains(config, target: Target, key: jax.Array):
    """The MCMC baseline: ``mcmc.num_chains`` chains, pooled to ``eval.num_samples`` draws."""
    c = config.mcmc
    num_draws = math.ceil(config.eval.num_samples / c.num_chains)
    options: Dict[str, Any] = {}
    if c.step_size > 0:
        options["step_size"] = c.step_size
    if config.method == "hmc":
        options["num_integration_steps"] = c.num_integration_steps
    if config.method == "pt":
        options["betas"] = mcmc.geometric_ladder(c.beta_min, c.num_betas)
    init_key, run_key = jax.random.split(key)
    init = c.init_scale * jax.random.normal(init_key, (c.num_chains * target.dim,))
    init = init.reshape(c.num_chains, target.dim)

    def run():
        result = mcmc.run_mcmc(config.method, target.log_prob, run_key, init,
                               num_draws=num_draws, burn_in=c.burn_in, thin=c.thin, **options)
        return jax.block_until_ready(result)

    t0 = time.perf_counter()
    run()  # compiles
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - t0
    chains = np.asarray(result.samples)
    info = {"acceptance_rate": float(result.acceptance_rate),
            "sample_seconds_with_compile": first, "num_chains": c.num_chains,
            "draws_per_chain": num_draws}
    if result.swap_rate is not None:
        info["swap_rate"] = float(result.swap_rate)
    info.update({k: float(v) for k, v in mcmc.effective_sample_size_summary(chains).items()})
    pooled = chains.reshape(-1, target.dim)[:config.eval.num_samples]
    return pooled, seconds, info


def score(config, target: Target, samples: np.ndarray, key: jax.Array) -> Dict[str, float]:
    """Adjusted W1 / MMD over replicates, and the mode metrics of the target's kind."""
    out: Dict[str, float] = {}
    size, reps = config.eval.replicate_size, config.eval.replicates
    exact = None
    try:
        exact = np.asarray(target.sample(seed=key, sample_shape=(2 * size * reps,)))
    except NotImplementedError:
        pass
    if exact is not None:
        rng = np.random.default_rng(config.seed)
        w1, mmd = [], []
        for r in range(reps):
            x = samples[rng.choice(len(samples), size, replace=len(samples) < size)]
            y1 = exact[2 * r * size:(2 * r + 1) * size]
            y2 = exact[(2 * r + 1) * size:(2 * r + 2) * size]
            w1.append(M.wasserstein_exact(x, y1) - M.wasserstein_exact(y2, y1))
            mmd.append(float(M.adjusted_mmd(jnp.asarray(x), jnp.asarray(y1), jnp.asarray(y2))))
        for name, values in (("adjusted_w1", w1), ("adjusted_mmd", mmd)):
            out[name] = float(np.mean(values))
            out[name + "_se"] = float(np.std(values, ddof=1) / math.sqrt(reps)) if reps > 1 else 0.0
    modes = target.modes()
    if hasattr(target, "sign_patterns"):
        out.update(pattern_metrics(target, samples))
    elif modes is not None:
        mm = M.mode_metrics(jnp.asarray(samples), modes.centres, modes.sd, modes.weights)
        w = np.asarray(modes.weights) / np.sum(modes.weights)
        out.update(modes_captured=int(mm.modes_captured), num_modes=int(len(w)),
                   high_quality_frac=float(mm.high_quality_frac),
                   mode_weight_tv=float(mm.mode_weight_tv),
                   mode_weight_max_error=float(np.max(np.abs(np.asarray(mm.mode_weights) - w))))
    return out


def pattern_metrics(target, samples: np.ndarray) -> Dict[str, float]:
    """Clayton: the 256 sign patterns of the first 8 coordinates, and P(x_j > 0) = 0.3."""
    x = samples[:20_000]
    patterns = np.asarray(target.sign_patterns(jnp.asarray(x)))
    k = 8
    positive = np.mean(x[:, :k] > 0, axis=0)
    out = {"sign_patterns_present": int(np.unique(patterns).size),
           "num_sign_patterns": 2 ** k,
           "positive_frac_max_error": float(np.max(np.abs(positive - 0.3))),
           **{f"positive_frac_{j}": float(positive[j]) for j in range(k)}}
    q = np.bincount(patterns, minlength=2 ** k) / len(patterns)
    w = np.asarray(target.pattern_weights())  # exact, by inclusion-exclusion on the copula CDF
    out["pattern_weight_tv"] = float(0.5 * np.sum(np.abs(q - w)))
    return out


def plot_samples(path: str, config, target: Target, samples: np.ndarray, key: jax.Array,
                 title: str) -> None:
    if config.data.name == "latent_ebm":
        viz.save_image_grid(path, np.asarray(target.decode(jnp.asarray(samples[:64]))), rows=8,
                            title=title)
        if target.dim == 2:  # the latent samples over the latent density
            lo, hi = np.percentile(samples, [0.5, 99.5], axis=0)
            pad = 0.2 * (hi - lo)
            viz.plot_density_2d(path.replace(".png", "_latent.png"), samples,
                                log_prob=jax.jit(target.log_prob), title=title,
                                bounds=(lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1],
                                        hi[1] + pad[1]))
        return
    exact = np.asarray(target.sample(seed=key, sample_shape=(len(samples),)))
    if target.dim == 2:
        lo = np.minimum(exact.min(0), -1.0) - 1.0
        hi = np.maximum(exact.max(0), 1.0) + 1.0
        viz.plot_density_2d(path, exact, samples, log_prob=jax.jit(target.log_prob), title=title,
                            bounds=(lo[0], hi[0], lo[1], hi[1]))
    else:
        pairs = [(0, 1), (2, 3)] + ([(0, 8), (8, 9)] if target.dim > 9 else [])
        plot_sample_pairs(path, samples, exact, pairs, title=title)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       progress: Optional[bool] = None) -> Dict[str, Any]:
    target = make_target(config)
    train_key, sample_key, eval_key = jax.random.split(jax.random.PRNGKey(config.seed), 3)
    metrics: Dict[str, Any] = {"method": config.method, "target": config.data.name,
                               "dim": target.dim}
    if config.method in MCMC_METHODS:
        samples, seconds, info = run_chains(config, target, sample_key)
        metrics.update(info, train_seconds=0.0, sample_seconds=seconds)
    else:
        trained = train_flow(config, target, workdir, train_key, progress)
        schedule = trained["schedule"]
        samples, seconds, info = draw_flow(config, trained, target, sample_key)
        metrics.update(info, train_seconds=trained["train_seconds"], sample_seconds=seconds,
                       num_betas=len({round(b, 12) for b in schedule.betas}),
                       betas=schedule.betas, steps=schedule.stage)
        ess = [s["ess"] for s in schedule.stages if "ess" in s]
        if ess:  # importance sampling from the reference: its worst stage, and collapses
            metrics.update(is_ess_min=float(min(ess)),
                           is_ess_collapsed_stages=sum(bool(s.get("ess_collapsed"))
                                                       for s in schedule.stages))
        if jax.process_index() == 0:
            plot_beta_trace(os.path.join(workdir, "beta_trace.png"), schedule.stages,
                            title=f"{config.method} on {config.data.name}")
            plot_weight_trace(os.path.join(workdir, "weight_trace.png"), schedule.stages,
                              true_weights(target), title=f"{config.method} on "
                              f"{config.data.name}: mode weights along the curve")
    metrics.update(score(config, target, samples, eval_key))
    if config.method == "temperflow":
        # The same flow as a rejection proposal (TemperFlow+Rej.), without training it again.
        rej = config.copy_and_resolve_references()
        rej.method = "temperflow+rej"
        try:
            rej_samples, rej_seconds, info = draw_flow(rej, trained, target, sample_key)
            metrics["rejection"] = dict(info, sample_seconds=rej_seconds,
                                        **score(config, target, rej_samples, eval_key))
        except RejectionError as e:  # too low an acceptance rate: report it, keep the rest
            metrics["rejection"] = {"error": str(e)}
    if jax.process_index() == 0:
        np.save(os.path.join(workdir, "samples.npy"), samples)
        plot_samples(os.path.join(workdir, "samples.png"), config, target, samples, eval_key,
                     title=_title(config, metrics))
    runner.write_metrics(workdir, metrics)
    return metrics


def _title(config, metrics: Dict[str, Any]) -> str:
    parts = [f"{config.method} on {config.data.name}"]
    if "modes_captured" in metrics:
        parts.append(f"{metrics['modes_captured']}/{metrics['num_modes']} modes, "
                     f"max weight error {metrics['mode_weight_max_error']:.3f}")
    if "sign_patterns_present" in metrics:
        parts.append(f"{metrics['sign_patterns_present']}/256 sign patterns")
    return ": ".join(parts)


if __name__ == "__main__":
    runner.define_flags()
    runner.main(train_and_evaluate, CHOICES, POSITIVE, check_config)
