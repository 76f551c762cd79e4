"""The fit loop: logs, checkpoints, exact resume, the non-finite guard, bad checkpoints."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gmjax.training import (CheckpointError, Checkpointer, NonFiniteError, TrainState, data_mesh,
                            fit, make_train_step, read_jsonl)
from gmjax.training.step import TrainStep

X = np.random.default_rng(0).normal(size=(512, 3)).astype(np.float32)
Y = (X @ np.array([1.0, -2.0, 0.5]) + 0.3).astype(np.float32)


def noisy_mse(params, batch, key):
    """Regression with random input noise, so the run depends on the keys too."""
    x, y = batch
    x = x + 0.1 * jax.random.normal(key, x.shape)
    loss = jnp.mean((x @ params["w"] + params["b"] - y) ** 2)
    return loss, {"mse": loss}


def batch_fn(step):
    i = (step * 32) % len(X)
    return X[i:i + 32], Y[i:i + 32]


def run(workdir, num_steps, batches=batch_fn, steps_per_call=1, wrap=None, **kwargs):
    mesh = data_mesh(1)
    opt = optax.adam(0.05)
    state = TrainState.create({"w": jnp.zeros(3), "b": jnp.zeros(())}, opt,
                              jax.random.PRNGKey(0))
    step = make_train_step(noisy_mse, opt, mesh, steps_per_call=steps_per_call)
    if wrap is not None:
        step = wrap(step)
    options = dict(log_every=5, checkpoint_every=10, keep_checkpoints=2, progress=False)
    options.update(kwargs)
    if "fit_steps_per_call" in options:
        options["steps_per_call"] = options.pop("fit_steps_per_call")
    return fit(state, step, batches, num_steps=num_steps, workdir=str(workdir), mesh=mesh,
               **options)


def leaves(state):
    return [np.asarray(x) for x in jax.tree.leaves(state)]


def test_fit_logs_checkpoints_and_evaluates(tmp_path):
    calls = []
    result = run(tmp_path, 30, eval_every=15,
                 eval_fn=lambda s, t: calls.append(t) or {"test_mse": 1.0})
    records = list(read_jsonl(tmp_path / "metrics.jsonl"))
    train = [r for r in records if r["split"] == "train"]
    assert [r["step"] for r in train] == [5, 10, 15, 20, 25, 30]
    assert {"loss", "mse", "grad_norm", "steps_per_sec", "train_seconds"} <= set(train[0])
    assert train[-1]["loss"] < train[0]["loss"]
    assert calls == [15, 30]
    assert [r["step"] for r in records if r["split"] == "eval"] == [15, 30]
    assert Checkpointer(tmp_path / "checkpoints").all_steps() == [20, 30]  # keep the last 2
    assert result.steps == 30 and result.start_step == 0 and result.train_seconds > 0


def test_resume_equals_uninterrupted_run_bitwise(tmp_path):
    full = run(tmp_path / "full", 40)
    run(tmp_path / "split", 20)
    resumed = run(tmp_path / "split", 40)
    assert resumed.start_step == 20
    for a, b in zip(leaves(full.state), leaves(resumed.state)):
        np.testing.assert_array_equal(a, b)
    # The resumed run's log reads like the uninterrupted one's.
    steps = [r["step"] for r in read_jsonl(tmp_path / "split" / "metrics.jsonl")]
    assert steps == [5, 10, 15, 20, 25, 30, 35, 40]


def test_log_lines_after_the_last_checkpoint_are_dropped_on_resume(tmp_path):
    run(tmp_path, 20)
    with open(tmp_path / "metrics.jsonl", "a") as f:  # as if killed after logging step 25
        f.write(json.dumps({"step": 25, "split": "train", "loss": 1.0}) + "\n")
    run(tmp_path, 30)
    steps = [r["step"] for r in read_jsonl(tmp_path / "metrics.jsonl")]
    assert steps == [5, 10, 15, 20, 25, 30]


def test_nan_stops_with_step_and_metric_and_keeps_the_last_good_checkpoint(tmp_path):
    def poisoned(step):
        x, y = batch_fn(step)
        return (x, np.full_like(y, np.nan)) if step >= 23 else (x, y)

    with pytest.raises(NonFiniteError) as info:
        run(tmp_path, 50, batches=poisoned)
    error = info.value
    assert error.step == 24 and error.name in ("loss", "mse", "grad_norm")
    assert "step 24" in str(error) and "last good checkpoint is step 20" in str(error)
    ckpt = Checkpointer(tmp_path / "checkpoints")
    assert ckpt.latest_step() == 20
    state, meta = ckpt.restore()
    assert meta["step"] == 20
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(state))


def test_corrupt_checkpoint_gives_a_clear_error(tmp_path):
    run(tmp_path, 20)
    latest = tmp_path / "checkpoints" / "20" / "state"
    for root, _, files in os.walk(latest):
        for name in files:
            with open(os.path.join(root, name), "wb") as f:
                f.write(b"garbage")
    with pytest.raises(CheckpointError, match="could not be restored.*available steps: \\[10, 20\\]"):
        run(tmp_path, 30)


def test_intervals_must_be_multiples_of_steps_per_call(tmp_path):
    with pytest.raises(ValueError, match="log_every=5 must be a non-negative multiple"):
        run(tmp_path, 40, steps_per_call=4)


def test_fit_takes_steps_per_call_from_the_step_and_refuses_another(tmp_path):
    result = run(tmp_path / "scan", 40, steps_per_call=4, log_every=8, checkpoint_every=20)
    assert result.steps == 40
    steps = [r["step"] for r in read_jsonl(tmp_path / "scan" / "metrics.jsonl")]
    assert steps == [8, 16, 24, 32, 40]
    with pytest.raises(ValueError, match="built with steps_per_call=4"):
        run(tmp_path / "other", 40, steps_per_call=4, log_every=8, checkpoint_every=20,
            **{"fit_steps_per_call": 2})


def test_an_interrupt_saves_the_state_and_the_resumed_log_reads_like_the_full_one(tmp_path):
    def interrupted(step):
        if step == 17:  # inside the second logging window, after a checkpoint at 10
            raise KeyboardInterrupt
        return batch_fn(step)

    options = dict(log_every=10, checkpoint_every=10)
    full = run(tmp_path / "full", 30, **options)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "split", 30, batches=interrupted, **options)
    assert Checkpointer(tmp_path / "split" / "checkpoints").latest_step() == 17
    resumed = run(tmp_path / "split", 30, **options)
    assert resumed.start_step == 17
    for a, b in zip(leaves(full.state), leaves(resumed.state)):
        np.testing.assert_array_equal(a, b)
    timing = ("steps_per_sec", "train_seconds")
    drop = lambda rs: [{k: v for k, v in r.items() if k not in timing} for r in rs]
    assert drop(read_jsonl(tmp_path / "split" / "metrics.jsonl")) == \
        drop(read_jsonl(tmp_path / "full" / "metrics.jsonl"))


def test_only_calls_that_end_at_a_logging_step_ask_for_the_gradient_norm(tmp_path):
    asked = []

    class Spy(TrainStep):
        def __init__(self, step):
            self.__dict__.update(vars(step))

        def __call__(self, state, batch, log=True):
            asked.append(log)
            return super().__call__(state, batch, log)

    run(tmp_path, 20, wrap=Spy)
    assert asked == [(i + 1) % 5 == 0 for i in range(20)]
    train = list(read_jsonl(tmp_path / "metrics.jsonl"))
    assert len(train) == 4 and all(np.isfinite(r["grad_norm"]) for r in train)
