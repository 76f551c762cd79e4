"""TemperFlow's default 2-D config: training seconds and accuracy per target.

    python -m benchmarks.temperflow_2d [--targets circle,grid,cross] [--seed 0]

Runs ``experiments/temperflow.py`` with ``experiments/configs/temperflow_2d.py``
as it is (method ``temperflow``) on each target in a fresh temporary workdir,
one after the other in this process, and prints per target the training
seconds (all stages, compilation and the importance-sampling estimates
included; the per-stage mode-weight traces are not timed), the modes
captured, the largest mode-weight error against the truth (10^4 draws), the
number of temperatures and optimizer steps. The machine's load average is
recorded before and after each target, and other processes' CPU use over the
runs (``benchmarks.harness.LoadGuard``): a run beside other jobs is slower,
and its result file says ``"oversubscribed": true``.

Writes ``benchmarks/results/temperflow_2d.json`` (or ``--out``). Reference point on the same
2-core CPU machine class: the authors' TensorFlow code with its 2-D settings
(one autoregressive spline, 32 bins, hidden (64, 64), kl_decay 0.5, 10 betas,
batch 2,000) trained on circle in 152 s to 8/8 modes and max weight error
0.006.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from benchmarks import harness
from experiments import temperflow
from gmjax import experiment

CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "experiments", "configs", "temperflow_2d.py")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", default="circle,grid,cross")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=harness.result_path("temperflow_2d"))
    args = parser.parse_args()
    defaults = experiment.load_config_file(CONFIG)
    guard = harness.LoadGuard(refuse=False)
    guard.before()
    rows = []
    for name in args.targets.split(","):
        config = experiment.load_config_file(CONFIG)
        config.data.name, config.seed = name, args.seed
        load_before = os.getloadavg()[0]
        t0 = time.perf_counter()
        with guard.timed(), tempfile.TemporaryDirectory() as workdir:
            metrics = experiment.run(temperflow.EXPERIMENT, config, workdir, progress=False,
                                     defaults=defaults)
        row = {"target": name, "train_seconds": round(metrics["train_seconds"], 1),
               "wall_seconds": round(time.perf_counter() - t0, 1),
               "modes": f"{metrics['modes_captured']}/{metrics['num_modes']}",
               "mode_weight_max_error": round(metrics["mode_weight_max_error"], 4),
               "num_betas": metrics["num_betas"], "steps": metrics["steps"],
               "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    guard.finish()
    harness.write_result(
        args.out, "temperflow_2d",
        {"config_file": "experiments/configs/temperflow_2d.py", "targets": args.targets,
         "seed": args.seed, "out": harness.display_path(args.out)},
        rows, description="TemperFlow's default 2-D config: training seconds and accuracy",
        load=guard.record())


if __name__ == "__main__":
    main()
