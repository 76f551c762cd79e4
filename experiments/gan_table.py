"""Runs and collects the GAN mode-coverage tables on the 8-mode ring and the 25-mode grid.

    python -m experiments.gan_table --data=ring --train   # trains what is missing
    python -m experiments.gan_table --data=grid --train --runs=runs/gan_grid
    python -m experiments.gan_table --data=grid           # collects only
    python3 docs/generate_tables.py   # renders the tables into docs/gan.md

``TABLES[data]`` names, per data set, the config file, the base options and
the configurations: each is ``experiments/gan.py`` on
``experiments/configs/gan_<data>.py`` with the table's base options and its
own options, trained once per seed into ``<runs>/<name>_s<seed>``
(``--runs``, default ``runs/gan_<data>``; ``--seeds``, default 0..4). With
``--train`` the runs without a ``metrics.json`` are trained first, one after
the other, by the command line ``command`` returns. The script then reads
every run's ``metrics.json`` and writes ``--out`` (default the table's
``out``: ``docs/results/gan_modes.json`` for the grid,
``docs/results/gan_modes_ring.json`` for the ring): per configuration its
options, the mean and standard error over seeds of ``modes_captured`` and
``high_quality_frac`` (the PacGAN protocol on 2,500 draws of the averaged
generator), and the per-seed metrics. ``docs/generate_tables.py`` renders
each table from its file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import subprocess
import sys
from typing import Any, Dict, List, Optional

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS


@dataclasses.dataclass(frozen=True)
class Table:
    """One mode-coverage table: the data, its runs' base options and its configurations.

    ``configs`` maps a name to ``{"options": ..., "label": ...}``: options after
    ``base`` (later options win) and what the row shows.
    """
    data: str
    num_modes: int
    base: str
    configs: Dict[str, Dict[str, str]]
    published: Dict[str, Any]
    out: str
    description: str

    @property
    def command(self) -> str:
        """The command line of one run, with SEED, OPTIONS and RUNS/NAME_sSEED to fill in."""
        return (f"python3 -m experiments.gan --config experiments/configs/gan_{self.data}.py "
                f"--config.seed=SEED {self.base} OPTIONS --workdir RUNS/NAME_sSEED")


# Rows both tables have: the plain game, a loss, a normalized critic, the remedies.
WGAN_GP = {"options": "--config.model.loss=wgan_gp --config.train.critic_steps=5",
           "label": "WGAN-GP (5 critic updates per generator update)"}
HINGE_SN = {"options": "--config.model.loss=hinge --config.model.spectral_norm=True",
            "label": "hinge + spectral norm"}
UNROLLED = {"options": "--config.model.remedy=unrolled",
            "label": "unrolled (5 SGD critic steps, rate 0.01)"}
PACGAN2 = {"options": "--config.model.remedy=pacgan --config.model.pack=2", "label": "PacGAN2"}
MINIBATCH = {"options": "--config.model.remedy=minibatch", "label": "minibatch discrimination"}

GRID = Table(
    data="grid", num_modes=25,
    base=("--config.train.steps=4000 --config.train.steps_per_call=50 "
          "--config.train.log_every=500 --config.train.eval_every=1000 "
          "--config.train.checkpoint_every=4000"),
    configs={
        "non_saturating": {"options": "", "label": "non-saturating GAN"},
        "pacgan4": {"options": "--config.model.remedy=pacgan --config.model.pack=4",
                    "label": "PacGAN4"},
        "minibatch": MINIBATCH,
        "hinge": {"options": "--config.model.loss=hinge", "label": "hinge"},
        "hinge_sn": HINGE_SN,
        "wgan_gp": WGAN_GP,
        "unrolled": UNROLLED,
        "pacgan2": PACGAN2,
        "wide_cosine": {
            "options": "--config.model.hidden=256,256,256 --config.optim.schedule=cosine "
                       "--config.train.steps=12000 --config.train.checkpoint_every=12000",
            "label": "non-saturating, 3 x 256, cosine lr, 12,000 steps"},
        "wide_cosine_b512": {
            "options": "--config.model.hidden=256,256,256 --config.optim.schedule=cosine "
                       "--config.data.batch_size=512 --config.train.steps=8000 "
                       "--config.train.checkpoint_every=8000",
            "label": "non-saturating, 3 x 256, cosine lr, batch 512, 8,000 steps"},
        "r1_wide": {
            "options": "--config.model.penalty=r1 --config.model.penalty_weight=0.1 "
                       "--config.model.hidden=256,256,256 --config.optim.schedule=cosine "
                       "--config.train.ema_decay=0.999 --config.train.steps=16000 "
                       "--config.train.checkpoint_every=16000",
            "label": "non-saturating + R1 (gamma 0.1), 3 x 256, cosine lr, EMA 0.999, "
                     "16,000 steps"},
        "cosine_ema": {
            "options": "--config.optim.schedule=cosine --config.train.ema_decay=0.999 "
                       "--config.train.steps=8000 --config.train.checkpoint_every=8000",
            "label": "non-saturating, 3 x 128, cosine lr, EMA 0.999, 8,000 steps"},
    },
    published={"source": "Lin et al., 2018, PacGAN, Table 1 (grid)",
               "rows": {"GAN": {"modes": 17.3, "high_quality_percent": 94.8},
                        "PacGAN4": {"modes": 24.8, "high_quality_percent": 93.6}}},
    out="docs/results/gan_modes.json",
    description="Mode coverage on the 25-mode grid ({-4,-2,0,2,4}^2, sd 0.05), PacGAN "
                "protocol on 2,500 samples of the EMA generator; batch 256, MLPs 3 x 128, "
                "EMA decay 0.99 unless the options say otherwise, Adam lr 1e-3 b1 "
                "0.5 for both players, 4,000 outer steps unless the options say "
                "otherwise; mean and standard error over seeds.")

RING = Table(
    data="ring", num_modes=8,
    base=("--config.train.steps=2000 --config.train.steps_per_call=50 "
          "--config.train.log_every=500 --config.train.eval_every=500 "
          "--config.train.checkpoint_every=2000"),
    configs={
        "non_saturating": {"options": "", "label": "non-saturating GAN"},
        "wgan_gp": WGAN_GP,
        "hinge_sn": HINGE_SN,
        "unrolled": UNROLLED,
        "pacgan2": PACGAN2,
        "minibatch": MINIBATCH,
    },
    published={},
    out="docs/results/gan_modes_ring.json",
    description="Mode coverage on the 8-mode ring (radius 1, sd 0.01), PacGAN protocol on "
                "2,500 samples of the EMA generator (decay 0.99); batch 256, MLPs 3 x 128, "
                "Adam lr 1e-3 b1 0.5 for both players, 2,000 outer steps (one critic update and "
                "one generator update unless the options say otherwise); mean and standard "
                "error over seeds.")

TABLES: Dict[str, Table] = {"grid": GRID, "ring": RING}
KEPT = ("modes_captured", "high_quality_frac", "raw_modes_captured", "raw_high_quality_frac",
        "train_seconds", "steps")


def workdir(runs: str, name: str, seed: int) -> str:
    return os.path.join(runs, f"{name}_s{seed}")


def command(runs: str, name: str, seed: int, data: str = "grid") -> List[str]:
    """The command line that trains configuration ``name`` of table ``data`` with ``seed``."""
    table = TABLES[data]
    line = (table.command.replace("SEED", str(seed))
            .replace("OPTIONS", table.configs[name]["options"])
            .replace("RUNS/NAME_s" + str(seed), workdir(runs, name, seed)))
    return [sys.executable if part == "python3" else part for part in shlex.split(line)]


def load(path: str) -> Optional[Dict[str, Any]]:
    """A run's ``metrics.json``, or ``None`` when it has none (not run, or not finished)."""
    file = os.path.join(path, "metrics.json")
    if not os.path.exists(file):
        return None
    with open(file) as f:
        return json.load(f)


def summary(runs: str, names: List[str], seeds: List[int], data: str = "grid") -> Dict[str, Any]:
    """The JSON of a table: per configuration, mean and standard error over its seeds."""
    table = TABLES[data]
    all_modes = f"all_seeds_{table.num_modes}_modes_90_percent"
    configs = {}
    for name in names:
        per_seed = []
        for seed in seeds:
            metrics = load(workdir(runs, name, seed))
            if metrics is not None:
                per_seed.append({"seed": seed, **{k: metrics[k] for k in KEPT if k in metrics}})
        if not per_seed:
            continue
        modes = np.array([r["modes_captured"] for r in per_seed], float)
        quality = np.array([r["high_quality_frac"] for r in per_seed], float)
        se = (lambda v: float(np.std(v, ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0)
        row = table.configs[name]
        configs[name] = {"options": row["options"], "label": row["label"],
                         "seeds": len(per_seed), "modes_mean": float(modes.mean()),
                         "modes_se": se(modes), "high_quality_mean": float(quality.mean()),
                         "high_quality_se": se(quality),
                         all_modes: bool(np.all(modes == table.num_modes)
                                         and np.all(quality >= 0.9)),
                         "per_seed": per_seed}
    return {
        "description": table.description,
        "data": data,
        "num_modes": table.num_modes,
        "command": f"python3 -m experiments.gan_table --data={data} --train --runs={runs} "
                   f"--seeds={','.join(map(str, seeds))} (each run: {table.command}, OPTIONS "
                   f"per configuration in configs.<NAME>.options)",
        "hardware": "2 shared CPU cores",
        "published": table.published,
        "configs": configs,
    }


def main(argv):
    del argv
    if FLAGS.data not in TABLES:
        raise app.UsageError(f"unknown --data={FLAGS.data!r}; valid: {', '.join(TABLES)}")
    table = TABLES[FLAGS.data]
    names = FLAGS.configs.split(",") if FLAGS.configs else list(table.configs)
    unknown = [n for n in names if n not in table.configs]
    if unknown:
        raise app.UsageError(f"unknown --configs {unknown} for --data={table.data}; valid: "
                             f"{', '.join(table.configs)}")
    try:
        seeds = [int(s) for s in FLAGS.seeds.split(",") if s]
    except ValueError:
        raise app.UsageError(f"--seeds must be comma-separated integers, got {FLAGS.seeds!r}")
    if not seeds:
        raise app.UsageError("--seeds is empty")
    runs = FLAGS.runs or os.path.join("runs", f"gan_{table.data}")
    out = FLAGS.out or table.out
    if FLAGS.train:
        for name in names:
            for seed in seeds:
                if load(workdir(runs, name, seed)) is None:
                    cmd = command(runs, name, seed, table.data)
                    print(" ".join(cmd), flush=True)
                    subprocess.run(cmd, check=True)
    result = summary(runs, names, seeds, table.data)
    if not result["configs"]:
        raise app.UsageError(f"no finished runs under {runs} (train them with --train)")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    previous = {}
    if FLAGS.merge and os.path.exists(out):
        with open(out) as f:
            previous = json.load(f).get("configs", {})
    kept = {k: {**v, "label": table.configs[k]["label"]}  # rows of earlier calls
            for k, v in previous.items() if k in table.configs}
    result["configs"] = {**kept, **result["configs"]}
    result["configs"] = {k: result["configs"][k] for k in table.configs
                         if k in result["configs"]}
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    for name, row in result["configs"].items():
        print(f"{name:16s} {row['modes_mean']:5.1f} ± {row['modes_se']:.1f} modes, "
              f"{100 * row['high_quality_mean']:5.1f} ± {100 * row['high_quality_se']:.1f}% HQ "
              f"({row['seeds']} seeds)")
    print(f"wrote {out}")


def define_flags() -> None:
    flags.DEFINE_string("data", "grid", f"The table: {' | '.join(TABLES)}.")
    flags.DEFINE_string("runs", "", "Directory of the runs (default: runs/gan_<data>).")
    flags.DEFINE_string("seeds", "0,1,2,3,4", "Comma-separated seeds.")
    flags.DEFINE_string("configs", "", "Comma-separated subset of the table's configurations "
                                       "(default: all): " + "; ".join(
                                           f"{t.data}: {', '.join(t.configs)}"
                                           for t in TABLES.values()))
    flags.DEFINE_bool("train", False, "Train the runs that have no metrics.json first.")
    flags.DEFINE_bool("merge", True, "Keep the configurations of --out that this call does "
                                     "not collect.")
    flags.DEFINE_string("out", "", "The JSON written (default: the table's, "
                                   "docs/results/gan_modes.json or gan_modes_ring.json).")


if __name__ == "__main__":
    define_flags()
    app.run(main)
