"""TemperFlow's published claims on the 2-D targets (slow: about 2 minutes per target on 2 cores).

    python3 -m pytest -m slow tests/test_temperflow_targets.py

With the default config (experiments/configs/temperflow_2d.py) and seed 0,
TemperFlow captures every mode of circle, grid and cross with every mode
weight within 0.03 of the truth, while the reverse-KL sampler, same flow and
seed, drops modes or mis-weights them (seed 0: 5/8 circle modes, 7/25 grid
modes, cross weights off by 0.077 against TemperFlow's 0.007).
"""

import json
import os
import subprocess
import sys

import pytest

CONFIG = os.path.join("experiments", "configs", "temperflow_2d.py")


def run(repo_root, workdir, *args):
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=repo_root)
    out = subprocess.run([sys.executable, os.path.join("experiments", "temperflow.py"),
                          f"--config={CONFIG}", f"--workdir={workdir}", *args],
                         cwd=repo_root, env=env, capture_output=True, text=True, timeout=3600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads((workdir / "metrics.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("target", ["circle", "grid", "cross"])
def test_temperflow_captures_every_mode_and_kl_drops_some(repo_root, tmp_path, target):
    tf = run(repo_root, tmp_path / "tf", f"--config.data.name={target}")
    assert tf["modes_captured"] == tf["num_modes"], tf
    assert tf["mode_weight_max_error"] < 0.03, tf
    kl = run(repo_root, tmp_path / "kl", f"--config.data.name={target}", "--config.method=kl",
             "--config.sampler.steps_init=2000", "--config.sampler.steps_final=2000")
    assert (kl["modes_captured"] < kl["num_modes"]
            or kl["mode_weight_max_error"] > 5 * tf["mode_weight_max_error"]), (kl, tf)
