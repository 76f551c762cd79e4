"""experiments/gan.py on 2-D data: a tiny run end to end, its resume, and bad input refused."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from experiments import gan as gan_experiment
from experiments.configs import gan_ring
from gmjax import experiment
from gmjax.training import Checkpointer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_config(steps: int = 20, **model):
    config = gan_ring.get_config()
    config.data.num_train = 1_024
    config.data.batch_size = 64
    config.model.hidden = (16, 16)
    config.train.steps = steps
    config.train.log_every = 10
    config.train.eval_every = 10
    config.train.checkpoint_every = 10
    config.eval.num_samples = 256
    config.eval.panels = 3
    for name, value in model.items():
        config.model[name] = value
    return config


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory):
    """A 20-step spectral-norm hinge run (a game with state) resumed to 30: (workdir, metrics)."""
    workdir = str(tmp_path_factory.mktemp("gan_ring"))
    config = lambda steps: tiny_config(steps, loss="hinge", spectral_norm=True)

    first = experiment.run(gan_experiment.EXPERIMENT, config(20), workdir)
    assert first["steps"] == 20
    return workdir, experiment.run(gan_experiment.EXPERIMENT, config(30), workdir)


def test_a_tiny_ring_run_writes_the_contract_and_resumes(ring_run):
    workdir, metrics = ring_run
    for name in ("config.json", "metrics.jsonl", "metrics.json", "samples.png", "critic.png",
                 "curves.png"):
        assert os.path.isfile(os.path.join(workdir, name)), name
    assert metrics["steps"] == 30
    assert 0 <= metrics["modes_captured"] <= 8 and 0.0 <= metrics["high_quality_frac"] <= 1.0
    for name in ("raw_modes_captured", "train_critic_loss", "train_gen_loss", "train_seconds"):
        assert np.isfinite(metrics[name]), name
    saved = json.load(open(os.path.join(workdir, "metrics.json")))
    assert saved["modes_captured"] == metrics["modes_captured"] and saved["steps"] == 30
    records = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    # Resumed from checkpoint 20: the train logs continue, nothing is repeated.
    assert [r["step"] for r in records if r["split"] == "train"] == [10, 20, 30]
    assert [r["step"] for r in records if r["split"] == "eval"] == [10, 20, 30]
    assert Checkpointer(os.path.join(workdir, "checkpoints")).latest_step() == 30
    snapshots = sorted(os.listdir(os.path.join(workdir, "snapshots")))
    assert snapshots == ["step_00000010.npy", "step_00000020.npy", "step_00000030.npy"]


@pytest.mark.parametrize("model, train, message", [
    ({"loss": "wasserstein"}, {}, "valid choices: began, .*wgan_gp"),
    ({"loss": "fgan_chi2"}, {}, "valid choices: .*fgan_hellinger, fgan_js"),
    ({"remedy": "unrolled_99"}, {}, "valid choices: feature_matching, minibatch, none, pacgan"),
    ({"loss": "wgan", "penalty": "gp"}, {}, "weight clipping .* gradient"),
    ({"penalty": "l2"}, {}, "valid choices: default, dragan, gp, none, r1, r2"),
    ({}, {"critic_steps": 0}, "critic_steps=0 must be positive"),
    ({"loss": "began"}, {}, "autoencoder"),
])
def test_bad_input_is_refused_before_training(tmp_path, model, train, message):
    config = tiny_config(**model)
    for name, value in train.items():
        config.train[name] = value
    with pytest.raises(experiment.ConfigError, match=message):
        experiment.run(gan_experiment.EXPERIMENT, config, str(tmp_path))
    assert not os.path.exists(tmp_path / "checkpoints")


def test_the_command_line_exits_2_naming_the_valid_choices(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "experiments.gan", "--config", "experiments/configs/gan_ring.py",
         "--config.model.remedy=bogus", "--workdir", str(tmp_path / "run")],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    valid = "valid choices: feature_matching, minibatch, none, pacgan, unrolled"
    assert valid in done.stderr + done.stdout
