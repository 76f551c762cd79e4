"""Speed of the blocked two-sample metrics on 10,000 x 10,000 points in 2-D.

Each metric is compiled once (timed separately), then timed over `--repeats`
runs with `block_until_ready`; the table shows the median. The blocked sums
never hold an n x m matrix, so memory stays at a few tiles of about 2^21
entries whatever n is. The machine's load goes into the result file
(``benchmarks.harness.LoadGuard``; a run on an oversubscribed machine is
written all the same, marked ``"oversubscribed": true``).

Run from the repository root:

    python -m benchmarks.metrics_speed            # writes benchmarks/results/metrics_speed.json
    python -m benchmarks.metrics_speed --n 20000
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import time

import jax
import numpy as np

from benchmarks import harness
from gmjax import metrics

RESULTS = pathlib.Path(harness.result_path("metrics_speed"))


def _time(fn, repeats: int) -> dict:
    start = time.perf_counter()
    value = jax.block_until_ready(fn())
    first = time.perf_counter() - start
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        runs.append(time.perf_counter() - start)
    return {
        "compile_and_first_run_s": first,
        "median_s": statistics.median(runs),
        "runs_s": runs,
        "value": float(value),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="points per sample")
    parser.add_argument("--dim", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=pathlib.Path, default=RESULTS)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = jax.device_put(rng.normal(size=(args.n, args.dim)).astype(np.float32))
    y = jax.device_put((rng.normal(size=(args.n, args.dim)) + 0.1).astype(np.float32))
    key = jax.random.key(0)

    cases = {
        "energy_distance": lambda: metrics.energy_distance(x, y),
        "mmd (median heuristic)": lambda: metrics.mmd_median(x, y),
        "median_heuristic alone": lambda: metrics.median_heuristic(x, y),
        "sliced_wasserstein (p=1, 128 dirs)": lambda: metrics.sliced_wasserstein(x, y, key),
    }
    guard = harness.LoadGuard(refuse=False)
    guard.before()
    with guard.timed():
        timings = {name: _time(fn, args.repeats) for name, fn in cases.items()}
    guard.finish()

    print(f"n = m = {args.n}, d = {args.dim}, {os.cpu_count()} CPUs, jax {jax.__version__}, "
          f"{jax.default_backend()}")
    print(f"{'metric':36s} {'compile+1st (s)':>16s} {'median (s)':>11s} {'value':>12s}")
    for name, t in timings.items():
        first, median, value = t["compile_and_first_run_s"], t["median_s"], t["value"]
        print(f"{name:36s} {first:16.3f} {median:11.3f} {value:12.6f}")

    config = {"n": args.n, "m": args.n, "dim": args.dim, "repeats": args.repeats,
              "out": harness.display_path(str(args.out))}
    harness.write_result(str(args.out), "metrics_speed", config, timings,
                         description="seconds per call of the blocked two-sample metrics",
                         load=guard.record())


if __name__ == "__main__":
    main()
