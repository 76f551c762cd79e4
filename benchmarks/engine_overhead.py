"""The engine's train step against a minimal hand-written jitted Adam step.

    python -m benchmarks.engine_overhead [--batches 32 128] [--rounds 21] [--write]
        [--out PATH] [--allow_busy]

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

Timing (``benchmarks.harness``): after compiling, each round times
``--calls`` updates of every variant once, the order rotating between rounds,
so a change in the machine's load hits all of them; the ratio engine /
minimal is taken within each round and reported as median [min, max] over
rounds. An oversubscribed run (``harness.QuietRule``: the load average above
the number of cores, or other processes busy) reports no ratio and exits
with status 3, unless ``--allow_busy``, which marks the result. With
``--write`` a run writes ``benchmarks/results/engine_overhead.json`` (or
``--out``).
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
from typing import Callable, Dict

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks import harness
from gmjax.nets import MLP
from gmjax.training import TrainState, data_mesh, make_train_step, replicate, shard_batch

RESULTS = harness.result_path("engine_overhead")
SIZES = (784, 500, 500, 50)
NUM_BATCHES = 8  # distinct batches each variant cycles through


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


def measure(batch_size: int, rounds: int, calls: int, guard: harness.LoadGuard) -> Dict:
    variants = build(batch_size, calls)
    with guard.timed():
        timings = harness.time_rounds(variants, rounds, per=calls)
    return {
        "batch_size": batch_size,
        "ms_per_step": {name: statistics.median(v) for name, v in timings.ms.items()},
        "ratio_to_minimal": {name: harness.spread(harness.paired_ratios(timings.ms, name,
                                                                        "minimal"))
                             for name in variants if name != "minimal"},
        "cpu_cores_used": {name: statistics.median(v) for name, v in timings.cpu_cores.items()},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--calls", type=int, default=100, help="updates timed per round")
    parser.add_argument("--write", action="store_true",
                        help=f"write {os.path.relpath(RESULTS)} (or --out)")
    parser.add_argument("--out", default=RESULTS)
    harness.add_load_args(parser)
    args = parser.parse_args(argv)

    guard = harness.LoadGuard.from_args(args)
    guard.before()
    results = [measure(b, args.rounds, args.calls, guard) for b in args.batches]
    ok = guard.finish()
    for r in results:
        print(f"batch {r['batch_size']}: ms per step "
              + ", ".join(f"{k} {v:.3f}" for k, v in r["ms_per_step"].items()))
        if not ok:
            continue
        for name, q in r["ratio_to_minimal"].items():
            print(f"  {name} / minimal: {harness.format_spread(q)}")
    if not ok:
        return harness.EXIT_OVERSUBSCRIBED
    if args.write:
        harness.write_result(
            args.out, "engine_overhead",
            {**vars(args), "out": harness.display_path(args.out), "sizes": SIZES,
             "num_batches": NUM_BATCHES}, results, argv=argv,
            description="engine train step vs a minimal jitted Adam step, 784-500-500-50 MLP; "
                        "ratio = engine time / minimal time per step, paired by round",
            load=guard.record())
    return 0


if __name__ == "__main__":
    sys.exit(main())
