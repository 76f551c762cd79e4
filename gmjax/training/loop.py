"""The fit loop every experiment shares: progress, logs, evaluation, checkpoints.

``fit`` runs a built train step from the state's current step to
``num_steps`` and guarantees the experiment contract's "nothing is lost":

* **Resume.** If ``workdir/checkpoints`` holds a checkpoint, training
  continues from it. Batches are a pure function of the step
  (``batch_fn(step)``) and keys are ``fold_in(key, step)``, so a run that was
  killed and resumed ends with exactly the parameters of one that never
  stopped (bitwise on CPU).
* **Non-finite guard.** Every step's metrics (``loss``, ``grad_norm``, ...)
  are checked before each log and before each checkpoint; the first
  non-finite one stops the run with ``NonFiniteError`` naming the step and the
  metric. Checkpoints are only written from checked states, so the last one on
  disk is always good.
* **Logs.** Averages of the training metrics over each ``log_every`` window go
  to ``metrics.jsonl`` (``"split": "train"``) with ``steps_per_sec`` and
  ``train_seconds``; ``eval_fn`` results go there with ``"split": "eval"``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import jax
import numpy as np
from jax.sharding import Mesh
from tqdm.auto import tqdm

from gmjax.training.checkpoint import Checkpointer
from gmjax.training.logging import MetricsWriter
from gmjax.training.parallel import replicate, shard_batch
from gmjax.training.state import all_finite

PyTree = Any


class NonFiniteError(FloatingPointError):
    """Training produced a NaN or infinity; the run stopped without saving it."""

    def __init__(self, step: int, name: str, value: float, last_checkpoint: Optional[int],
                 directory: str):
        self.step, self.name, self.value = step, name, value
        self.last_checkpoint = last_checkpoint
        where = (f"the last good checkpoint is step {last_checkpoint} in {directory}"
                 if last_checkpoint is not None else "no checkpoint had been written yet")
        super().__init__(
            f"non-finite {name} = {value} at step {step}; training stopped and {where}. "
            f"Try a lower optim.lr, optim.grad_clip > 0, or check the data for NaNs.")


@dataclasses.dataclass(frozen=True)
class FitResult:
    state: PyTree
    train_seconds: float
    start_step: int  # the step training (re)started from: > 0 after a resume
    steps: int
    last_log: Dict[str, float] = dataclasses.field(default_factory=dict)  # the last train record


def _first_non_finite(metrics: Mapping[str, np.ndarray]) -> Optional[Tuple[int, str, float]]:
    """(offset, name, value) of the earliest non-finite entry of stacked metrics."""
    worst = None
    for name, values in metrics.items():
        values = np.atleast_1d(values)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size and (worst is None or bad[0] < worst[0]):
            worst = (int(bad[0]), name, float(values[bad[0]]))
    return worst


def fit(state: PyTree, train_step: Callable[[PyTree, PyTree], Tuple[PyTree, Dict]],
        batch_fn: Callable[[int], PyTree], *, num_steps: int, workdir: str, mesh: Mesh,
        log_every: int = 100, checkpoint_every: int = 1000, keep_checkpoints: int = 3,
        eval_every: int = 0, eval_fn: Optional[Callable[[PyTree, int], Mapping[str, Any]]] = None,
        steps_per_call: int = 1, batch_leading_axes: int = 0, shared_batch: bool = False,
        save_final: bool = True, progress: Optional[bool] = None,
        desc: str = "train") -> FitResult:
    """Trains ``state`` with ``train_step`` up to ``num_steps`` updates.

    Args:
      state: the initial state (fresh run) -- also the template a checkpoint is
        restored into. Its ``step`` field counts completed updates.
      train_step: from ``make_train_step`` / ``make_minmax_step``.
      batch_fn: ``batch_fn(step) -> host-local numpy batch`` for update ``step``
        (0-based); must be a pure function of ``step`` for exact resumes.
      num_steps: total number of updates (a resumed run counts earlier ones).
      workdir: where ``metrics.jsonl`` and ``checkpoints/`` live.
      mesh: the data mesh the step was built for.
      log_every, checkpoint_every, eval_every: in updates (0 disables eval).
      eval_fn: ``eval_fn(state, step) -> metrics`` (host floats).
      steps_per_call: the step's ``steps_per_call``; every interval above must be
        a multiple of it.
      batch_leading_axes: stacking axes ``batch_fn`` itself puts before the
        batch axis (1 for a min-max step's critic axis).
      shared_batch: the step was built with ``shared_batch=True``: ``batch_fn(step)``
        is called once per compiled call and replicated, not stacked or split.
      save_final: checkpoint after the last update even when it is not a
        multiple of ``checkpoint_every`` (a caller that saves its own larger
        state right after, as TemperFlow does after each stage, turns it off).
      progress: show a tqdm bar (default: only on a terminal).
    """
    for name, value in (("num_steps", num_steps), ("log_every", log_every),
                        ("checkpoint_every", checkpoint_every), ("eval_every", eval_every)):
        if value < 0 or value % steps_per_call:
            raise ValueError(f"{name}={value} must be a non-negative multiple of "
                             f"steps_per_call={steps_per_call}")
    if log_every == 0 or checkpoint_every == 0:
        raise ValueError("log_every and checkpoint_every must be positive")

    checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"), keep=keep_checkpoints)
    writer = MetricsWriter(os.path.join(workdir, "metrics.jsonl"))
    state = replicate(state, mesh)
    train_seconds = 0.0
    if checkpointer.latest_step() is not None:
        state, meta = checkpointer.restore(state)
        train_seconds = float(meta.get("train_seconds", 0.0))
        writer.truncate_after(int(meta["step"]))
    start = int(jax.device_get(state.step))
    last_saved = checkpointer.latest_step()

    def get_batch(step: int) -> PyTree:
        if shared_batch:
            return replicate(batch_fn(step), mesh)
        if steps_per_call == 1:
            return shard_batch(batch_fn(step), mesh, batch_leading_axes)
        stacked = jax.tree.map(lambda *xs: np.stack(xs),
                               *[batch_fn(step + i) for i in range(steps_per_call)])
        return shard_batch(stacked, mesh, batch_leading_axes + 1)

    pending: List[Tuple[int, Dict]] = []  # (first step, device metrics) not yet checked
    last_log: Dict[str, float] = {}

    def check_and_log(step: int, window_seconds: float) -> None:
        """Fetches pending metrics, stops on a non-finite one, logs their mean."""
        fetched = jax.device_get(pending)
        pending.clear()
        for first, metrics in fetched:
            bad = _first_non_finite(metrics)
            if bad is not None:
                offset, name, value = bad
                writer.write({"step": first + offset + 1, "split": "train", name: value})
                raise NonFiniteError(first + offset + 1, name, value, last_saved,
                                     checkpointer.directory)
        if not fetched:
            return
        names = fetched[0][1].keys()
        record = {k: float(np.mean([np.mean(m[k]) for _, m in fetched])) for k in names}
        n_steps = sum(np.size(m["loss"]) for _, m in fetched)
        record.update(step=step, split="train", steps_per_sec=n_steps / max(window_seconds, 1e-9),
                      train_seconds=train_seconds)
        writer.write(record)
        last_log.clear()
        last_log.update(record)
        if bar is not None:
            bar.set_postfix(loss=f"{record['loss']:.4g}", refresh=False)

    def save(step: int) -> None:
        nonlocal last_saved
        if not all_finite(state):
            raise NonFiniteError(step, "parameters", float("nan"), last_saved,
                                 checkpointer.directory)
        checkpointer.save(step, state, {"train_seconds": train_seconds})
        last_saved = step

    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=num_steps, initial=start, desc=desc, disable=not show,
               dynamic_ncols=True, unit="step") if show else None
    step = start
    window_start = time.perf_counter()
    try:
        while step < num_steps:
            t0 = time.perf_counter()
            state, metrics = train_step(state, get_batch(step))
            pending.append((step, metrics))
            step += steps_per_call
            if bar is not None:
                bar.update(steps_per_call)
            logged = step % log_every == 0 or step == num_steps
            checkpointing = step % checkpoint_every == 0 or (save_final and step == num_steps)
            if logged or checkpointing:
                jax.block_until_ready(state)
            train_seconds += time.perf_counter() - t0
            if logged or checkpointing:
                check_and_log(step, time.perf_counter() - window_start)
                window_start = time.perf_counter()
            if checkpointing:
                save(step)
            if eval_fn is not None and eval_every and (step % eval_every == 0 or step == num_steps):
                writer.write(dict(eval_fn(state, step), step=step, split="eval"))
    except KeyboardInterrupt:
        # Keep what was done: checkpoint the current state if it is finite.
        if pending:
            check_and_log(step, time.perf_counter() - window_start)
        if step != last_saved:
            save(step)
        raise
    finally:
        if bar is not None:
            bar.close()
        checkpointer.close()
    return FitResult(state=state, train_seconds=train_seconds, start_step=start, steps=step,
                     last_log=dict(last_log))
