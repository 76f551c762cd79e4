"""Collects the runs of experiments/scripts/ebm_temperflow.sh into one JSON file and a table.

    python experiments/ebm_temperflow_table.py --runs runs/ebm_temperflow \
        --out docs/results/ebm_temperflow.json

The samplers' ``mode_weight_tv`` in their ``metrics.json`` is measured against the
data's equal weights, so it mixes the energy's own misfit into the sampler's error.
Here each sampler is also scored against the learned density's own mode weights,
computed by a Riemann sum of exp(-E) on a grid (exact up to the grid, in 2-D): every
grid cell goes to its nearest data component, as every sample does
(``target.weight_indicators``). ``weight_tv_to_energy`` is then the sampler's error alone.
"""

from __future__ import annotations

import json
import os

import jax.numpy as jnp
import numpy as np
from absl import app, flags

from gmjax.models.ebm import energy_on_grid, learned_ebm_target

FLAGS = flags.FLAGS
METHODS = ("temperflow", "mh", "hmc", "pt")
BOX = (-8.0, 8.0, -8.0, 8.0)  # the noise box of ebm_toy.py with room to spare


def energy_mode_weights(target, resolution: int) -> np.ndarray:
    """The learned density's mass nearest each data component (a grid Riemann sum)."""
    xs, ys, energy = energy_on_grid(lambda x: -np.asarray(target.log_prob(x)), BOX, resolution)
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2).astype(np.float32)
    owner = np.asarray(target.weight_indicators(jnp.asarray(grid))).argmax(1)
    mass = np.exp(-(energy.ravel() - energy.min()))
    weights = np.bincount(owner, weights=mass, minlength=len(target.modes().centres))
    return weights / weights.sum()


def main(argv) -> None:
    del argv
    runs = FLAGS.runs
    ebm = json.load(open(os.path.join(runs, "ebm", "metrics.json")))
    target = learned_ebm_target(os.path.join(runs, "ebm"))
    w_energy = energy_mode_weights(target, FLAGS.resolution)
    result = {"ebm": ebm, "energy_mode_weights": w_energy.tolist(), "samplers": {}}
    print(f"EBM: test NLL {ebm['test_nll']:.3f} (excess {ebm['nll_excess']:.3f}), Langevin MMD "
          f"{ebm['mmd']:.5f}, modes {ebm['modes_captured']}/{ebm['num_modes']}")
    print("energy's own mode weights:", np.round(w_energy, 3).tolist())
    print(f"{'method':<11} modes  hq     tv_data  tv_energy  max_err_energy  seconds")
    for method in METHODS:
        path = os.path.join(runs, method)
        if not os.path.exists(os.path.join(path, "metrics.json")):
            continue
        m = json.load(open(os.path.join(path, "metrics.json")))
        samples = np.load(os.path.join(path, "samples.npy"))
        q = np.asarray(target.weight_indicators(jnp.asarray(samples))).mean(0)
        m["weight_tv_to_energy"] = float(0.5 * np.abs(q - w_energy).sum())
        m["weight_max_error_to_energy"] = float(np.abs(q - w_energy).max())
        seconds = m["train_seconds"] + m["sample_seconds"]
        result["samplers"][method] = m
        print(f"{method:<11} {m['modes_captured']}/{m['num_modes']}    "
              f"{m['high_quality_frac']:.3f}  {m['mode_weight_tv']:.3f}    "
              f"{m['weight_tv_to_energy']:.3f}      {m['weight_max_error_to_energy']:.3f}"
              f"           {seconds:.1f}")
    if FLAGS.out:
        with open(FLAGS.out, "w") as f:
            json.dump(result, f, indent=2, sort_keys=True)


def define_flags() -> None:
    """Defines the command line; not at import, so tests can import the functions."""
    flags.DEFINE_string("runs", "runs/ebm_temperflow", "The RUNS of ebm_temperflow.sh.")
    flags.DEFINE_string("out", "", "Where to write the JSON (default: print only).")
    flags.DEFINE_integer("resolution", 600, "Grid points a side for the energy's mode weights.")


if __name__ == "__main__":
    define_flags()
    app.run(main)
