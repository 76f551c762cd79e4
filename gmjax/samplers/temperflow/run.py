"""Running TemperFlow stage by stage on the engine: ``fit`` per stage, a checkpoint after each.

Each stage is the engine's ``fit`` of the kernel's compiled step (progress
bar, the NaN guard, logs in ``workdir/stages/<i>/metrics.jsonl`` and, every
``checkpoint_every`` steps, a checkpoint inside the stage). After the stage
the kernel state (flow, reference, key, schedule) is checkpointed in
``workdir/checkpoints`` and the stage's record appended to
``workdir/metrics.jsonl`` (``"split": "stage"``). Calling ``run_temperflow``
again on the same workdir resumes: at the next stage, or inside a stage from
its last checkpoint, and ends bit-for-bit where an uninterrupted run would.

Between stages (the reference's estimates, ``finish_stage``, the ``on_stage``
hook, the checkpoint) SIGINT and SIGTERM are held as ``fit`` holds them
inside a stage: the stage's record and checkpoint are written first, then
the run stops with ``KeyboardInterrupt`` (SIGINT) or ``SystemExit(143)``
(SIGTERM); a second signal stops at once.

With ``workdir=None`` the run is in memory: nothing is written, nothing
resumes, signals keep their usual handlers, and the stage records come back
in ``TemperFlowRun.stages`` only.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import sys
import time
from typing import Any, Callable, Dict, List, Mapping, Optional

import jax
import numpy as np

from gmjax.metrics.weights import importance_weight_trace
from gmjax.samplers.temperflow.kernel import Schedule, StageInfo, TemperFlow, TemperFlowState
from gmjax.training.checkpoint import Checkpointer
from gmjax.training.logging import MetricsWriter, read_jsonl
from gmjax.training.loop import DeferredSignals, NonFiniteError, fit, stop_exception
from gmjax.training.state import all_finite

StageHook = Callable[[TemperFlowState, StageInfo], Mapping[str, Any]]


@dataclasses.dataclass(frozen=True)
class TemperFlowRun:
    state: TemperFlowState
    stages: List[Dict[str, Any]]   # every stage's record, as in metrics.jsonl
    train_seconds: float           # all stages, compilation and estimates included


def run_temperflow(kernel: TemperFlow, state: TemperFlowState, workdir: Optional[str] = None,
                   *, log_every: int = 0, checkpoint_every: int = 0, keep_checkpoints: int = 3,
                   progress: Optional[bool] = None,
                   on_stage: Optional[StageHook] = None) -> TemperFlowRun:
    """Trains ``state`` (from ``kernel.init``) to the end of its schedule.

    Args:
      workdir: where the checkpoints and logs go (see the module doc); a
        workdir holding a run resumes it. ``None``: in memory, nothing
        written, the records only in the returned ``stages``.
      log_every, checkpoint_every: in steps, within a stage (multiples of the
        kernel's ``steps_per_call``; 0: once per compiled call / only between
        stages).
      on_stage: ``on_stage(state, info) -> extra fields`` for the stage's record
        (measurements outside the timed training, e.g. mode weights).
    Raises:
      NonFiniteError: naming the stage and the last good checkpoint.
      KeyboardInterrupt, SystemExit: on SIGINT / SIGTERM, once what was
        trained is saved (see the module doc).
    """
    c = kernel.config
    calls = c.steps_per_call
    in_memory = workdir is None
    checkpointer = writer = metrics_path = None
    records: List[Dict[str, Any]] = []  # the stage records of this call
    train_seconds = 0.0
    if not in_memory:
        checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"), keep=keep_checkpoints)
        metrics_path = os.path.join(workdir, "metrics.jsonl")
        writer = MetricsWriter(metrics_path)
        if checkpointer.latest_step() is not None:
            state, meta = checkpointer.restore(state)
            state = state.replace(schedule=Schedule(**meta["schedule"]))
            train_seconds = float(meta["train_seconds"])
            writer.truncate_after(state.schedule.stage)

    def last_good() -> Dict[str, Any]:
        """Where the last good state is, for ``NonFiniteError``."""
        if in_memory:
            return dict(last_checkpoint=None, directory=None)
        return dict(last_checkpoint=checkpointer.latest_step(), directory=checkpointer.directory)

    signals = DeferredSignals(active=not in_memory)

    def stop_if_asked(done: int) -> None:
        """Stops as ``fit`` does when a signal came between stages (``done`` stages trained,
        all of them saved)."""
        if signals.received is None:
            return
        name = signal.Signals(signals.received).name
        saved = checkpointer.latest_step()
        where = (f"checkpoint {saved} is in {checkpointer.directory}; run again to resume"
                 if saved is not None else "no checkpoint had been written yet")
        message = f"temperflow: {name} between stages, after {done} stage(s); {where}"
        print(message, file=sys.stderr, flush=True)
        raise stop_exception(signals.received, message)

    try:
        with signals:
            extended = kernel.extend(state)
            if extended.ref_params is not state.ref_params and not in_memory:
                # Reopened for more final rounds: the last record says so.
                _mark_last_stage_refreshed(writer, metrics_path, state.schedule.stage)
            state = extended
            while (stage := kernel.next_stage(state)) is not None:
                stop_if_asked(state.schedule.stage)
                t0 = time.perf_counter()
                cond, estimate = kernel.prepare_stage(state, stage)
                stage_dir = None if in_memory else os.path.join(workdir, "stages",
                                                                f"{stage.index:03d}")
                desc = f"stage {stage.index} {stage.loss} beta={stage.beta:.3g}" + (
                    f" round {stage.round}/{c.final_rounds}"
                    if c.final_rounds > 1 and stage.round else "")
                prepared = time.perf_counter() - t0
                stop_if_asked(state.schedule.stage)  # before the stage: nothing new to save
                try:
                    result = fit(kernel.stage_train_state(state, stage),
                                 kernel.train_step(stage.loss), lambda step: cond,
                                 num_steps=stage.steps, workdir=stage_dir, mesh=kernel.mesh,
                                 log_every=log_every or calls,
                                 checkpoint_every=checkpoint_every or stage.steps,
                                 steps_per_call=calls, shared_batch=True,
                                 save_final=False, progress=progress, desc=desc)
                except NonFiniteError as e:
                    raise NonFiniteError(e.step, f"{e.name} in stage {stage.index} ({stage.loss} "
                                         f"at beta={stage.beta:.4g})", e.value,
                                         **last_good()) from None
                t1 = time.perf_counter()
                # A stage whose training had ended before an interruption logs nothing on
                # resume.
                last_log = result.last_log or (_last_train_record(stage_dir) if stage_dir
                                               else {})
                state, info = kernel.finish_stage(state, stage, result.state.params, estimate,
                                                  log_u=float(cond["log_u"]), last_log=last_log)
                if not all_finite(state.params):
                    raise NonFiniteError(stage.steps, f"parameters after stage {stage.index}",
                                         float("nan"), **last_good())
                seconds = prepared + result.train_seconds + time.perf_counter() - t1
                info = info._replace(seconds=seconds)
                train_seconds += seconds
                record = info.to_record()
                if on_stage is not None:
                    record.update(on_stage(state, info))
                record = dict(record, step=state.schedule.stage, split="stage",
                              train_seconds=train_seconds)
                records.append(record)
                if not in_memory:
                    writer.write(record)
                    checkpointer.save(state.schedule.stage, state,
                                      {"schedule": state.schedule._asdict(),
                                       "train_seconds": train_seconds})
                    shutil.rmtree(os.path.join(stage_dir, "checkpoints"), ignore_errors=True)
            stop_if_asked(state.schedule.stage)  # during the last stage's saving
    finally:
        if checkpointer is not None:
            checkpointer.close()
    stages = records if in_memory else [r for r in read_jsonl(metrics_path)
                                        if r.get("split") == "stage"]
    return TemperFlowRun(state=state, stages=stages, train_seconds=train_seconds)


def _last_train_record(stage_dir: str) -> Dict[str, Any]:
    path = os.path.join(stage_dir, "metrics.jsonl")
    records = [r for r in read_jsonl(path) if r.get("split") == "train"] \
        if os.path.exists(path) else []
    return records[-1] if records else {}


def _mark_last_stage_refreshed(writer: MetricsWriter, path: str, stage: int) -> None:
    """The record of stage ``stage`` (1-based step) now says its successor has a fresh
    reference, as it would had the run been started with the rounds that follow."""
    records = [r for r in read_jsonl(path) if r.get("split") == "stage" and r["step"] == stage]
    if records:
        writer.truncate_after(stage - 1)
        writer.write(dict(records[-1], ref_updated=True))


def mode_weight_hook(kernel: TemperFlow, draws: int, key: jax.Array) -> StageHook:
    """An ``on_stage`` hook: the flow's mode weights beside p_beta's after each stage.

    From ``draws`` flow draws (key ``fold_in(key, stage)``): the means of the
    target's ``weight_indicators`` and their importance-sampling estimates
    under the stage's p_beta (``gmjax.metrics.importance_weight_trace``);
    nothing for targets without indicators or with ``draws = 0``.
    """
    def hook(state: TemperFlowState, info: StageInfo) -> Dict[str, Any]:
        if not draws:
            return {}
        x, log_q = kernel.sample_and_log_prob(state.params, jax.random.fold_in(key, info.stage),
                                              draws)
        indicators = kernel.target.weight_indicators(x)
        if indicators is None:
            return {}
        log_f = info.beta * np.asarray(kernel.target_log_prob(x), np.float64)
        return importance_weight_trace(np.asarray(indicators), log_f, np.asarray(log_q))
    return hook
