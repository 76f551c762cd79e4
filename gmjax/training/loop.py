"""The fit loop every experiment shares: progress, logs, evaluation, checkpoints.

``fit`` runs a built train step from the state's current step to
``num_steps`` and guarantees the experiment contract's "nothing is lost":

* **Resume.** If ``workdir/checkpoints`` holds a checkpoint, training
  continues from it. Batches are a pure function of the step
  (``batch_fn(step)``) and keys are ``fold_in(key, step)``, so a run that was
  killed and resumed ends with exactly the parameters of one that never
  stopped (bitwise on CPU). A checkpoint also holds the metrics of the
  unfinished logging window, so the resumed log reads like the
  uninterrupted one (timings aside).
* **Interrupts.** While ``fit`` runs (in the main thread) it takes over
  SIGINT (Ctrl-C) and SIGTERM (how clusters preempt jobs): the signal is
  acted on when the compiled call in flight has returned, never inside it.
  ``fit`` then checks the metrics not yet checked, checkpoints that state,
  prints one line saying where, and raises ``KeyboardInterrupt`` (SIGINT) or
  ``SystemExit(143)`` (SIGTERM, the exit status of a terminated process). A
  second signal before that point stops at once; what was in flight is lost
  and only a state no call has consumed is saved. The previous handlers are
  restored when ``fit`` returns.
* **Non-finite guard.** Every step's metrics (``loss``, ...) are checked
  before each log and before each checkpoint; the first non-finite one stops
  the run with ``NonFiniteError`` naming the step and the metric. Checkpoints
  are only written from checked states, so the last one on disk is always
  good.
* **Logs.** Averages of the training metrics over each ``log_every`` window go
  to ``metrics.jsonl`` (``"split": "train"``) with ``steps_per_sec`` and
  ``train_seconds``; ``grad_norm`` is the gradient norm of the window's last
  update (a ``TrainStep`` computes it only on the calls that end at a logging
  step). ``eval_fn`` results go there with ``"split": "eval"``. The records
  of the call also come back in ``FitResult.records``.
* **In memory.** With ``workdir=None`` nothing touches the disk: no
  checkpoints, no ``metrics.jsonl``, no resume, and SIGINT / SIGTERM keep
  their usual handlers (Ctrl-C raises ``KeyboardInterrupt`` at once; the
  state is not saved anywhere). The non-finite guard, the logging window,
  ``eval_fn``, the progress bar and ``steps_per_call`` work as with a
  workdir, and the logs are in the returned ``FitResult``.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import threading
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
from gmjax.training.step import TrainStep

PyTree = Any
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class NonFiniteError(FloatingPointError):
    """Training produced a NaN or infinity; the run stopped without saving it."""

    def __init__(self, step: int, name: str, value: float, last_checkpoint: Optional[int],
                 directory: Optional[str]):
        self.step, self.name, self.value = step, name, value
        self.last_checkpoint = last_checkpoint
        if directory is None:
            where = "nothing was saved (no workdir: training in memory)"
        elif last_checkpoint is not None:
            where = f"the last good checkpoint is step {last_checkpoint} in {directory}"
        else:
            where = "no checkpoint had been written yet"
        super().__init__(
            f"non-finite {name} = {value} at step {step}; training stopped and {where}. "
            f"Try a lower optim.lr, optim.grad_clip > 0, or check the data for NaNs.")


@dataclasses.dataclass(frozen=True)
class FitResult:
    """What ``fit`` hands back.

    Attributes:
      state: the trained state (``state.params``: the parameters).
      train_seconds: time in training calls (a resumed run counts earlier ones).
      start_step: the step training (re)started from: > 0 after a resume.
      steps: the step training ended at.
      last_log: the last train record (loss, metrics, ``step``, ...).
      records: the train and eval records this call logged, in order, as
        written to ``metrics.jsonl`` (their only copy with ``workdir=None``).
    """

    state: PyTree
    train_seconds: float
    start_step: int
    steps: int
    last_log: Dict[str, float] = dataclasses.field(default_factory=dict)
    records: List[Dict[str, Any]] = dataclasses.field(default_factory=list)


def stop_exception(signum: int, message: str) -> BaseException:
    """What stopping on ``signum`` raises: ``KeyboardInterrupt`` for SIGINT,
    ``SystemExit(128 + signum)`` otherwise (143 for SIGTERM)."""
    if signum == signal.SIGINT:
        return KeyboardInterrupt(message)
    return SystemExit(128 + signum)


class DeferredSignals:
    """Holds SIGINT and SIGTERM until the code asks (``received``) while installed.

    A context manager. In the main thread it replaces the handlers of the
    signals that are not ignored; the first signal only sets ``received``, a
    second one raises ``stop_exception`` at once. Elsewhere, or with
    ``active=False``, it installs nothing (Python delivers signals to the main
    thread only) and ``received`` stays ``None``. The previous handlers come
    back on exit.
    """

    def __init__(self, active: bool = True) -> None:
        self.active = active
        self.received: Optional[int] = None
        self._previous: Dict[int, Any] = {}

    def __enter__(self) -> "DeferredSignals":
        if self.active and threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                previous = signal.getsignal(signum)
                if previous is signal.SIG_IGN or previous is None:  # None: not set from Python
                    continue
                self._previous[signum] = previous
                signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is None:
            self.received = signum
            return
        name = signal.Signals(signum).name
        print(f"second {name}: stopping without waiting for the step in flight",
              file=sys.stderr, flush=True)
        raise stop_exception(signum, f"second {name}")


def _first_non_finite(metrics: Mapping[str, np.ndarray]) -> Optional[Tuple[int, str, float]]:
    """(offset, name, value) of the earliest non-finite entry of stacked metrics."""
    worst = None
    for name, values in metrics.items():
        values = np.atleast_1d(values)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size and (worst is None or bad[0] < worst[0]):
            worst = (int(bad[0]), name, float(values[bad[0]]))
    return worst


def _is_usable(state: PyTree) -> bool:
    """No buffer of ``state`` has been donated to (or deleted by) a compiled call."""
    return not any(getattr(x, "is_deleted", lambda: False)() for x in jax.tree.leaves(state))


def fit(state: PyTree, train_step: Callable[..., Tuple[PyTree, Dict]],
        batch_fn: Callable[[int], PyTree], *, num_steps: int, workdir: Optional[str] = None,
        mesh: Optional[Mesh] = None, log_every: int = 100, checkpoint_every: int = 1000,
        keep_checkpoints: int = 3, eval_every: int = 0,
        eval_fn: Optional[Callable[[PyTree, int], Mapping[str, Any]]] = None,
        steps_per_call: Optional[int] = None, batch_leading_axes: int = 0,
        shared_batch: Optional[bool] = None, save_final: bool = True,
        progress: Optional[bool] = None, desc: str = "train") -> FitResult:
    """Trains ``state`` with ``train_step`` up to ``num_steps`` updates.

    Args:
      state: the initial state (fresh run) -- also the template a checkpoint is
        restored into. Its ``step`` field counts completed updates.
      train_step: a ``TrainStep`` from ``make_train_step``, or any
        ``step(state, batch) -> (state, metrics)`` (``make_minmax_step``).
      batch_fn: ``batch_fn(step) -> host-local numpy batch`` for update ``step``
        (0-based); must be a pure function of ``step`` for exact resumes.
      num_steps: total number of updates (a resumed run counts earlier ones).
      workdir: where ``metrics.jsonl`` and ``checkpoints/`` live; ``None``
        trains in memory: no checkpoints, log file or resume, signals left
        alone (see the module doc); the logs are in the returned ``records``.
      mesh: the data mesh the step was built for (default: the mesh of a
        ``TrainStep``).
      log_every, checkpoint_every, eval_every: in updates (0 disables eval;
        ``checkpoint_every`` and ``keep_checkpoints`` need a workdir).
      eval_fn: ``eval_fn(state, step) -> metrics`` (host floats).
      steps_per_call: updates per call of the step (default: the
        ``TrainStep``'s, else 1); every interval above must be a multiple of it.
      batch_leading_axes: stacking axes ``batch_fn`` itself puts before the
        batch axis (1 for a min-max step's critic axis).
      shared_batch: the step takes replicated conditioning (default: the
        ``TrainStep``'s, else False): ``batch_fn(step)`` is called once per
        compiled call and replicated, not stacked or split.
      save_final: checkpoint after the last update even when it is not a
        multiple of ``checkpoint_every`` (a caller that saves its own larger
        state right after, as TemperFlow does after each stage, turns it off).
      progress: show a tqdm bar (default: only on a terminal).

    Raises:
      NonFiniteError: a non-finite metric or parameter (nothing of it saved).
      KeyboardInterrupt, SystemExit: on SIGINT / SIGTERM, after the checkpoint
        (see the module doc).
    """
    is_train_step = isinstance(train_step, TrainStep)
    if is_train_step:
        for name, given, built in (("steps_per_call", steps_per_call, train_step.steps_per_call),
                                   ("shared_batch", shared_batch, train_step.shared_batch)):
            if given is not None and given != built:
                raise ValueError(f"fit({name}={given}) but the train step was built with "
                                 f"{name}={built}")
        steps_per_call, shared_batch = train_step.steps_per_call, train_step.shared_batch
    steps_per_call = 1 if steps_per_call is None else steps_per_call
    shared_batch = bool(shared_batch)
    if mesh is None:
        mesh = getattr(train_step, "mesh", None)
        if mesh is None:
            raise ValueError("fit(mesh=None) needs a TrainStep (which knows its mesh); pass "
                             "the mesh the step was built for")
    in_memory = workdir is None
    intervals = [("num_steps", num_steps), ("log_every", log_every), ("eval_every", eval_every)]
    if not in_memory:
        intervals.insert(2, ("checkpoint_every", checkpoint_every))
    for name, value in intervals:
        if value < 0 or value % steps_per_call:
            raise ValueError(f"{name}={value} must be a non-negative multiple of "
                             f"steps_per_call={steps_per_call}")
    if log_every == 0 or (checkpoint_every == 0 and not in_memory):
        raise ValueError("log_every and checkpoint_every must be positive")

    checkpointer = writer = None
    if not in_memory:
        checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"), keep=keep_checkpoints)
        writer = MetricsWriter(os.path.join(workdir, "metrics.jsonl"))
    directory = None if in_memory else checkpointer.directory
    # Metrics of the current logging window, fetched and checked: name -> arrays.
    window: Dict[str, List[np.ndarray]] = {}
    state = replicate(state, mesh)
    train_seconds = 0.0
    last_saved = None if in_memory else checkpointer.latest_step()
    if last_saved is not None:
        state, meta = checkpointer.restore(state)
        train_seconds = float(meta.get("train_seconds", 0.0))
        for name, saved in meta.get("window", {}).items():
            window[name] = [np.asarray(saved["values"], dtype=saved["dtype"])]
        writer.truncate_after(int(meta["step"]))
    start = int(jax.device_get(state.step))
    records: List[Dict[str, Any]] = []  # what this call logs

    def emit(record: Dict[str, Any]) -> None:
        records.append(record)
        if writer is not None:
            writer.write(record)

    def get_batch(step: int) -> PyTree:
        if shared_batch:
            return replicate(batch_fn(step), mesh)
        if steps_per_call == 1:
            return shard_batch(batch_fn(step), mesh, batch_leading_axes)
        stacked = jax.tree.map(lambda *xs: np.stack(xs),
                               *[batch_fn(step + i) for i in range(steps_per_call)])
        return shard_batch(stacked, mesh, batch_leading_axes + 1)

    pending: List[Tuple[int, Dict, bool]] = []  # (first step, device metrics, logged call)
    last_log: Dict[str, float] = {}
    window_steps = 0  # updates since the window's clock started (this process only)

    def check() -> None:
        """Fetches the pending metrics, stops on a non-finite one, adds them to the window."""
        fetched = jax.device_get([metrics for _, metrics, _ in pending])
        checked = []
        for (first, _, logged), metrics in zip(pending, fetched):
            if is_train_step and not logged:
                for name in [n for n in metrics if n.endswith("grad_norm")]:
                    del metrics[name]  # not computed: NaN
            bad = _first_non_finite(metrics)
            if bad is not None:
                offset, name, value = bad
                pending.clear()
                if writer is not None:
                    writer.write({"step": first + offset + 1, "split": "train", name: value})
                raise NonFiniteError(first + offset + 1, name, value, last_saved, directory)
            checked.append(metrics)
        pending.clear()
        for metrics in checked:
            for name, value in metrics.items():
                window.setdefault(name, []).append(np.atleast_1d(np.asarray(value)))

    def log(step: int, window_seconds: float) -> None:
        if not window:
            return
        record = {k: float(np.mean(np.concatenate(v))) for k, v in window.items()}
        record.update(step=step, split="train",
                      steps_per_sec=window_steps / max(window_seconds, 1e-9),
                      train_seconds=train_seconds)
        window.clear()
        emit(record)
        last_log.clear()
        last_log.update(record)
        if bar is not None:
            bar.set_postfix(loss=f"{record['loss']:.4g}", refresh=False)

    saving = False

    def save(step: int) -> None:
        nonlocal last_saved, saving
        if not all_finite(state):
            raise NonFiniteError(step, "parameters", float("nan"), last_saved, directory)
        values = {name: np.concatenate(v) for name, v in window.items()}
        meta = {"train_seconds": train_seconds,
                "window": {name: {"dtype": str(v.dtype), "values": v.tolist()}
                           for name, v in values.items()}}
        saving = True
        checkpointer.save(step, state, meta)
        saving = False
        last_saved = step

    def stop(signum: int, step: int) -> BaseException:
        """Checks and checkpoints the state of ``step``; the exception to raise."""
        check()
        if step != last_saved:
            save(step)
        name = signal.Signals(signum).name
        message = (f"{desc}: {name} at step {step}; checkpoint {step} is in "
                   f"{checkpointer.directory}; run again to resume")
        if bar is not None:
            bar.close()
        print(message, file=sys.stderr, flush=True)
        return stop_exception(signum, message)

    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=num_steps, initial=start, desc=desc, disable=not show,
               dynamic_ncols=True, unit="step") if show else None
    step = start
    in_flight = False  # a call may have consumed ``state`` without handing back its result
    stopping = False
    window_start = time.perf_counter()
    signals = DeferredSignals(active=not in_memory)
    try:
        with signals:
            while step < num_steps:
                if signals.received is not None:
                    stopping = True
                    raise stop(signals.received, step)
                t0 = time.perf_counter()
                batch = get_batch(step)
                next_step = step + steps_per_call
                logged = next_step % log_every == 0 or next_step == num_steps
                checkpointing = not in_memory and (next_step % checkpoint_every == 0
                                                   or (save_final and next_step == num_steps))
                in_flight = True
                if is_train_step:
                    state, metrics = train_step(state, batch, log=logged)
                else:
                    state, metrics = train_step(state, batch)
                in_flight = False
                pending.append((step, metrics, logged))
                step = next_step
                window_steps += steps_per_call
                if bar is not None:
                    bar.update(steps_per_call)
                if logged or checkpointing:
                    jax.block_until_ready(state)
                train_seconds += time.perf_counter() - t0
                if logged or checkpointing:
                    check()
                if logged:
                    log(step, time.perf_counter() - window_start)
                    window_start, window_steps = time.perf_counter(), 0
                if checkpointing:
                    save(step)
                if eval_fn is not None and eval_every and (step % eval_every == 0
                                                           or step == num_steps):
                    emit(dict(eval_fn(state, step), step=step, split="eval"))
            if in_memory and step > start and not all_finite(state):  # ``save`` checks otherwise
                raise NonFiniteError(step, "parameters", float("nan"), None, None)
            if signals.received is not None:  # during the last step: still stop as asked
                stopping = True
                raise stop(signals.received, step)
    except (KeyboardInterrupt, SystemExit):
        # Raised by the code itself or by a second signal: keep what was done if the
        # state is one no call has consumed (a donated state cannot be read).
        if (not in_memory and not stopping and not in_flight and not saving
                and _is_usable(state)):
            check()
            if step != last_saved:
                save(step)
        raise
    finally:
        if bar is not None:
            bar.close()
        if checkpointer is not None:
            checkpointer.close()
    return FitResult(state=state, train_seconds=train_seconds, start_step=start, steps=step,
                     last_log=dict(last_log), records=records)
