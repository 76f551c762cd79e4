"""Runs and collects the GAN mode-coverage table on the 25-mode grid.

    python -m experiments.gan_table --train --runs=runs/gan_grid   # trains what is missing
    python -m experiments.gan_table --runs=runs/gan_grid           # collects only
    python3 docs/generate_tables.py   # renders the table into docs/gan.md

Each configuration of ``CONFIGS`` is ``experiments/gan.py`` on
``experiments/configs/gan_grid.py`` with ``BASE_OPTIONS`` and its own
options, trained once per seed into ``<runs>/<name>_s<seed>``
(``--seeds``, default 0..4). With
``--train`` the runs without a ``metrics.json`` are trained first, one
after the other, by the command line ``COMMAND`` names. The script then reads every
run's ``metrics.json`` and writes ``--out`` (``docs/results/gan_modes.json``):
per configuration its options, the mean and standard error over seeds of
``modes_captured`` and ``high_quality_frac`` (the PacGAN protocol on 2,500
draws of the averaged generator), and the per-seed metrics.
``docs/generate_tables.py`` renders the table from that file.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from typing import Any, Dict, List, Optional

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS

BASE_OPTIONS = ("--config.train.steps=4000 --config.train.steps_per_call=50 "
                "--config.train.log_every=500 --config.train.eval_every=1000 "
                "--config.train.checkpoint_every=4000")
COMMAND = ("python3 -m experiments.gan --config experiments/configs/gan_grid.py "
           "--config.seed=SEED " + BASE_OPTIONS + " OPTIONS --workdir RUNS/NAME_sSEED")
# name -> (options after BASE_OPTIONS, what the row shows). Later options win.
CONFIGS: Dict[str, Dict[str, Any]] = {
    "non_saturating": {"options": "", "label": "non-saturating GAN"},
    "pacgan4": {"options": "--config.model.remedy=pacgan --config.model.pack=4",
                "label": "PacGAN4"},
    "minibatch": {"options": "--config.model.remedy=minibatch",
                  "label": "minibatch discrimination"},
    "hinge": {"options": "--config.model.loss=hinge", "label": "hinge"},
    "hinge_sn": {"options": "--config.model.loss=hinge --config.model.spectral_norm=True",
                 "label": "hinge + spectral norm"},
    "wide_cosine": {"options": "--config.model.hidden=256,256,256 --config.optim.schedule=cosine "
                               "--config.train.steps=12000 --config.train.checkpoint_every=12000",
                    "label": "non-saturating, 3 x 256, cosine lr, 12,000 steps"},
    "wide_cosine_b512": {
        "options": "--config.model.hidden=256,256,256 --config.optim.schedule=cosine "
                   "--config.data.batch_size=512 --config.train.steps=8000 "
                   "--config.train.checkpoint_every=8000",
        "label": "non-saturating, 3 x 256, cosine lr, batch 512, 8,000 steps"},
}
PUBLISHED = {
    "source": "Lin et al., 2018, PacGAN, Table 1 (grid)",
    "GAN": {"modes": 17.3, "high_quality_percent": 94.8},
    "PacGAN4": {"modes": 24.8, "high_quality_percent": 93.6},
}
KEPT = ("modes_captured", "high_quality_frac", "raw_modes_captured", "raw_high_quality_frac",
        "train_seconds", "steps")


def workdir(runs: str, name: str, seed: int) -> str:
    return os.path.join(runs, f"{name}_s{seed}")


def command(runs: str, name: str, seed: int) -> List[str]:
    """The command line that trains configuration ``name`` with ``seed``."""
    line = (COMMAND.replace("SEED", str(seed)).replace("OPTIONS", CONFIGS[name]["options"])
            .replace("RUNS/NAME_s" + str(seed), workdir(runs, name, seed)))
    return [sys.executable if part == "python3" else part for part in shlex.split(line)]


def load(path: str) -> Optional[Dict[str, Any]]:
    """A run's ``metrics.json``, or ``None`` when it has none (not run, or not finished)."""
    file = os.path.join(path, "metrics.json")
    if not os.path.exists(file):
        return None
    with open(file) as f:
        return json.load(f)


def summary(runs: str, names: List[str], seeds: List[int]) -> Dict[str, Any]:
    """The JSON of the table: per configuration, mean and standard error over its seeds."""
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
        configs[name] = {"options": CONFIGS[name]["options"], "label": CONFIGS[name]["label"],
                         "seeds": len(per_seed), "modes_mean": float(modes.mean()),
                         "modes_se": se(modes), "high_quality_mean": float(quality.mean()),
                         "high_quality_se": se(quality),
                         "all_seeds_25_modes_90_percent": bool(
                             np.all(modes == 25) and np.all(quality >= 0.9)),
                         "per_seed": per_seed}
    return {
        "description": "Mode coverage on the 25-mode grid ({-4,-2,0,2,4}^2, sd 0.05), PacGAN "
                       "protocol on 2,500 samples of the EMA generator (decay 0.99); batch "
                       "256, MLPs 3 x 128 unless the options say otherwise, Adam lr 1e-3 b1 "
                       "0.5 for both players, 4,000 outer steps unless the options say "
                       "otherwise; mean and standard error over seeds.",
        "command": f"python3 -m experiments.gan_table --train --runs={runs} "
                   f"--seeds={','.join(map(str, seeds))} (each run: {COMMAND}, OPTIONS per "
                   f"configuration in configs.<NAME>.options)",
        "hardware": "2 shared CPU cores",
        "published": PUBLISHED,
        "configs": configs,
    }


def main(argv):
    del argv
    names = FLAGS.configs.split(",") if FLAGS.configs else list(CONFIGS)
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        raise app.UsageError(f"unknown --configs {unknown}; valid: {', '.join(CONFIGS)}")
    try:
        seeds = [int(s) for s in FLAGS.seeds.split(",") if s]
    except ValueError:
        raise app.UsageError(f"--seeds must be comma-separated integers, got {FLAGS.seeds!r}")
    if not seeds:
        raise app.UsageError("--seeds is empty")
    if FLAGS.train:
        for name in names:
            for seed in seeds:
                if load(workdir(FLAGS.runs, name, seed)) is None:
                    cmd = command(FLAGS.runs, name, seed)
                    print(" ".join(cmd), flush=True)
                    subprocess.run(cmd, check=True)
    result = summary(FLAGS.runs, names, seeds)
    if not result["configs"]:
        raise app.UsageError(f"no finished runs under {FLAGS.runs} (train them with --train)")
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
    previous = {}
    if FLAGS.merge and os.path.exists(FLAGS.out):
        with open(FLAGS.out) as f:
            previous = json.load(f).get("configs", {})
    result["configs"] = {**{k: v for k, v in previous.items() if k in CONFIGS},
                         **result["configs"]}
    result["configs"] = {k: result["configs"][k] for k in CONFIGS if k in result["configs"]}
    with open(FLAGS.out, "w") as f:
        json.dump(result, f, indent=1)
    for name, row in result["configs"].items():
        print(f"{name:16s} {row['modes_mean']:5.1f} ± {row['modes_se']:.1f} modes, "
              f"{100 * row['high_quality_mean']:5.1f} ± {100 * row['high_quality_se']:.1f}% HQ "
              f"({row['seeds']} seeds)")
    print(f"wrote {FLAGS.out}")


def define_flags() -> None:
    flags.DEFINE_string("runs", "runs/gan_grid", "Directory of the runs.")
    flags.DEFINE_string("seeds", "0,1,2,3,4", "Comma-separated seeds.")
    flags.DEFINE_string("configs", "", f"Comma-separated subset of: {', '.join(CONFIGS)} "
                                       f"(default: all).")
    flags.DEFINE_bool("train", False, "Train the runs that have no metrics.json first.")
    flags.DEFINE_bool("merge", True, "Keep the configurations of --out that this call does "
                                     "not collect.")
    flags.DEFINE_string("out", "docs/results/gan_modes.json", "The JSON written.")


if __name__ == "__main__":
    define_flags()
    app.run(main)
