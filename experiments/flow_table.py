"""The 2-D density-estimation table: every flow recipe (and the EM mixture) on toy data.

    python experiments/flow_table.py --workdir runs/flow_table \
        --models realnvp,maf,spline_coupling,gmm --data 8gaussians,checkerboard --steps 10000

Each cell is an ordinary ``experiments/flow.py`` run in
``<workdir>/<data>_<model>/`` (so an interrupted table resumes); the table of
``nll_excess`` (test NLL minus the true entropy, paired on the test set; 0 is
perfect), ``test_nll``, ``density_integral`` and ``train_seconds`` goes to
``<workdir>/table.md`` and ``table.json``.
"""

from __future__ import annotations

import json
import os

from absl import app, flags

from experiments import flow
from experiments.configs import flow_toy
from gmjax import experiment

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the command line; not at import, so tests and other scripts can import
    this module beside scripts that define flags of the same names."""
    flags.DEFINE_string("workdir", "runs/flow_table", "Where every cell and the table go.")
    flags.DEFINE_list("models", ["realnvp", "maf", "spline_coupling", "gmm"], "Model names.")
    flags.DEFINE_list("data", ["8gaussians", "checkerboard"], "Toy densities.")
    flags.DEFINE_integer("steps", 10_000, "Training steps per flow (EM iterations for gmm: 200).")
    flags.DEFINE_integer("num_layers", 8, "Layers per flow.")
    flags.DEFINE_bool("progress", None, "Show progress bars (default: only on a terminal).")

COLUMNS = ("nll_excess", "test_nll", "density_integral", "train_seconds")


def cell_config(model: str, data: str):
    config = flow_toy.get_config()
    config.data.name = data
    config.model.name = model
    config.model.num_layers = FLAGS.num_layers
    config.train.steps = 200 if model == "gmm" else FLAGS.steps
    config.train.eval_every = config.train.checkpoint_every = max(config.train.steps // 5, 1)
    return config


def main(argv):
    del argv
    experiment.quiet_logging()
    rows = {}
    for data in FLAGS.data:
        for model in FLAGS.models:
            workdir = os.path.join(FLAGS.workdir, f"{data}_{model}")
            print(f"== {data} / {model} -> {workdir}", flush=True)
            metrics = experiment.run(flow.EXPERIMENT, cell_config(model, data), workdir,
                                     progress=FLAGS.progress)
            rows[f"{data}/{model}"] = {k: metrics.get(k) for k in COLUMNS}
            print(json.dumps(rows[f"{data}/{model}"]), flush=True)
    lines = ["| data / model | " + " | ".join(COLUMNS) + " |",
             "| --- |" + " ---: |" * len(COLUMNS)]
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(
            "" if row[c] is None else f"{row[c]:.4g}" for c in COLUMNS) + " |")
    os.makedirs(FLAGS.workdir, exist_ok=True)
    with open(os.path.join(FLAGS.workdir, "table.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(FLAGS.workdir, "table.json"), "w") as f:
        json.dump(rows, f, indent=2)
    print("\n".join(lines))


if __name__ == "__main__":
    define_flags()
    app.run(main)
