"""SIGINT and SIGTERM during ``fit``: a consistent checkpoint every time, an exact resume.

The main test drives a worker process (this file run as a script) that
trains a small model with ``fit`` and signals it after random delays, many
times. After each stop the worker checks that the newest checkpoint is the
state of an uninterrupted trajectory at that step, bit for bit, and resumes.
The run that finishes after all the stops must equal an uninterrupted
``fit`` bit for bit.
"""

import functools
import hashlib
import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

HERE = os.path.abspath(__file__)
ROOT = os.path.dirname(os.path.dirname(HERE))
NUM_STEPS = 1000
STOPS = 12


@pytest.fixture(autouse=True)
def default_stop_handlers():
    """Python's own SIGINT / SIGTERM handlers for each test: a shell that starts pytest in
    the background hands it SIGINT ignored, and ``fit`` leaves an ignored signal ignored."""
    before = [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)]
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    for signum, handler in zip((signal.SIGINT, signal.SIGTERM), before):
        signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


# ------------------------------------------------------------------ the worker


@functools.lru_cache(maxsize=None)
def build():
    """A tiny noisy regression: the model, its data and the engine's pieces."""
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import optax

    from gmjax.nets import MLP
    from gmjax.training import TrainState, data_mesh, make_train_step

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2048, 16)).astype(np.float32)
    y = np.sin(x[:, :1] * x[:, 1:2]).astype(np.float32)
    model = MLP((128, 128, 1), activation=nn.tanh)
    mesh = data_mesh(1)
    optimizer = optax.adam(3e-3)
    params = jax.tree.map(np.asarray, model.init(jax.random.PRNGKey(0), x[:1]))

    def loss(p, batch, key):
        bx, by = batch
        bx = bx + 0.05 * jax.random.normal(key, bx.shape)  # the keys matter too
        mse = jnp.mean((model.apply(p, bx) - by) ** 2)
        return mse, {"mse": mse}

    def batch_fn(step):
        i = (step * 64) % len(x)
        return x[i:i + 64], y[i:i + 64]

    test_loss = jax.jit(lambda p: loss(p, (x[:512], y[:512]), jax.random.PRNGKey(9))[0])

    def fresh_state():
        return TrainState.create(params, optimizer, jax.random.PRNGKey(1))

    return mesh, make_train_step(loss, optimizer, mesh), batch_fn, fresh_state, test_loss


def digest(state) -> str:
    import jax

    h = hashlib.sha256()
    for leaf in jax.tree.leaves(state):
        h.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
    return h.hexdigest()


def worker(workdir: str, catch: bool) -> None:
    """Prints JSON lines on stdout; reads ``again`` / ``finish`` on stdin after each stop."""
    import jax

    from gmjax.training import Checkpointer, fit, replicate, shard_batch

    mesh, step, batch_fn, fresh_state, test_loss = build()
    late = []  # signals that came after a fit had returned
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda s, f: late.append(s))

    def say(**record):
        print(json.dumps(record), flush=True)

    def run(directory, announce=False):
        def batches(t):
            if announce and t == batches.first:
                say(event="running", step=t)
            return batch_fn(t)

        batches.first = Checkpointer(os.path.join(directory, "checkpoints")).latest_step() or 0
        return fit(fresh_state(), step, batches, num_steps=NUM_STEPS, workdir=directory,
                   mesh=mesh, log_every=10, checkpoint_every=200, keep_checkpoints=2,
                   eval_every=50, eval_fn=lambda s, t: {"test_loss": float(test_loss(s.params))},
                   progress=False)

    directory = os.path.join(workdir, "interrupted")
    if not catch:  # one fit and the process's own handlers: SIGTERM ends the process
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        run(directory, announce=True)
        say(event="finished")
        return

    # The uninterrupted trajectory, state by state, and an uninterrupted fit.
    state = replicate(fresh_state(), mesh)
    trajectory = [digest(state)]
    for t in range(NUM_STEPS):
        state, _ = step(state, shard_batch(batch_fn(t), mesh), log=False)
        trajectory.append(digest(state))
    t0 = time.perf_counter()
    reference = run(os.path.join(workdir, "reference"))
    say(event="reference", seconds=time.perf_counter() - t0,
        equal=digest(reference.state) == trajectory[-1])

    while True:
        try:
            result = run(directory, announce=True)
        except (KeyboardInterrupt, SystemExit) as e:
            kind = "SIGINT" if isinstance(e, KeyboardInterrupt) else f"exit {e.code}"
            checkpointer = Checkpointer(os.path.join(directory, "checkpoints"))
            saved = checkpointer.latest_step()
            restored, meta = checkpointer.restore(jax.device_get(fresh_state()))
            checkpointer.close()
            say(event="stopped", kind=kind, step=saved,
                consistent=digest(restored) == trajectory[saved]
                and int(restored.step) == saved == meta["step"])
            if sys.stdin.readline().strip() == "again":
                continue
            result = run(directory)
        say(event="finished", late=len(late), equal=digest(result.state) == digest(reference.state))
        return


# ------------------------------------------------------------------- the tests


def start_worker(tmp_path, catch=True):
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    proc = subprocess.Popen([sys.executable, HERE, "worker", str(tmp_path), str(int(catch))],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=ROOT)
    proc.events = queue.Queue()

    def pump():
        for line in proc.stdout:
            if line.startswith("{"):
                proc.events.put(json.loads(line))
        proc.events.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return proc


def read_event(proc, timeout=120.0):
    try:
        event = proc.events.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no word from the worker in {timeout} s") from None
    if event is None:
        raise AssertionError(f"worker ended: {proc.stderr.read()[-3000:]}")
    return event


def test_random_sigint_and_sigterm_always_leave_a_consistent_checkpoint(tmp_path):
    rng = random.Random(19)
    proc = start_worker(tmp_path)
    try:
        reference = read_event(proc)
        assert reference["event"] == "reference" and reference["equal"], reference
        stops = []
        longest = 0.02 * reference["seconds"]  # the longest wait before a signal
        while len(stops) < STOPS:
            event = read_event(proc)
            if event["event"] == "finished":  # the last signal came after the run had ended
                break
            assert event["event"] == "running"
            started = event["step"]
            signum = (signal.SIGINT, signal.SIGTERM)[len(stops) % 2]
            # Anywhere in the next few dozen steps: in a step, a log, an eval or a save.
            time.sleep(rng.uniform(0.0, longest))
            proc.send_signal(signum)
            event = read_event(proc)
            if event["event"] == "finished":
                break
            assert event["event"] == "stopped"
            assert event["kind"] == ("SIGINT" if signum == signal.SIGINT else "exit 143"), event
            assert event["consistent"], event
            stops.append((signal.Signals(signum).name, event["step"]))
            # Keep ~10-40 steps between stops however loaded the machine is.
            progress = event["step"] - started
            longest *= 0.5 if progress > 40 else 1.5 if progress < 10 else 1.0
            proc.stdin.write("again\n" if len(stops) < STOPS else "finish\n")
            proc.stdin.flush()
        else:
            event = read_event(proc)
        assert event["event"] == "finished" and event["equal"], event
        assert len(stops) >= 10, (stops, reference)
        assert len({step for _, step in stops}) > len(stops) // 2, stops  # at many points
        assert proc.wait(60) == 0
        stderr = proc.stderr.read()
        assert "Buffer has been deleted" not in stderr and "Traceback" not in stderr, stderr
        assert stderr.count("run again to resume") == len(stops), stderr
    finally:
        proc.kill()
        proc.wait()


def test_sigterm_ends_the_process_with_143_after_saving(tmp_path):
    proc = start_worker(tmp_path, catch=False)
    try:
        assert read_event(proc)["event"] == "running"
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 143
        stderr = proc.stderr.read()
        assert "Traceback" not in stderr, stderr
        assert "SIGTERM at step" in stderr and "run again to resume" in stderr, stderr
        from gmjax.training import Checkpointer
        saved = Checkpointer(tmp_path / "interrupted" / "checkpoints").latest_step()
        assert saved is not None and 0 < saved < NUM_STEPS and f"step {saved};" in stderr
    finally:
        proc.kill()
        proc.wait()


# ------------------------------------------------------- in-process behaviour


def small_fit(workdir, num_steps, train_step=None, **options):
    mesh, step, batch_fn, fresh_state, _ = build()
    kwargs = dict(log_every=5, checkpoint_every=10, progress=False)
    kwargs.update(options)
    from gmjax.training import fit
    return fit(fresh_state(), train_step(step) if train_step else step, batch_fn,
               num_steps=num_steps, workdir=str(workdir), mesh=mesh, **kwargs)


def test_a_second_signal_inside_a_donating_step_saves_nothing_it_consumed(tmp_path):
    """The first signal waits for the step; a second one stops inside it, after the
    step has donated its input: nothing unreadable is saved, the last checkpoint stays."""
    from gmjax.training import Checkpointer

    def twice_at_step_13(step):
        def call(state, batch, log=True):
            out = step(state, batch, log=log)  # donates ``state``
            if int(out[0].step) == 13:
                os.kill(os.getpid(), signal.SIGINT)
                os.kill(os.getpid(), signal.SIGINT)  # raises here, the output is lost
            return out
        return call

    with pytest.raises(KeyboardInterrupt):
        small_fit(tmp_path, 30, train_step=twice_at_step_13)
    assert Checkpointer(tmp_path / "checkpoints").latest_step() == 10
    resumed = small_fit(tmp_path, 30)
    full = small_fit(tmp_path / "full", 30)
    assert resumed.start_step == 10
    assert digest(resumed.state) == digest(full.state)


def test_fit_restores_the_handlers_and_runs_outside_the_main_thread(tmp_path):
    before = [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)]
    small_fit(tmp_path / "main", 10)
    assert [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)] == before
    results = []
    thread = threading.Thread(target=lambda: results.append(small_fit(tmp_path / "thread", 10)))
    thread.start()
    thread.join()
    assert results and results[0].steps == 10



def test_a_signal_between_temperflow_stages_waits_for_the_stage_checkpoint(tmp_path):
    """SIGINT in the work after a stage (here its ``on_stage`` hook) stops the run only
    once the stage's record and checkpoint are written; the run resumes at the next stage."""
    from gmjax.models.flow import build_flow
    from gmjax.samplers.temperflow import TemperFlow, TemperFlowConfig, run_temperflow
    from gmjax.targets import build_target
    from gmjax.training import Checkpointer, read_jsonl

    flow = build_flow({"name": "spline_coupling", "num_layers": 2, "hidden": (16,)}, 2)
    kernel = TemperFlow(flow, build_target("circle"), TemperFlowConfig(
        steps_init=20, steps_mid=20, steps_final=20, batch_size=128, steps_per_call=20,
        max_betas=3, estimate_draws=500), {"name": "adam", "lr": 1e-3})

    def interrupt(state, info):
        os.kill(os.getpid(), signal.SIGINT)
        return {"hooked": True}

    import jax
    with pytest.raises(KeyboardInterrupt, match="after 1 stage"):
        run_temperflow(kernel, kernel.init(jax.random.PRNGKey(0)), str(tmp_path),
                       progress=False, on_stage=interrupt)
    assert Checkpointer(tmp_path / "checkpoints").latest_step() == 1
    assert [r["step"] for r in read_jsonl(tmp_path / "metrics.jsonl")] == [1]


if __name__ == "__main__" and sys.argv[1:2] == ["worker"]:
    sys.path.insert(0, ROOT)
    worker(sys.argv[2], catch=sys.argv[3] == "1")
