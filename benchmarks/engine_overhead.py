"""The engine's train step against a minimal hand-written jitted Adam step.

    python -m benchmarks.engine_overhead [--batches 32 128] [--rounds 21] [--write]

Both train the same 784-500-500-50 tanh MLP by mean squared error with Adam
on the same device-resident batches. The minimal step is what one writes by
hand::

    @partial(jax.jit, donate_argnums=(0, 1))
    def step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(mse)(params, x, y)
        updates, opt_state = adam.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

The engine's is ``make_train_step(loss, adam, data_mesh(1))``: a
``TrainState`` (step counter and key included) and a metrics dict, called as
``fit`` calls it between logging steps (``log=False``: no gradient norm).
More rows show what the options cost: ``log=True`` on every call (the
gradient norm every step), ``steps_per_call=10`` (ten updates scanned per
call), and the scanned step asked for the norm on every call (it computes
the norm of the last update only, as TemperFlow's stages log).

Timing: after compiling, each round times ``--calls`` updates of every variant
in turn (the order alternates between rounds), so a change in the machine's
load hits all of them; the ratio engine / minimal is taken within each round
and reported as median [min, max] over rounds. The 1-minute load average is
recorded before and after every round. When it exceeds the number of cores,
the machine is oversubscribed, the timings measure the other processes as
much as the code, and no ratio is reported (the script says why). With
``--write`` a clean run writes ``benchmarks/results/engine_overhead.json``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import sys
import time
from typing import Callable, Dict, List

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from gmjax.nets import MLP
from gmjax.training import TrainState, data_mesh, make_train_step, replicate, shard_batch

RESULTS = os.path.join(os.path.dirname(__file__), "results", "engine_overhead.json")
SIZES = (784, 500, 500, 50)
NUM_BATCHES = 8  # distinct batches each variant cycles through


def load() -> float:
    return os.getloadavg()[0]


def build(batch_size: int, calls: int) -> Dict[str, Callable[[], None]]:
    """Each variant as ``run()``: ``calls`` updates from its current state, blocking at the end."""
    model = MLP(SIZES[1:], activation=nn.tanh)
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(NUM_BATCHES, batch_size, SIZES[0])).astype(np.float32)
    ys = rng.normal(size=(NUM_BATCHES, batch_size, SIZES[-1])).astype(np.float32)
    params = jax.tree.map(np.asarray, model.init(jax.random.PRNGKey(0), xs[0, :1]))
    adam = optax.adam(1e-4)

    def mse(p, x, y):
        return jnp.mean((model.apply(p, x) - y) ** 2)

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def minimal_step(p, opt_state, x, y):
        loss, grads = jax.value_and_grad(mse)(p, x, y)
        updates, opt_state = adam.update(grads, opt_state, p)
        return optax.apply_updates(p, updates), opt_state, loss

    def loss_fn(p, batch, key):
        del key
        loss = mse(p, *batch)
        return loss, {}

    mesh = data_mesh(1)
    variants: Dict[str, Callable[[], None]] = {}

    # The minimal step.
    device_batches = [(jax.device_put(xs[i]), jax.device_put(ys[i])) for i in range(NUM_BATCHES)]
    minimal = {"params": jax.device_put(params)}
    minimal["opt_state"] = adam.init(minimal["params"])

    def run_minimal() -> None:
        p, o = minimal["params"], minimal["opt_state"]
        for i in range(calls):
            p, o, loss = minimal_step(p, o, *device_batches[i % NUM_BATCHES])
        jax.block_until_ready((p, o, loss))
        minimal["params"], minimal["opt_state"] = p, o

    variants["minimal"] = run_minimal

    def engine_variant(steps_per_call: int, log: bool) -> Callable[[], None]:
        step = make_train_step(loss_fn, adam, mesh, steps_per_call=steps_per_call)
        holder = {"state": replicate(TrainState.create(params, adam, jax.random.PRNGKey(1)),
                                     mesh)}
        if steps_per_call == 1:
            batches = [shard_batch((xs[i], ys[i]), mesh) for i in range(NUM_BATCHES)]
        else:
            index = [np.arange(steps_per_call) + i for i in range(NUM_BATCHES)]
            batches = [shard_batch((xs[j % NUM_BATCHES], ys[j % NUM_BATCHES]), mesh, 1)
                       for j in index]
        if calls % steps_per_call:
            raise ValueError(f"--calls must be a multiple of {steps_per_call}")

        def run() -> None:
            state = holder["state"]
            for i in range(calls // steps_per_call):
                state, metrics = step(state, batches[i % NUM_BATCHES], log=log)
            jax.block_until_ready((state, metrics))
            holder["state"] = state

        return run

    variants["engine"] = engine_variant(1, log=False)
    variants["engine_norm_every_step"] = engine_variant(1, log=True)
    variants["engine_scan10"] = engine_variant(10, log=False)
    variants["engine_scan10_norm_every_call"] = engine_variant(10, log=True)
    for run in variants.values():  # compile and warm up
        run()
    return variants


def measure(batch_size: int, rounds: int, calls: int) -> Dict:
    variants = build(batch_size, calls)
    names = list(variants)
    seconds: Dict[str, List[float]] = {name: [] for name in names}
    loads = [load()]
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            t0 = time.perf_counter()
            variants[name]()
            seconds[name].append((time.perf_counter() - t0) / calls)
        loads.append(load())
    ratios = {name: [a / b for a, b in zip(seconds[name], seconds["minimal"])]
              for name in names if name != "minimal"}
    return {
        "batch_size": batch_size,
        "ms_per_step": {name: 1e3 * statistics.median(v) for name, v in seconds.items()},
        "ratio_to_minimal": {name: {"median": statistics.median(v), "min": min(v),
                                    "max": max(v)} for name, v in ratios.items()},
        "load_average": {"min": min(loads), "max": max(loads)},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--calls", type=int, default=100, help="updates timed per round")
    parser.add_argument("--write", action="store_true",
                        help=f"write {os.path.relpath(RESULTS)} (only from a clean run)")
    args = parser.parse_args(argv)

    cores = os.cpu_count() or 1
    results = [measure(b, args.rounds, args.calls) for b in args.batches]
    peak = max(r["load_average"]["max"] for r in results)
    oversubscribed = peak > cores
    for r in results:
        print(f"batch {r['batch_size']}: ms per step "
              + ", ".join(f"{k} {v:.3f}" for k, v in r["ms_per_step"].items())
              + f"; load average {r['load_average']['min']:.2f}-"
                f"{r['load_average']['max']:.2f} on {cores} cores")
        if oversubscribed:
            continue
        for name, q in r["ratio_to_minimal"].items():
            print(f"  {name} / minimal: {q['median']:.3f} [{q['min']:.3f}, {q['max']:.3f}]")
    if oversubscribed:
        print(f"no ratio reported: the load average reached {peak:.2f} on {cores} cores, so "
              f"other processes shared the cores and the timings say as much about them as "
              f"about the code; rerun on a quiet machine", file=sys.stderr)
        return 1
    if args.write:
        record = {
            "description": "engine train step vs a minimal jitted Adam step, 784-500-500-50 MLP; "
                           "ratio = engine time / minimal time per step, paired by round",
            "results": results, "rounds": args.rounds, "calls_per_round": args.calls,
            "jax": jax.__version__, "cpu_count": cores,
            "platform": platform.platform(), "processor": platform.processor(),
        }
        os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
        with open(RESULTS, "w") as f:
            json.dump(record, f, indent=2)
            f.write("\n")
        print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
