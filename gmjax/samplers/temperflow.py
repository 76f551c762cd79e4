"""TemperFlow: a normalizing flow trained along a tempering curve (Qiu and Wang, 2024).

Qiu and Wang, "Efficient Multimodal Sampling via Tempered Distribution Flow",
JASA 119 (2024), 1446-1460 (QW below). Given p(x) ∝ exp(-E(x)), TemperFlow
trains a flow q_theta = T_theta # N(0, I) through the tempered densities
p_beta ∝ exp(-beta E), 0 < beta_1 < ... < beta_K = 1:

1. **First stage.** Fit q to p_{beta_1} (beta_1 = 0.1) by reverse KL with
   reparameterized draws. At small beta the modes are flat and joined, so the
   mode-seeking KL finds all of them.
2. **Between stages.** Freeze a reference copy r of the flow. Estimate
   kl(beta) = KL(p_beta || p_1) and its derivative by self-normalized
   importance sampling from r, and move log beta by

       delta = -(1 - kl_decay) kl / (beta d kl / d beta),

   the step after which the linearized kl has shrunk by the factor kl_decay
   (d kl / d log beta = beta d kl / d beta). The first step is at most 1; later
   ones are clipped to [1/2, 2] times an exponential moving average (factor
   0.9) of the past steps, so one noisy KL estimate cannot stall or skip the
   curve. The reference is refreshed whenever kl falls below the next of the
   ``ref_cutoffs`` fractions of the first kl (the authors' default), or after
   every stage (``ref_cutoffs=None``, the authors' other option).
3. **Middle stages.** Minimize log ||q - p_beta||^2 by importance sampling
   from r (the L2 sampler; ``gmjax.objectives.sampling.make_l2_loss``), with
   log U_beta estimated once per stage from many reference draws. Unlike the
   KL, the L2 distance keeps pulling mass towards a mode the flow misses
   (QW Theorem 2).
4. **Final stage.** L2 at beta = 1. The authors' code follows it with a
   reverse-KL refinement at beta = 1 (``final_kl_steps > 0`` here); it is off by
   default because on the circle target it made the mode weights worse
   (largest weight error 0.004 after the L2 stage, 0.035 after the
   refinement; docs/temperflow.md). Optionally (TemperFlow+Rej.) use the flow
   as the proposal of a rejection sampler (``rejection_sample``).

Schedules follow the authors' description and released code (facts, not
code): each stage restarts Adam with a one-cycle learning-rate schedule whose
peak is ``lr / sqrt(beta) * lr_decay ** stage``.

The sampler is driven stage by stage (``TemperFlow.run``) so an experiment can
checkpoint after every stage and resume; all the randomness of stage i comes
from ``fold_in(key, i)``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
import warnings
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from jax.sharding import Mesh

from gmjax.flows.base import Flow
from gmjax.objectives.sampling import (SampleFn, TemperingKL, defensive_latent_draws,
                                       defensive_latent_log_prob, log_normalizer, make_l2_loss,
                                       make_reverse_kl_loss, tempering_kl)
from gmjax.targets.base import Target
from gmjax.training.loop import NonFiniteError
from gmjax.training.parallel import data_mesh, replicate
from gmjax.training.state import TrainState, all_finite
from gmjax.training.step import data_parallel, device_key, gradient_update

PyTree = Any

# The reference-refresh thresholds of the authors' code: refresh when kl has
# fallen below these fractions of the first stage's kl, in turn.
DEFAULT_REF_CUTOFFS = (0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.01, 0.001)

METHODS = ("temperflow", "kl", "l2_fixed")

# Below this effective sample size (in reference draws) the self-normalized
# estimates of kl(beta) and its derivative rest on a handful of points.
MIN_ESS = 10.0


class ImportanceCollapseWarning(UserWarning):
    """The reference flow no longer covers the tempered target (IS weights on a few draws)."""


class RejectionError(RuntimeError):
    """Rejection sampling accepted too few proposals: the flow is a poor proposal."""


@dataclasses.dataclass(frozen=True)
class TemperFlowConfig:
    """Hyperparameters of the sampler (defaults: QW and the authors' code).

    Attributes:
      method: ``temperflow`` (adaptive beta), ``kl`` (reverse KL straight at
        beta = 1, the KL sampler) or ``l2_fixed`` (the L2 sampler on a fixed
        geometric grid of ``num_fixed_betas`` betas, for the ablation).
      beta0: the first temperature beta_1.
      kl_decay: the factor by which each step should shrink kl(beta).
      steps_init, steps_mid, steps_final: Adam steps of the first stage, of
        each middle stage and of the final L2 stage at beta = 1. The KL
        sampler trains for ``steps_init + steps_final``.
      steps_growth: middle stage i (i = 1, 2, ...) trains for
        ``steps_mid * steps_growth ** (i - 1)`` steps, rounded to a multiple of
        ``steps_per_call`` (1: the same for every stage, QW). Not in QW: late
        stages, where the per-stage learning rate has decayed by
        ``lr_decay ** i``, get more steps; ``1 / lr_decay`` keeps peak rate
        times steps the same for every middle stage. On Clayton p = 8 it was
        no better than the same total spread evenly (docs/temperflow.md).
      final_rounds: rounds of the final stage at beta = 1, each of
        ``steps_final`` steps (1: QW). Not in QW: every round after the first
        takes the flow as it ends the previous round for its reference, with a
        fresh estimate of log U_1, so the importance weights' reference moves
        toward p round by round. The last middle betas' reference lags p_beta
        where the mode weights move fastest (Clayton: P(x_j > 0) falls by
        0.12 between beta = 0.95 and 1); on Clayton p = 64 ten rounds of 400
        forward-KL steps took max |P(x_j > 0) - 0.3| from 0.038 to 0.014
        (docs/temperflow.md).
      final_kl_steps: steps of the authors' reverse-KL refinement after the
        final L2 stage (0: none).
      batch_size: draws per step (split over devices).
      lr, lr_decay: the per-stage peak learning rate is
        ``lr / sqrt(beta) * lr_decay ** stage``.
      max_betas: at most this many temperatures before the final stage.
      ref_cutoffs: reference-refresh thresholds (fractions of the first kl);
        ``None`` refreshes the reference after every stage.
      estimate_draws: reference draws for the KL and log U estimates.
      upweight: the authors' max(1, p/q)^2 variant of the L2 loss.
      l2_kl_weight: weight w of a reverse-KL term added to every L2 stage's
        loss, log L2 + w KL(q || p_beta) (the authors' ``"l2+kl"`` at w = 1;
        0: the plain L2 sampler).
      l2_form: the loss of the stages after the first: ``"distance"`` (QW:
        log ||q - f / U_beta||^2, U_beta by importance sampling), or, as
        ablations not in QW that need no U_beta, ``"angle"`` (-log cos(q, f),
        ``gmjax.objectives.sampling.log_angle_reference``) or ``"forward_kl"``
        (-E_p[log q] by importance sampling from the reference,
        ``forward_kl_reference``).
      defensive_share, defensive_scale: the reference draws' latents come from
        (1 - share) N(0, I) + share N(0, scale^2 I) instead of N(0, I), for the
        L2 loss and for the kl and log U_beta estimates (a defensive mixture,
        not in QW: it lets the estimates see mass beyond the flow's own tails;
        ``gmjax.objectives.sampling.defensive_latent_log_prob``). share = 0: off.
      grad_clip: global-norm gradient clipping (0: off).
      steps_per_call: updates scanned in one compiled call.
    """

    method: str = "temperflow"
    beta0: float = 0.1
    kl_decay: float = 0.8
    steps_init: int = 2000
    steps_mid: int = 2000
    steps_final: int = 2000
    steps_growth: float = 1.0
    batch_size: int = 1000
    lr: float = 1e-3
    lr_decay: float = 0.9
    max_betas: int = 100
    ref_cutoffs: Optional[Tuple[float, ...]] = DEFAULT_REF_CUTOFFS
    estimate_draws: int = 10_000
    num_fixed_betas: int = 10
    upweight: bool = False
    l2_kl_weight: float = 0.0
    l2_form: str = "distance"
    final_rounds: int = 1
    final_kl_steps: int = 0
    defensive_share: float = 0.0
    defensive_scale: float = 1.5
    grad_clip: float = 0.0
    steps_per_call: int = 100

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown TemperFlow method {self.method!r}; valid: {METHODS}")
        if not 0.0 < self.beta0 < 1.0:
            raise ValueError(f"beta0 must be in (0, 1), got {self.beta0}")
        if self.l2_kl_weight < 0.0:
            raise ValueError(f"l2_kl_weight must be >= 0, got {self.l2_kl_weight}")
        if not 0.0 <= self.defensive_share < 1.0:
            raise ValueError(f"defensive_share must be in [0, 1), got {self.defensive_share}")
        if self.defensive_share and not self.defensive_scale > 1.0:
            raise ValueError(f"defensive_scale must be > 1 (the wide latent component's sd) "
                             f"when defensive_share > 0, got {self.defensive_scale}")
        if not self.steps_growth >= 1.0:
            raise ValueError(f"steps_growth must be >= 1 (1: the same steps for every middle "
                             f"stage), got {self.steps_growth}")
        if self.final_rounds < 1:
            raise ValueError(f"final_rounds must be >= 1 (rounds of the final stage at "
                             f"beta = 1), got {self.final_rounds}")
        if not 0.0 < self.kl_decay < 1.0:
            raise ValueError(f"kl_decay must be in (0, 1), got {self.kl_decay}")
        for name in ("steps_init", "steps_mid", "steps_final", "final_kl_steps"):
            value = getattr(self, name)
            if value < (name != "final_kl_steps") or value % self.steps_per_call:
                raise ValueError(f"{name}={value} must be a positive multiple of "
                                 f"steps_per_call={self.steps_per_call}")

    def mid_steps(self, stage: int) -> int:
        """Adam steps of middle stage ``stage`` (1, 2, ...; stage 0 is the first, KL, one)."""
        calls = self.steps_per_call
        return calls * max(1, round(self.steps_mid * self.steps_growth ** (stage - 1) / calls))


def one_cycle(step: jax.Array, total: jax.Array, peak: jax.Array, pct_start: float = 0.3,
              div_factor: float = 25.0, final_div_factor: float = 1e4) -> jax.Array:
    """One-cycle learning rate (Smith and Topin, 2019): cosine up to ``peak``, cosine down.

    Starts at ``peak / div_factor``, reaches ``peak`` after ``pct_start`` of
    the ``total`` steps and ends at ``peak / div_factor / final_div_factor``.
    """
    step = jnp.asarray(step, jnp.float32)
    total = jnp.asarray(total, jnp.float32)
    start, end = peak / div_factor, peak / div_factor / final_div_factor
    up = jnp.maximum(pct_start * total, 1.0)
    down = jnp.maximum(total - up, 1.0)
    warm = start + (peak - start) * 0.5 * (1.0 - jnp.cos(jnp.pi * jnp.minimum(step / up, 1.0)))
    frac = jnp.clip((step - up) / down, 0.0, 1.0)
    cool = end + (peak - end) * 0.5 * (1.0 + jnp.cos(jnp.pi * frac))
    return jnp.where(step < up, warm, cool)


def next_log_beta_step(kl: float, kl_grad: float, beta: float, past: Sequence[float],
                       kl_decay: float) -> float:
    """The adaptive step in log beta (QW Section 3.3; see the module doc).

    ``-(1 - kl_decay) kl / (beta kl_grad)``; the first step is capped at 1,
    later ones are clipped to ``[avg / 2, 2 avg]`` with ``avg`` the
    exponentially weighted (factor 0.9, newest heaviest) mean of ``|past|``.
    """
    delta = -(1.0 - kl_decay) * kl / beta / kl_grad if kl_grad != 0 else math.inf
    if not math.isfinite(delta):
        delta = math.inf
    if not past:
        return float(min(delta, 1.0))
    weights = 0.9 ** np.arange(len(past) - 1, -1, -1, dtype=np.float64)
    avg = float(np.sum(np.abs(past) * weights) / np.sum(weights))
    return float(min(max(abs(delta), 0.5 * avg), 2.0 * avg))


@struct.dataclass
class SamplerState:
    """What a resumed run needs, as one pytree: the flow, its reference, the key."""

    params: PyTree
    ref_params: PyTree
    key: jax.Array


@dataclasses.dataclass
class Schedule:
    """The host-side record of the tempering: betas, KL estimates, steps (JSON-able)."""

    stage: int = 0                  # next stage to train
    log_beta: float = 0.0           # log of the next stage's beta
    deltas: List[float] = dataclasses.field(default_factory=list)
    kls: List[float] = dataclasses.field(default_factory=list)
    cutoffs_used: int = 0
    phase: str = "init"             # init -> mid -> final_l2 -> final_kl -> done
    stages: List[Dict[str, Any]] = dataclasses.field(default_factory=list)

    def to_json(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Schedule":
        return cls(**dict(data))

    @property
    def betas(self) -> List[float]:
        """The temperatures trained so far, in order (the final ones are 1)."""
        return [s["beta"] for s in self.stages]

    @property
    def final_rounds_done(self) -> int:
        """Rounds of the final stage (the L2 stages at beta = 1) trained so far."""
        return sum(1 for s in self.stages if s["kind"] == "l2" and s["beta"] == 1.0)


class TemperFlow:
    """Trains a ``Flow`` to sample a ``Target`` (or runs the KL / fixed-grid ablations).

    Usage::

        sampler = TemperFlow(flow, target, TemperFlowConfig())
        state, schedule = sampler.init(key)
        for state, schedule in sampler.run(state, schedule):
            ...  # checkpoint after every stage
        x = sampler.sample(state.params, key, 10_000)
    """

    def __init__(self, flow: Flow, target: Target, config: TemperFlowConfig,
                 mesh: Optional[Mesh] = None, progress: bool = False):
        self.flow, self.target, self.config = flow, target, config
        self.mesh = mesh if mesh is not None else data_mesh(1)
        self.progress = progress
        num_devices = self.mesh.devices.size
        if config.batch_size % num_devices:
            raise ValueError(f"batch_size={config.batch_size} must be divisible by the "
                             f"{num_devices} devices")
        per_device = config.batch_size // num_devices
        target_log_prob = target.log_prob
        self._kl_loss = make_reverse_kl_loss(self._sample_and_log_prob, target_log_prob,
                                             per_device)
        self._l2_loss = make_l2_loss(self._sample_and_log_prob, self._log_prob, target_log_prob,
                                     per_device, upweight=config.upweight,
                                     kl_weight=config.l2_kl_weight, form=config.l2_form,
                                     reference_sample=self._reference_sample_and_log_prob)
        self._optimizer = optax.inject_hyperparams(_adam, static_args=("grad_clip",))(
            learning_rate=0.0,
                                                          grad_clip=config.grad_clip)
        self._steps = {"kl": self._build_step(self._kl_loss), "l2": self._build_step(self._l2_loss)}
        self._sample_jit = jax.jit(self._sample_and_log_prob, static_argnums=2)
        self._reference_jit = jax.jit(self._reference_sample_and_log_prob, static_argnums=2)
        self._log_prob_jit = jax.jit(self._log_prob)
        self._target_log_prob = jax.jit(target_log_prob)

    # The flow as functions of its parameters (un-jitted: for use inside jit).
    def flow_sample_and_log_prob(self, params: PyTree, key: jax.Array, n: int):
        return self._sample_and_log_prob(params, key, n)

    def _sample_and_log_prob(self, params: PyTree, key: jax.Array, n: int):
        return self.flow.apply(params, key, n, method=Flow.sample_and_log_prob)

    def _reference_sample_and_log_prob(self, params: PyTree, key: jax.Array, n: int):
        """Draws of the reference and their log-density: the flow itself, or with
        ``defensive_share > 0`` the flow pushed from the defensive latent mixture."""
        c = self.config
        if not c.defensive_share:
            return self._sample_and_log_prob(params, key, n)
        shape = tuple(self.flow.event_shape)
        z = defensive_latent_draws(key, n, shape, c.defensive_scale, c.defensive_share)
        x, log_det = self.flow.apply(params, z, method=Flow.forward_and_log_det)
        log_b = defensive_latent_log_prob(z, c.defensive_scale, c.defensive_share, len(shape))
        return x, log_b - log_det

    def _log_prob(self, params: PyTree, x: jax.Array) -> jax.Array:
        return self.flow.apply(params, x, method=Flow.log_prob)

    def _build_step(self, loss_fn: Callable) -> Callable:
        optimizer, calls = self._optimizer, self.config.steps_per_call

        def one_step(state: TrainState, cond: PyTree):
            lr = one_cycle(state.step, cond["num_steps"], cond["lr"])
            opt_state = state.opt_state._replace(
                hyperparams={**state.opt_state.hyperparams, "learning_rate": lr})
            params, opt_state, metrics = gradient_update(
                loss_fn, optimizer, state.params, opt_state, cond, device_key(state.key, state.step))
            metrics["lr"] = lr
            return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics

        def many_steps(state: TrainState, cond: PyTree):
            return jax.lax.scan(lambda s, _: one_step(s, cond), state, None, length=calls)

        # No donation: the reference parameters may alias the flow's own.
        return data_parallel(many_steps, self.mesh, donate=False, split_batch=False)

    # Public pieces.
    def init(self, key: jax.Array) -> Tuple[SamplerState, Schedule]:
        """Fresh flow parameters and an empty schedule starting at ``beta0``."""
        init_key, run_key = jax.random.split(key)
        params = self.flow.init(init_key, jnp.zeros((2, *self.flow.event_shape)))
        schedule = Schedule(log_beta=math.log(self.config.beta0))
        if self.config.method == "kl":
            schedule.log_beta = 0.0
        return SamplerState(params=params, ref_params=params, key=run_key), schedule

    def sample(self, params: PyTree, key: jax.Array, n: int) -> jax.Array:
        return self._sample_jit(params, key, n)[0]

    def sample_and_log_prob(self, params: PyTree, key: jax.Array, n: int):
        return self._sample_jit(params, key, n)

    def reference_sample_and_log_prob(self, params: PyTree, key: jax.Array, n: int):
        """Draws as the L2 loss and the estimates take them from a reference with
        ``params`` (the defensive mixture when ``defensive_share > 0``), and log r."""
        return self._reference_jit(params, key, n)

    def log_prob(self, params: PyTree, x: jax.Array) -> jax.Array:
        return self._log_prob_jit(params, x)

    def target_log_prob(self, x: jax.Array) -> jax.Array:
        """The untempered log f of the target (jitted)."""
        return self._target_log_prob(x)

    def estimate(self, ref_params: PyTree, beta: float, key: jax.Array) -> TemperingKL:
        """kl(beta), its derivative and log U_beta from ``estimate_draws`` reference draws."""
        y, log_r = self._reference_jit(ref_params, key, self.config.estimate_draws)
        energy = -self._target_log_prob(y)
        return jax.device_get(tempering_kl(energy, log_r, jnp.asarray(beta, log_r.dtype)))

    def estimate_log_u(self, ref_params: PyTree, beta: float, key: jax.Array) -> float:
        """log U_beta = log ∫ exp(beta log f) by importance sampling from the reference."""
        y, log_r = self._reference_jit(ref_params, key, self.config.estimate_draws)
        return float(log_normalizer(beta * self._target_log_prob(y), log_r))

    def train_stage(self, params: PyTree, kind: str, beta: float, num_steps: int, lr: float,
                    key: jax.Array, ref_params: Optional[PyTree] = None,
                    log_u: float = 0.0, desc: str = "") -> Tuple[PyTree, Dict[str, float]]:
        """``num_steps`` Adam steps of the ``kind`` ("kl" or "l2") loss at ``beta``.

        Returns the new parameters and a summary (final loss, mean of the last
        10% of losses, steps, seconds; for the L2 distance also
        ``l2_terms_ess``, the median over steps of how many of a batch's draws
        the estimate rests on).
        Raises ``NonFiniteError`` on a non-finite loss.
        """
        calls = self.config.steps_per_call
        state = replicate(TrainState.create(params, self._optimizer, key), self.mesh)
        cond = replicate({"beta": jnp.float32(beta), "lr": jnp.float32(lr),
                          "num_steps": jnp.float32(num_steps), "log_u": jnp.float32(log_u),
                          "ref_params": params if ref_params is None else ref_params}, self.mesh)
        step = self._steps[kind]
        losses, terms_ess = [], []
        bar = _progress(num_steps, desc) if self.progress else None
        t0 = time.perf_counter()
        for i in range(num_steps // calls):
            state, metrics = step(state, cond)
            losses.append(metrics["loss"])
            if "l2_terms_ess" in metrics:
                terms_ess.append(metrics["l2_terms_ess"])
            if bar is not None:
                bar.update(calls)
                if i % 10 == 0:
                    bar.set_postfix(loss=f"{float(metrics['loss'][-1]):.4g}", refresh=False)
        losses = np.concatenate(jax.device_get(losses))
        seconds = time.perf_counter() - t0
        if bar is not None:
            bar.close()
        bad = np.flatnonzero(~np.isfinite(losses))
        if bad.size or not all_finite(state.params):
            at = int(bad[0]) + 1 if bad.size else num_steps
            raise NonFiniteError(at, f"{kind} loss at beta={beta:.4g} ({desc})",
                                 float(losses[bad[0]]) if bad.size else float("nan"), None, "")
        tail = losses[-max(1, num_steps // 10):]
        summary = {"loss": float(losses[-1]), "loss_tail": float(np.mean(tail)),
                   "steps": num_steps, "seconds": seconds, "losses": losses}
        if terms_ess:  # the L2 distance: how many of a device batch's draws its estimate rests on
            summary["l2_terms_ess"] = float(np.median(np.concatenate(jax.device_get(terms_ess))))
        return state.params, summary

    def run(self, state: SamplerState, schedule: Schedule
            ) -> Iterator[Tuple[SamplerState, Schedule]]:
        """Trains stage by stage from ``(state, schedule)``, yielding after each stage.

        Resuming is calling ``run`` again with a yielded (saved) pair.
        """
        c = self.config
        self._check_final_rounds(schedule)
        if schedule.phase == "final_kl" and not c.final_kl_steps:
            schedule.phase = "done"  # saved by a run that had the refinement on
        ends_in_l2 = bool(schedule.stages) and schedule.stages[-1]["kind"] == "l2"
        if (schedule.phase in ("done", "final_kl") and c.method != "kl" and ends_in_l2
                and schedule.final_rounds_done < c.final_rounds):
            # A finished run, now asked for more final rounds: the next one's reference is
            # the flow as it is, as it would have been had the run been started with them.
            schedule.phase = "final_l2"
            schedule.stages[-1]["ref_updated"] = True
            state = state.replace(ref_params=state.params)
        if schedule.phase == "done" and c.final_kl_steps and c.method != "kl" and ends_in_l2:
            schedule.phase = "final_kl"  # a finished run, now asked for the refinement
        while schedule.phase != "done":
            i = schedule.stage
            key = jax.random.fold_in(state.key, i)
            train_key, est_key = jax.random.split(key)
            record: Dict[str, Any] = {"stage": i}
            est: Optional[TemperingKL] = None
            if schedule.phase == "init":
                beta = math.exp(schedule.log_beta)
                steps = c.steps_init + (c.steps_final if c.method == "kl" else 0)
                params, summary = self.train_stage(state.params, "kl", beta, steps,
                                                   c.lr / math.sqrt(beta), train_key,
                                                   desc=f"stage {i} KL beta={beta:.3g}")
                record.update(kind="kl", beta=beta)
                state = state.replace(params=params, ref_params=params)
            elif schedule.phase == "mid":
                beta = math.exp(schedule.log_beta)
                # One set of reference draws gives log U_beta for this stage and, since
                # the reference stays frozen through it, the kl behind the next beta.
                est = self.estimate(state.ref_params, beta, est_key)
                log_u = float(est.log_u_beta)
                steps = c.mid_steps(i)
                params, summary = self.train_stage(
                    state.params, "l2", beta, steps, c.lr / math.sqrt(beta) * c.lr_decay ** i,
                    train_key, state.ref_params, log_u, desc=f"stage {i} L2 beta={beta:.3g}")
                record.update(kind="l2", beta=beta, log_u=log_u)
                state = state.replace(params=params)
            elif schedule.phase == "final_l2":
                round_ = schedule.final_rounds_done + 1
                log_u = self.estimate_log_u(state.ref_params, 1.0, est_key)
                params, summary = self.train_stage(
                    state.params, "l2", 1.0, c.steps_final, c.lr * c.lr_decay ** i,
                    train_key, state.ref_params, log_u,
                    desc=f"stage {i} L2 beta=1" + (f" round {round_}/{c.final_rounds}"
                                                   if c.final_rounds > 1 else ""))
                record.update(kind="l2", beta=1.0, log_u=log_u, round=round_)
                state = state.replace(params=params)
            elif schedule.phase == "final_kl":
                params, summary = self.train_stage(
                    state.params, "kl", 1.0, c.final_kl_steps, c.lr * c.lr_decay ** (i - 1),
                    train_key, desc=f"stage {i} KL beta=1")
                record.update(kind="kl", beta=1.0)
                state = state.replace(params=params)
            else:
                raise ValueError(f"unknown schedule phase {schedule.phase!r}")
            record.update({k: v for k, v in summary.items() if k != "losses"})
            self._advance(state, schedule, record, est_key, est)
            if schedule.phase != "done" and schedule.phase != "final_kl" and \
                    record.get("ref_updated"):
                state = state.replace(ref_params=state.params)
            schedule.stages.append(record)
            schedule.stage += 1
            yield state, schedule

    def _check_final_rounds(self, schedule: Schedule) -> None:
        """Refuses to resume a run whose trained final rounds ``final_rounds`` cannot match."""
        c, done = self.config, schedule.final_rounds_done
        if done > c.final_rounds:
            raise ValueError(f"this run has already trained {done} rounds of the final stage "
                             f"at beta = 1; final_rounds={c.final_rounds} cannot undo them: "
                             f"resume with final_rounds >= {done}, or start a new run")
        if (0 < done < c.final_rounds and schedule.stages[-1]["kind"] == "kl"
                and schedule.stages[-1]["beta"] == 1.0):
            raise ValueError(f"this run ended with the reverse-KL refinement after {done} "
                             f"final round(s); more rounds (final_rounds={c.final_rounds}) "
                             f"would have come before it: start a new run, or resume with "
                             f"final_rounds={done}")

    def _advance(self, state: SamplerState, schedule: Schedule, record: Dict[str, Any],
                 key: jax.Array, est: Optional[TemperingKL] = None) -> None:
        """Picks the next phase and beta after the stage just trained (in place).

        ``est``: the reference's estimates at this stage's beta when already made
        (from the same reference and ``key``), else they are made here.
        """
        c = self.config
        phase = schedule.phase
        if c.method == "kl":
            schedule.phase = "done"
            return
        if phase in ("init", "mid"):
            beta = record["beta"]
            if c.method == "l2_fixed":
                grid = np.geomspace(c.beta0, 1.0, c.num_fixed_betas)
                k = len(schedule.stages) + 1  # index of the next grid point
                record["ref_updated"] = True
                if k >= len(grid) - 1:
                    schedule.phase = "final_l2"
                else:
                    schedule.phase, schedule.log_beta = "mid", float(np.log(grid[k]))
                return
            if est is None:
                est = self.estimate(state.ref_params, beta, key)
            kl, grad = float(est.kl), float(est.grad)
            delta = next_log_beta_step(kl, grad, beta, schedule.deltas, c.kl_decay)
            schedule.kls.append(kl)
            schedule.deltas.append(delta)
            record.update(kl=kl, kl_grad=grad, delta=delta, ess=float(est.ess))
            if est.ess < MIN_ESS:
                record["ess_collapsed"] = True
                warnings.warn(
                    f"stage {record['stage']} (beta={beta:.4g}): the importance weights of "
                    f"{c.estimate_draws} reference draws have an effective sample size of "
                    f"{float(est.ess):.1f}, so the kl estimate behind the next beta, and the "
                    f"L2 loss, rest on a few points. The flow has left its reference: lower "
                    f"the learning rate, raise the batch size or the steps per stage, or "
                    f"refresh the reference every stage (ref_cutoffs=None).",
                    ImportanceCollapseWarning, stacklevel=2)
            schedule.log_beta += delta
            # Betas so far (this stage's included) plus the next one, then 1.
            if schedule.log_beta >= 0.0 or len(schedule.stages) + 2 >= c.max_betas:
                schedule.phase = "final_l2"
                return
            schedule.phase = "mid"
            refresh = c.ref_cutoffs is None or (
                schedule.cutoffs_used < len(c.ref_cutoffs)
                and kl < c.ref_cutoffs[schedule.cutoffs_used] * schedule.kls[0])
            if refresh and c.ref_cutoffs is not None:
                schedule.cutoffs_used += 1
            record["ref_updated"] = bool(refresh)
        elif phase == "final_l2":
            if record["round"] < c.final_rounds:  # another round, from a fresh reference
                record["ref_updated"] = True
            else:
                schedule.phase = "final_kl" if c.final_kl_steps else "done"
        else:
            schedule.phase = "done"


def rejection_sample(sample_and_log_prob: SampleFn, params: PyTree,
                     target_log_prob: Callable[[jax.Array], jax.Array], key: jax.Array, n: int,
                     *, log_bound: Optional[float] = None, bound_draws: int = 100_000,
                     batch: int = 10_000, min_acceptance: float = 0.01
                     ) -> Tuple[jax.Array, Dict[str, float]]:
    """Rejection sampling from ``target_log_prob`` with the flow as proposal (TemperFlow+Rej.).

    The proposal is ``sample_and_log_prob(params, key, m) -> (x [m, d], log q(x))``
    (``params`` are passed as a jit argument, not baked in as constants, which
    XLA would spend minutes folding). Accept a proposal X ~ q with probability
    f(X) / (M q(X)), where
    ``log M = log_bound`` should bound log f - log q. When not given it is
    estimated as the maximum of log f - log q over ``bound_draws`` proposals,
    so the acceptance test is exact up to the rare points where the flow's
    density ratio exceeds that maximum (their acceptance probability is
    clipped at 1). Returns ``n`` accepted points and ``{"acceptance_rate",
    "log_bound"}``; raises ``RejectionError`` once ``n / min_acceptance``
    proposals have not produced ``n`` points.
    """
    key, bound_key = jax.random.split(key)
    if log_bound is None:  # in batches: a big target (a GAN's nets) must not see 10^5 at once
        log_bound = max(
            float(jnp.max(_log_ratio(sample_and_log_prob, target_log_prob, params,
                                     jax.random.fold_in(bound_key, i), batch)[1]))
            for i in range(max(1, bound_draws // batch)))

    kept, proposed, accepted = [], 0, 0
    max_rounds = max(1, math.ceil(n / min_acceptance / batch))
    for round_ in range(max_rounds):
        x, ok = jax.device_get(_propose(sample_and_log_prob, target_log_prob, params,
                                        jax.random.fold_in(key, round_), batch,
                                        jnp.float32(log_bound)))
        kept.append(x[ok])
        proposed += batch
        accepted += int(ok.sum())
        if accepted >= n:
            break
    else:
        raise RejectionError(f"rejection sampling accepted {accepted} of {proposed} proposals "
                             f"(below the minimum acceptance rate {min_acceptance}); the flow is "
                             f"a poor proposal for this target: train it longer, or lower "
                             f"the minimum acceptance rate")
    return jnp.asarray(np.concatenate(kept)[:n]), {"acceptance_rate": accepted / proposed,
                                                   "log_bound": log_bound}


# The proposal's functions are static arguments, so a second call with the same
# (bound) methods reuses the compilation: rejection draws are timed in Table S1.
@functools.partial(jax.jit, static_argnums=(0, 1, 4))
def _log_ratio(sample_and_log_prob: SampleFn, target_log_prob: Callable, params: PyTree,
               key: jax.Array, batch: int) -> Tuple[jax.Array, jax.Array]:
    """A batch of proposals and their log f - log q, [batch, d], [batch]."""
    x, log_q = sample_and_log_prob(params, key, batch)
    return x, target_log_prob(x) - log_q


@functools.partial(jax.jit, static_argnums=(0, 1, 4))
def _propose(sample_and_log_prob: SampleFn, target_log_prob: Callable, params: PyTree,
             key: jax.Array, batch: int, log_bound: jax.Array) -> Tuple[jax.Array, jax.Array]:
    """A batch of proposals and whether each is accepted."""
    k1, k2 = jax.random.split(key)
    x, log_r = _log_ratio(sample_and_log_prob, target_log_prob, params, k1, batch)
    return x, jnp.log(jax.random.uniform(k2, (batch,))) < log_r - log_bound


def _adam(learning_rate: float, grad_clip: float) -> optax.GradientTransformation:
    clip = optax.clip_by_global_norm(grad_clip) if grad_clip > 0 else optax.identity()
    return optax.chain(clip, optax.adam(learning_rate))


def _progress(total: int, desc: str):
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, dynamic_ncols=True, unit="step", leave=False)
