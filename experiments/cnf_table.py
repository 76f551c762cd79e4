"""The continuous-flow tables: FFJORD, OT-Flow and flow matching on toy 2-D densities and on
sklearn's tabular data sets.

    python experiments/cnf_table.py --workdir runs/cnf_table \
        --models flow_matching,ffjord,otflow --data 8gaussians --steps 4000 --solve_steps 1500
    python experiments/cnf_table.py --workdir runs/cnf_tabular \
        --models flow_matching --data wine,breast_cancer --steps 5000

Each cell is an ordinary ``experiments/cnf.py`` run in
``<workdir>/<data>_<model>/`` (so an interrupted table resumes) of
``experiments/configs/cnf_toy.py`` for a toy density and of
``experiments/configs/cnf_tabular.py`` for ``wine`` and ``breast_cancer``;
``table.json`` keeps the cells of earlier invocations, so models may be run
apart. ``--steps`` trains flow matching (no solve per step); ``--solve_steps``
trains the two models that solve the ODE in every step.
``<workdir>/table.json`` holds, per ``<data>/<model>``: ``nll_excess`` (test
NLL minus the true entropy, paired on the test set; toy densities only),
``test_nll``, ``nfe_nll`` and ``nfe_sample`` (velocity evaluations per example
of the density and sampling solves), ``sample_seconds`` (``eval.num_samples``
samples), ``train_seconds`` and ``steps``; for a tabular data set also a
``<data>/gaussian`` row, the test NLL of the Gaussian fitted to the training
split (``gaussian_test_nll``). ``docs/generate_tables.py``
renders the toy table (block ``cnf_toy``) and the tabular one (``cnf_tabular``).
"""

from __future__ import annotations

import json
import os

from absl import app, flags

from experiments import cnf
from experiments.configs import cnf_tabular, cnf_toy
from gmjax import experiment
from gmjax.data.tabular import TABULAR_DATA_SOURCES

FLAGS = flags.FLAGS
COLUMNS = ("nll_excess", "test_nll", "nfe_nll", "nfe_sample", "sample_seconds",
           "train_seconds", "steps")


def define_flags() -> None:
    """Defines the command line; not at import (tests import this module)."""
    flags.DEFINE_string("workdir", "runs/cnf_table", "Where every cell and the table go.")
    flags.DEFINE_list("models", list(cnf.MODELS), "Model names (experiments/cnf.py).")
    flags.DEFINE_list("data", ["8gaussians"], "Toy densities, wine or breast_cancer.")
    flags.DEFINE_integer("steps", 4_000, "Training steps of flow matching.")
    flags.DEFINE_integer("solve_steps", 1_500, "Training steps of ffjord and otflow.")
    flags.DEFINE_bool("progress", None, "Show progress bars (default: only on a terminal).")


def config_file(data: str):
    """The config module of data set ``data``: ``cnf_tabular`` for sklearn's tabular sets."""
    return cnf_tabular if data in TABULAR_DATA_SOURCES else cnf_toy


def cell_config(model: str, data: str, steps: int, solve_steps: int):
    config = config_file(data).get_config()
    config.data.name = data
    config.model.name = model
    config.train.steps = steps if model == "flow_matching" else solve_steps
    config.train.eval_every = config.train.checkpoint_every = max(config.train.steps // 4, 1)
    return config


def main(argv):
    del argv
    experiment.quiet_logging()
    table_path = os.path.join(FLAGS.workdir, "table.json")
    rows = {}
    if os.path.exists(table_path):  # cells of earlier invocations are kept
        with open(table_path) as f:
            rows = json.load(f)
    for data in FLAGS.data:
        for model in FLAGS.models:
            workdir = os.path.join(FLAGS.workdir, f"{data}_{model}")
            print(f"== {data} / {model} -> {workdir}", flush=True)
            config = cell_config(model, data, FLAGS.steps, FLAGS.solve_steps)
            metrics = experiment.run(cnf.EXPERIMENT, config, workdir, progress=FLAGS.progress,
                                     defaults=config_file(data).get_config())
            rows[f"{data}/{model}"] = {k: metrics.get(k) for k in COLUMNS}
            print(json.dumps(rows[f"{data}/{model}"]), flush=True)
            if data in TABULAR_DATA_SOURCES:  # the baseline, the same for every model
                rows[f"{data}/gaussian"] = {k: None for k in COLUMNS}
                rows[f"{data}/gaussian"]["test_nll"] = metrics["gaussian_test_nll"]
            os.makedirs(FLAGS.workdir, exist_ok=True)
            with open(table_path, "w") as f:
                json.dump(rows, f, indent=2)


if __name__ == "__main__":
    define_flags()
    app.run(main)
