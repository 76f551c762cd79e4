"""The 2-D diffusion table: DDPM and score-SDE samples and likelihoods on toy densities.

    python experiments/diffusion_table.py --workdir runs/diffusion_table \
        --families ddpm,sde --data 8gaussians,checkerboard,moons --steps 10000

Each cell is an ordinary ``experiments/diffusion.py`` run of
``experiments/configs/diffusion_toy.py`` in ``<workdir>/<data>_<family>/`` (so an
interrupted table resumes). The table -- two-sample distances of the samples to
test points (``energy_distance``, ``adjusted_mmd``, ``adjusted_w1``), the
likelihood (``sde``: ``test_nll`` and ``nll_excess`` by the probability-flow ODE;
``ddpm``: ``-elbo`` and ``nll_excess_bound`` by the variational bound),
``sample_seconds`` and ``train_seconds`` -- goes to ``<workdir>/table.json``
and, with ``--results``, to that file (``docs/results/diffusion_toy.json``,
rendered by ``docs/generate_tables.py``).
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional

from absl import app, flags

from experiments import diffusion
from experiments.configs import diffusion_toy
from gmjax import experiment

FLAGS = flags.FLAGS

COLUMNS = ("energy_distance", "adjusted_mmd", "adjusted_w1", "test_nll", "nll_excess", "elbo",
           "nll_excess_bound", "nfe", "sample_seconds", "train_seconds", "steps")


def define_flags() -> None:
    """Defines the command line; not at import, so tests and other scripts can import
    this module beside scripts that define flags of the same names."""
    flags.DEFINE_string("workdir", "runs/diffusion_table", "Where every cell and the table go.")
    flags.DEFINE_list("families", ["ddpm", "sde"], "model.family of each column.")
    flags.DEFINE_list("data", ["8gaussians", "checkerboard", "moons"], "Toy densities.")
    flags.DEFINE_integer("steps", 10_000, "Training steps per cell.")
    flags.DEFINE_string("results", "", "Also write the table JSON here.")
    flags.DEFINE_bool("progress", None, "Show progress bars (default: only on a terminal).")


def cell_config(family: str, data: str, steps: int):
    config = diffusion_toy.get_config()
    config.data.name = data
    config.model.family = family
    config.train.steps = steps
    interval = max(config.train.steps_per_call, steps // 5 // config.train.steps_per_call
                   * config.train.steps_per_call)
    config.train.eval_every = config.train.checkpoint_every = interval
    return config


def finished(workdir: str, config) -> Optional[Dict[str, Any]]:
    """The metrics of a cell that already ran to the end with this config, else None (a
    finished run resumed would only evaluate again)."""
    try:
        with open(os.path.join(workdir, "config.json")) as f:
            saved = json.load(f)
        with open(os.path.join(workdir, "metrics.json")) as f:
            metrics = json.load(f)
    except (OSError, json.JSONDecodeError):
        return None
    same = saved == json.loads(config.to_json())
    return metrics if same and metrics.get("steps") == config.train.steps else None


def main(argv):
    del argv
    experiment.quiet_logging()
    rows = {}
    for data in FLAGS.data:
        for family in FLAGS.families:
            workdir = os.path.join(FLAGS.workdir, f"{data}_{family}")
            print(f"== {data} / {family} -> {workdir}", flush=True)
            config = cell_config(family, data, FLAGS.steps)
            metrics = finished(workdir, config)
            if metrics is None:
                metrics = experiment.run(diffusion.EXPERIMENT, config, workdir,
                                         progress=FLAGS.progress,
                                         defaults=diffusion_toy.get_config())
            rows[f"{data}/{family}"] = {k: metrics[k] for k in COLUMNS if k in metrics}
            print(json.dumps(rows[f"{data}/{family}"]), flush=True)
    table = {"command": ("python experiments/diffusion_table.py --families "
                         f"{','.join(FLAGS.families)} --data {','.join(FLAGS.data)} "
                         f"--steps {FLAGS.steps}"),
             "rows": rows}
    os.makedirs(FLAGS.workdir, exist_ok=True)
    paths = [os.path.join(FLAGS.workdir, "table.json")] + ([FLAGS.results] if FLAGS.results
                                                           else [])
    for path in paths:
        with open(path, "w") as f:
            json.dump(table, f, indent=2)
            f.write("\n")
    print(json.dumps(table, indent=2))


if __name__ == "__main__":
    define_flags()
    app.run(main)
