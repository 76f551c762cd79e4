"""Collects TemperFlow runs into the JSON behind the docs' tables: the 2-D mode table
(and its figure) and the Clayton timing table (Table S1 layout).

    python experiments/temperflow_table.py --kind=2d --runs=runs/temperflow_2d
    python experiments/temperflow_table.py --kind=clayton --runs=runs/temperflow_clayton
    python experiments/temperflow_table.py --kind=clayton --recipe=forward_kl \
        --runs=runs/temperflow_clayton_fkl
    python3 docs/generate_tables.py   # renders the tables into README.md and docs/*.md

Reads the ``metrics.json`` (and ``samples.npy``) that ``experiments/temperflow.py``
wrote into ``<runs>/<target>-<name>`` (2-D; ``RUNS_2D``) or ``<runs>/p<dim>-<method>``
(Clayton; ``CLAYTON_RUNS``) and writes one JSON file into ``--out``
(``docs/results``): ``temperflow_2d.json``, a list of the 2-D runs' metrics, each
with ``run`` (its directory's name) and ``method`` (its name in ``RUNS_2D``), and
``temperflow_2d.png``, TemperFlow's samples beside the KL sampler's; or, for
Clayton, a list of ``{"p": p, "<method>": metrics, ...}`` rows, one per p whose
runs are all there, into the file of ``--recipe`` (``CLAYTON_RECIPES``: the
``RECIPE`` that ``experiments/scripts/temperflow_clayton.sh`` ran). The
Markdown tables are rendered from these files by ``docs/generate_tables.py``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Dict, List, Optional

import numpy as np
from absl import app, flags

from gmjax.targets import build_target
from gmjax.viz.figure import plane_axes, plt, save_figure

FLAGS = flags.FLAGS

TARGETS_2D = ("circle", "grid", "cross")
# The 2-D runs, in table order: <runs>/<target>-<name>. "l2-fixed-grid" is TemperFlow with
# --config.sampler.beta_schedule=fixed_grid (the fixed-beta-grid ablation).
RUNS_2D = ("temperflow", "kl", "l2-fixed-grid", "mh", "hmc", "pt")
DIMS = (8, 16, 32, 64)
CLAYTON_RUNS = ("temperflow", "mh", "hmc", "pt")

# The RECIPE of experiments/scripts/temperflow_clayton.sh -> the JSON file its table reads.
CLAYTON_RECIPES = {"l2": "temperflow_clayton", "forward_kl": "temperflow_clayton_forward_kl"}


def load(path: str) -> Optional[Dict[str, Any]]:
    """A run's ``metrics.json``, or ``None`` when it has none (not run, or not finished)."""
    file = os.path.join(path, "metrics.json")
    if not os.path.exists(file):
        return None
    with open(file) as f:
        return json.load(f)


def rows_2d(runs: str) -> List[Dict[str, Any]]:
    """The 2-D runs' metrics, by target then ``RUNS_2D``."""
    rows = []
    for target in TARGETS_2D:
        for name in RUNS_2D:
            m = load(os.path.join(runs, f"{target}-{name}"))
            if m is not None:
                rows.append(dict(m, run=f"{target}-{name}", method=name))
    return rows


def rows_clayton(runs: str) -> List[Dict[str, Any]]:
    """One row per p with every run of ``CLAYTON_RUNS``; the p with only some are named on
    stderr and left out (the table has a column for each)."""
    rows = []
    for p in DIMS:
        found = {name: load(os.path.join(runs, f"p{p}-{name}")) for name in CLAYTON_RUNS}
        missing = [name for name, m in found.items() if m is None]
        if len(missing) == len(found):
            continue
        if missing:
            print(f"p = {p} left out: no finished {', '.join(missing)} run in {runs}",
                  file=sys.stderr)
            continue
        rows.append({"p": p, **found})
    return rows


def figure_2d(runs: str, out: str) -> str:
    """Samples of TemperFlow (top) and the KL sampler (bottom) on each target."""
    fig, axes = plt.subplots(2, 3, figsize=(10, 6.8), squeeze=False)
    for col, target in enumerate(TARGETS_2D):
        modes = build_target(target).modes()
        for row, method in enumerate(("temperflow", "kl")):
            ax = axes[row, col]
            path = os.path.join(runs, f"{target}-{method}", "samples.npy")
            if os.path.exists(path):
                x = np.load(path)[:5000]
                ax.scatter(x[:, 0], x[:, 1], s=1, alpha=0.3)
            m = load(os.path.join(runs, f"{target}-{method}")) or {}
            c = np.asarray(modes.centres)
            ax.scatter(c[:, 0], c[:, 1], marker="x", color="k", s=30)
            plane_axes(ax, f"{method} on {target}: {m.get('modes_captured', '?')}/"
                           f"{m.get('num_modes', '?')} modes", (-8, 8, -8, 8))
    return save_figure(fig, os.path.join(out, "temperflow_2d.png"),
                       "TemperFlow (top) vs the KL sampler (bottom), same flow and seed; "
                       "x: the mode centres")


def write_json(out: str, name: str, rows: List[Dict[str, Any]]) -> str:
    """Writes ``rows`` to ``<out>/<name>.json``; returns the path."""
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, f"{name}.json")
    with open(path, "w") as f:
        json.dump(rows, f, indent=2, sort_keys=True)
    return path


def main(argv):
    del argv
    if not FLAGS.runs:
        raise app.UsageError("--runs is required (the directory the runs were written to)")
    rows = rows_2d(FLAGS.runs) if FLAGS.kind == "2d" else rows_clayton(FLAGS.runs)
    if not rows:  # before writing: an empty file would empty the docs' table
        raise app.UsageError(f"no finished runs under {FLAGS.runs}")
    if FLAGS.kind == "2d":
        written = [write_json(FLAGS.out, "temperflow_2d", rows), figure_2d(FLAGS.runs, FLAGS.out)]
    else:
        written = [write_json(FLAGS.out, CLAYTON_RECIPES[FLAGS.recipe], rows)]
    print(f"wrote {' and '.join(written)} ({len(rows)} rows); render the tables with "
          f"python3 docs/generate_tables.py")


def define_flags() -> None:
    """Defines the command line; not at import, so tests can import the table functions
    beside other scripts that define flags of the same names."""
    flags.DEFINE_enum("kind", "2d", ["2d", "clayton"], "Which table's runs to collect.")
    flags.DEFINE_string("runs", None, "Directory holding the runs.")
    flags.DEFINE_enum("recipe", "l2", list(CLAYTON_RECIPES),
                      "Clayton only: the RECIPE experiments/scripts/temperflow_clayton.sh ran.")
    flags.DEFINE_string("out", "docs/results", "Where the JSON (and the 2-D figure) go.")


if __name__ == "__main__":
    define_flags()
    app.run(main)
