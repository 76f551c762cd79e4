"""TemperFlow as a kernel: a typed state and pure stage functions.

Qiu and Wang, "Efficient Multimodal Sampling via Tempered Distribution Flow",
JASA 119 (2024), 1446-1460 (QW). Given p(x) ∝ exp(-E(x)), TemperFlow trains a
flow q_theta = T_theta # N(0, I) through the tempered densities
p_beta ∝ exp(-beta E), 0 < beta_1 < ... < beta_K = 1, one *stage* per beta:

1. **First stage** (phase ``first``): reverse KL to p_{beta_1} with
   reparameterized draws. At small beta the modes are flat and joined, so the
   mode-seeking KL finds all of them.
2. **Between stages**: the reference r, a frozen copy of the flow, gives
   kl(beta) = KL(p_beta || p_1) and its derivative by importance sampling
   (``gmjax.objectives.tempering.tempering_kl``); log beta moves by
   ``schedule.next_log_beta_step``; the reference is refreshed by
   ``schedule.refresh_reference``.
3. **Middle stages** (``middle``): the stage loss (``config.stage_loss``; QW's
   L2 distance, with log U_beta estimated once per stage from the reference)
   at each beta.
4. **Final stage** (``final``): the stage loss at beta = 1, in
   ``config.final_rounds`` rounds, each after the first from a fresh
   reference; then optionally the authors' reverse-KL refinement
   (``refine``).

The state is ``TemperFlowState``: the flow's and the reference's parameters,
the run's key and a ``Schedule`` (the host-side numbers that decide the next
stage). ``TemperFlow.next_stage`` reads the state and says what to train
next (a ``Stage``); ``prepare_stage`` makes the stage's conditioning,
``stage_train_state`` and ``train_step`` what the engine's ``fit`` runs, and
``finish_stage`` turns the trained parameters into the next state and a
``StageInfo`` record. ``run.run_temperflow`` drives them with checkpoints
after every stage. All the randomness of stage i comes from
``fold_in(state.key, i)``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Dict, Mapping, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.sharding import Mesh

from gmjax.flows.base import Flow
from gmjax.objectives.sampler_losses import FlowFunctions, make_stage_loss
from gmjax.objectives.tempering import (TemperingKL, defensive_latent_draws,
                                        defensive_latent_log_prob, log_normalizer,
                                        tempering_kl)
from gmjax.samplers.temperflow import schedule as rules
from gmjax.samplers.temperflow.config import TemperFlowConfig
from gmjax.targets.base import Target, Tempered
from gmjax.training.optim import make_optimizer, set_hyperparams
from gmjax.training.parallel import data_mesh
from gmjax.training.state import TrainState
from gmjax.training.step import make_train_step

PyTree = Any

# Phases, in order.
FIRST, MIDDLE, FINAL, REFINE, DONE = "first", "middle", "final", "refine", "done"

# Below this effective sample size (in reference draws) the self-normalized
# estimates of kl(beta) and its derivative rest on a handful of points.
MIN_ESS = 10.0


class ImportanceCollapseWarning(UserWarning):
    """The reference flow no longer covers the tempered target (IS weights on a few draws)."""


class Schedule(NamedTuple):
    """The host-side numbers that decide the next stage (JSON-able)."""

    stage: int                      # index of the next stage to train
    phase: str                      # first -> middle -> final -> refine -> done
    log_beta: float                 # log of the next middle stage's beta
    first_kl: float = math.nan      # kl(beta) after the first stage
    step_sum: float = 0.0           # moving average of past log-beta steps:
    step_weight: float = 0.0        # numerator and denominator
    cutoffs_used: int = 0
    final_rounds_done: int = 0
    refined: bool = False


@struct.dataclass
class TemperFlowState:
    """The flow, its reference, the run's key and the schedule."""

    params: PyTree
    ref_params: PyTree
    key: jax.Array
    schedule: Schedule = struct.field(pytree_node=False)


class Stage(NamedTuple):
    """What one stage trains."""

    index: int
    phase: str
    loss: str        # a name in STAGE_LOSSES
    beta: float
    steps: int
    peak_lr: float
    round: int = 0   # final stage: which round (1, 2, ...)


class StageInfo(NamedTuple):
    """The record of a trained stage (``None``: does not apply to this stage)."""

    stage: int
    phase: str
    loss: str
    beta: float
    steps: int
    peak_lr: float
    round: int
    seconds: float
    final_loss: float                       # mean loss over the last logged window
    metrics: Dict[str, float]               # the loss's own metrics, same window
    log_u: Optional[float] = None           # log U_beta the stage trained with
    kl: Optional[float] = None              # kl(beta) behind the next beta
    kl_grad: Optional[float] = None
    delta: Optional[float] = None           # the step in log beta it chose
    ess: Optional[float] = None             # ESS of the reference's weights at beta
    ess_collapsed: bool = False
    ref_updated: bool = False               # the next stage has a fresh reference

    def to_record(self) -> Dict[str, Any]:
        """A flat JSON-able dict without the fields that do not apply."""
        record = {k: v for k, v in self._asdict().items() if v is not None and k != "metrics"}
        record.update(self.metrics)
        return record


class TemperFlow:
    """The kernel: a flow, a target, the sampler's config and the optimizer's.

    Usage (``run.run_temperflow`` does this with checkpoints and logs)::

        kernel = TemperFlow(flow, target, TemperFlowConfig(), optim)
        state = kernel.init(key)
        while (stage := kernel.next_stage(state)) is not None:
            cond, estimate = kernel.prepare_stage(state, stage)
            train_state = kernel.stage_train_state(state, stage)
            step = kernel.train_step(stage.loss)
            for _ in range(stage.steps // config.steps_per_call):
                train_state, _ = step(train_state, cond)
            state, info = kernel.finish_stage(state, stage, train_state.params, estimate,
                                              log_u=float(cond["log_u"]))
        x = kernel.sample(state.params, key, 10_000)
    """

    def __init__(self, flow: Flow, target: Target, config: TemperFlowConfig,
                 optim: Mapping[str, Any], mesh: Optional[Mesh] = None):
        self.flow, self.target, self.config = flow, target, config
        self.mesh = mesh if mesh is not None else data_mesh(1)
        num_devices = self.mesh.devices.size
        if config.batch_size % num_devices:
            raise ValueError(f"batch_size={config.batch_size} must be divisible by the "
                             f"{num_devices} devices")
        self.per_device_batch = config.batch_size // num_devices
        self.optimizer = make_optimizer(optim, injectable=True)
        self.base_lr = float(optim["lr"])
        self.functions = FlowFunctions(self._sample_and_log_prob, self._log_prob,
                                       self._reference_sample_and_log_prob)
        self._sample_jit = jax.jit(self._sample_and_log_prob, static_argnums=2)
        self._reference_jit = jax.jit(self._reference_sample_and_log_prob, static_argnums=2)
        self._log_prob_jit = jax.jit(self._log_prob)
        self._target_log_prob = jax.jit(target.log_prob)
        self._tempered_log_prob = jax.jit(lambda x, beta: Tempered(target, beta).log_prob(x))
        self._steps: Dict[str, Any] = {}

    # The flow as functions of its parameters (un-jitted, for use inside jit).
    def _sample_and_log_prob(self, params: PyTree, key: jax.Array, n: int):
        return self.flow.apply(params, key, n, method=Flow.sample_and_log_prob)

    def _log_prob(self, params: PyTree, x: jax.Array) -> jax.Array:
        return self.flow.apply(params, x, method=Flow.log_prob)

    def _reference_sample_and_log_prob(self, params: PyTree, key: jax.Array, n: int):
        """Reference draws and log r: the flow itself, or with ``defensive_share > 0``
        the flow pushed from the defensive latent mixture."""
        c = self.config
        if not c.defensive_share:
            return self._sample_and_log_prob(params, key, n)
        shape = tuple(self.flow.event_shape)
        z = defensive_latent_draws(key, n, shape, c.defensive_scale, c.defensive_share)
        x, log_det = self.flow.apply(params, z, method=Flow.forward_and_log_det)
        log_b = defensive_latent_log_prob(z, c.defensive_scale, c.defensive_share, len(shape))
        return x, log_b - log_det

    # Compiled pieces, public.
    def sample(self, params: PyTree, key: jax.Array, n: int) -> jax.Array:
        return self._sample_jit(params, key, n)[0]

    def sample_and_log_prob(self, params: PyTree, key: jax.Array, n: int):
        return self._sample_jit(params, key, n)

    def reference_sample_and_log_prob(self, params: PyTree, key: jax.Array, n: int):
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
        """log U_beta = log ∫ f^beta by importance sampling from the reference."""
        y, log_r = self._reference_jit(ref_params, key, self.config.estimate_draws)
        return float(log_normalizer(self._tempered_log_prob(y, jnp.float32(beta)), log_r))

    def train_step(self, loss: str):
        """The compiled, data-parallel step of ``steps_per_call`` updates of stage loss ``loss``;
        its batch is the stage's conditioning (``prepare_stage``). Built once per loss."""
        if loss not in self._steps:
            self._steps[loss] = self._build_step(loss)
        return self._steps[loss]

    def _build_step(self, loss: str):
        c = self.config
        loss_fn = make_stage_loss(loss, self.functions, self.target, self.per_device_batch,
                                  upweight=c.upweight and loss == "l2_distance",
                                  kl_weight=0.0 if loss == "reverse_kl" else c.l2_kl_weight)
        # No donation: the reference parameters in the conditioning may alias the flow's own.
        return make_train_step(loss_fn, self.optimizer, self.mesh,
                               steps_per_call=c.steps_per_call, donate=False, shared_batch=True)

    # The kernel.
    def init(self, key: jax.Array) -> TemperFlowState:
        """Fresh flow parameters and a schedule that starts at ``beta0`` (``kl``: at 1)."""
        init_key, run_key = jax.random.split(key)
        params = self.flow.init(init_key, jnp.zeros((2, *self.flow.event_shape)))
        log_beta = 0.0 if self.config.method == "kl" else math.log(self.config.beta0)
        return TemperFlowState(params=params, ref_params=params, key=run_key,
                               schedule=Schedule(stage=0, phase=FIRST, log_beta=log_beta))

    def next_stage(self, state: TemperFlowState) -> Optional[Stage]:
        """The stage to train next, or ``None`` when the run is complete."""
        c, s = self.config, state.schedule
        i = s.stage
        if s.phase == FIRST:
            beta = math.exp(s.log_beta)
            steps = c.steps_init + (c.steps_final if c.method == "kl" else 0)
            return Stage(i, FIRST, "reverse_kl", beta, steps,
                         rules.stage_peak_lr(self.base_lr, beta, c.lr_decay, 0))
        if s.phase == MIDDLE:
            beta = math.exp(s.log_beta)
            steps = rules.middle_steps(c.steps_mid, c.steps_growth, i, c.steps_per_call)
            return Stage(i, MIDDLE, c.stage_loss, beta, steps,
                         rules.stage_peak_lr(self.base_lr, beta, c.lr_decay, i))
        if s.phase == FINAL:
            return Stage(i, FINAL, c.stage_loss, 1.0, c.steps_final,
                         rules.stage_peak_lr(self.base_lr, 1.0, c.lr_decay, i),
                         round=s.final_rounds_done + 1)
        if s.phase == REFINE:
            return Stage(i, REFINE, "reverse_kl", 1.0, c.final_kl_steps,
                         rules.stage_peak_lr(self.base_lr, 1.0, c.lr_decay, i))
        return None

    def stage_keys(self, state: TemperFlowState, stage: Stage) -> Tuple[jax.Array, jax.Array]:
        """``(train_key, estimate_key)`` of a stage, from ``fold_in(state.key, index)``."""
        return tuple(jax.random.split(jax.random.fold_in(state.key, stage.index)))

    def prepare_stage(self, state: TemperFlowState, stage: Stage
                      ) -> Tuple[Dict[str, Any], Optional[TemperingKL]]:
        """The stage's conditioning ``{beta, log_u, ref_params}`` and, for a middle stage,
        the reference's estimates at its beta (one set of reference draws gives log U_beta
        for this stage and, the reference being frozen through it, the kl behind the next
        beta)."""
        _, est_key = self.stage_keys(state, stage)
        estimate, log_u = None, 0.0
        if stage.phase == MIDDLE:
            estimate = self.estimate(state.ref_params, stage.beta, est_key)
            log_u = float(estimate.log_u_beta)
        elif stage.phase == FINAL:
            log_u = self.estimate_log_u(state.ref_params, 1.0, est_key)
        cond = {"beta": jnp.float32(stage.beta), "log_u": jnp.float32(log_u),
                "ref_params": state.ref_params}
        return cond, estimate

    def stage_train_state(self, state: TemperFlowState, stage: Stage) -> TrainState:
        """A fresh optimizer at the stage's peak rate and length, from the current flow."""
        train_key, _ = self.stage_keys(state, stage)
        train_state = TrainState.create(state.params, self.optimizer, train_key)
        opt_state = set_hyperparams(train_state.opt_state, lr=stage.peak_lr,
                                    total_steps=stage.steps)
        return train_state.replace(opt_state=opt_state)

    def finish_stage(self, state: TemperFlowState, stage: Stage, params: PyTree,
                     estimate: Optional[TemperingKL] = None, *, log_u: Optional[float] = None,
                     last_log: Optional[Mapping[str, float]] = None
                     ) -> Tuple[TemperFlowState, StageInfo]:
        """The state after ``stage`` trained the flow to ``params``, and the stage's record.

        ``estimate``: ``prepare_stage``'s; ``log_u``: the log U_beta the stage trained
        with (recorded); ``last_log``: the engine's last logged training record. The
        record's ``seconds`` is 0: the driver, which times the whole stage, sets it.
        """
        c, s = self.config, state.schedule
        last_log = dict(last_log or {})
        metrics = {k: float(v) for k, v in last_log.items()
                   if k not in ("step", "split", "loss", "steps_per_sec", "train_seconds")}
        info = dict(stage=stage.index, phase=stage.phase, loss=stage.loss, beta=stage.beta,
                    steps=stage.steps, peak_lr=stage.peak_lr, round=stage.round,
                    seconds=0.0, final_loss=float(last_log.get("loss", math.nan)),
                    metrics=metrics, log_u=log_u if stage.loss != "reverse_kl" else None)
        _, est_key = self.stage_keys(state, stage)
        ref_params = params if stage.phase == FIRST else state.ref_params
        new = s._replace(stage=s.stage + 1)
        refresh = False

        if c.method == "kl" or stage.phase == REFINE:
            new = new._replace(phase=DONE, refined=stage.phase == REFINE)
        elif stage.phase == FINAL:
            new = new._replace(final_rounds_done=stage.round)
            if stage.round < c.final_rounds:
                refresh = True  # another round, from a fresh reference
            else:
                new = new._replace(phase=REFINE if c.final_kl_steps else DONE)
        elif c.beta_schedule == "fixed_grid":
            grid = rules.fixed_grid(c.beta0, c.num_fixed_betas)
            k = stage.index + 1  # index of the next grid point
            refresh = True
            if k >= len(grid) - 1:
                new = new._replace(phase=FINAL)
            else:
                new = new._replace(phase=MIDDLE, log_beta=float(np.log(grid[k])))
        else:  # adaptive
            if estimate is None:
                estimate = self.estimate(ref_params, stage.beta, est_key)
            kl, grad, ess = float(estimate.kl), float(estimate.grad), float(estimate.ess)
            delta = rules.next_log_beta_step(kl, grad, stage.beta, s.step_sum, s.step_weight,
                                             c.kl_decay)
            step_sum, step_weight = rules.update_step_average(s.step_sum, s.step_weight, delta)
            first_kl = kl if math.isnan(s.first_kl) else s.first_kl
            log_beta = s.log_beta + delta
            info.update(kl=kl, kl_grad=grad, delta=delta, ess=ess, ess_collapsed=ess < MIN_ESS)
            if ess < MIN_ESS:
                warnings.warn(
                    f"stage {stage.index} (beta={stage.beta:.4g}): the importance weights of "
                    f"{c.estimate_draws} reference draws have an effective sample size of "
                    f"{ess:.1f}, so the kl estimate behind the next beta, and the reference "
                    f"losses, rest on a few points. The flow has left its reference: lower "
                    f"the learning rate, raise the batch size or the steps per stage, or "
                    f"refresh the reference every stage (ref_refresh='every_stage').",
                    ImportanceCollapseWarning, stacklevel=2)
            new = new._replace(log_beta=log_beta, first_kl=first_kl, step_sum=step_sum,
                               step_weight=step_weight)
            # Betas so far (this stage's included) plus the next one, then 1.
            if log_beta >= 0.0 or stage.index + 2 >= c.max_betas:
                new = new._replace(phase=FINAL)
            else:
                refresh, used = rules.refresh_reference(kl, first_kl, s.cutoffs_used,
                                                        c.ref_cutoffs)
                new = new._replace(phase=MIDDLE, cutoffs_used=used)
        info["ref_updated"] = refresh
        if refresh:
            ref_params = params
        state = state.replace(params=params, ref_params=ref_params, schedule=new)
        return state, StageInfo(**info)

    def extend(self, state: TemperFlowState) -> TemperFlowState:
        """A finished run's state, opened again for what the config now adds.

        More final rounds (``final_rounds`` above the rounds trained) or the
        reverse-KL refinement (``final_kl_steps > 0``) continue a finished run
        exactly as a run started with them would have gone on. Raises
        ``ValueError`` when the config asks to undo what was trained.
        """
        c, s = self.config, state.schedule
        if c.method == "kl" or s.phase in (FIRST, MIDDLE):
            return state
        if s.final_rounds_done > c.final_rounds:
            raise ValueError(f"this run has already trained {s.final_rounds_done} rounds of the "
                             f"final stage at beta = 1; final_rounds={c.final_rounds} cannot "
                             f"undo them: resume with final_rounds >= {s.final_rounds_done}, "
                             f"or start a new run")
        if s.refined and s.final_rounds_done < c.final_rounds:
            raise ValueError(f"this run ended with the reverse-KL refinement after "
                             f"{s.final_rounds_done} final round(s); more rounds "
                             f"(final_rounds={c.final_rounds}) would have come before it: start "
                             f"a new run, or resume with final_rounds={s.final_rounds_done}")
        if s.phase in (REFINE, DONE) and 0 < s.final_rounds_done < c.final_rounds:
            # The next round's reference is the flow as it is.
            return state.replace(ref_params=state.params, schedule=s._replace(phase=FINAL))
        if s.phase == REFINE and not c.final_kl_steps:
            return state.replace(schedule=s._replace(phase=DONE))
        if s.phase == DONE and c.final_kl_steps and not s.refined:
            return state.replace(schedule=s._replace(phase=REFINE))
        return state

