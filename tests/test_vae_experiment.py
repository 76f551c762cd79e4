"""experiments/vae.py end to end on the 8x8 digits, its refusals, the quick-start section, the
gradient-variance study and the VAE figures."""

import json
import math
import os
import re
import subprocess
import sys

import matplotlib.pyplot as plt
import numpy as np
import pytest

from gmjax.viz import figure
from gmjax.viz.vae import plot_gradient_variance, plot_latent_scatter

DIGITS = os.path.join("experiments", "configs", "vae_digits.py")
TOY = os.path.join("experiments", "configs", "vae_toy.py")
TINY = ["--config.train.steps=40", "--config.train.log_every=20", "--config.train.eval_every=20",
        "--config.train.checkpoint_every=20", "--config.model.hidden=(32,)",
        "--config.eval.is_samples=20", "--config.eval.iwae_samples=5"]


def script(repo_root, name, *args):
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=repo_root)
    return subprocess.run([sys.executable, os.path.join("experiments", name), *args],
                          cwd=repo_root, env=env, capture_output=True, text=True, timeout=600)


def test_a_digits_run_writes_the_contract_and_resumes(repo_root, tmp_path):
    args = [f"--config={DIGITS}", *TINY, f"--workdir={tmp_path}",
            "--config.model.latent_dim=2", "--config.eval.manifold=True",
            "--config.eval.amortization_gap=True", "--config.eval.gap_examples=10",
            "--config.eval.gap_steps=5"]
    out = script(repo_root, "vae.py", *args)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "ConfigContractWarning" not in out.stderr  # the run read what it declared
    m = json.load(open(tmp_path / "metrics.json"))
    assert m["steps"] == 40 and m["is_samples"] == 20 and m["iwae_k_samples"] == 5
    # L_1 (the ELBO) <= L_5 <= L_20 in expectation; the draws differ, so a little slack.
    assert m["elbo"] < m["iwae_k"] + 0.05 and m["iwae_k"] < m["is_log_likelihood"] + 0.05
    assert m["is_log_likelihood"] < 0 and 0 < m["is_log_likelihood_stderr"] < 1
    assert m["bits_per_dim"] == pytest.approx(-m["is_log_likelihood"] / (64 * math.log(2)))
    # log p(x) - amortized ELBO = approximation gap + amortization gap.
    assert m["gap_log_likelihood"] - m["gap_amortized_elbo"] == pytest.approx(
        m["approximation_gap"] + m["amortization_gap"], abs=1e-6)
    for name in ("reconstructions", "samples", "interpolation", "manifold", "latent_scatter",
                 "curves"):
        assert (tmp_path / f"{name}.png").exists(), name

    # Resumes at the last checkpoint: no new steps (eval.* may change on a resume).
    again = script(repo_root, "vae.py", *args[:-4])
    assert again.returncode == 0, again.stderr[-3000:]
    steps = [r["step"] for r in map(json.loads, open(tmp_path / "metrics.jsonl"))
             if r["split"] == "train"]
    assert steps == [20, 40]
    assert json.load(open(tmp_path / "metrics.json"))["steps"] == 40


@pytest.mark.parametrize("override,message", [
    ("--config.objective.estimator=reinforce", "valid choices: dreg, score, stl, total"),
    ("--config.objective.name=vimco", "valid choices: elbo, iwae"),
])
def test_an_unknown_estimator_or_bound_exits_2_naming_the_valid_choices(repo_root, tmp_path,
                                                                       override, message):
    out = script(repo_root, "vae.py", f"--config={DIGITS}", f"--workdir={tmp_path / 'run'}",
                 override)
    assert out.returncode == 2, out.stderr[-2000:]
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("config_name,changes,message", [
    ("vae_digits", {"objective.num_samples": 0}, "objective.num_samples=0 must be positive"),
    ("vae_digits", {"objective.binarize": "none"},
     "needs binary data, but digits holds grey-level images; use "
     "--config.objective.binarize=dynamic or --config.model.likelihood=gaussian"),
    ("vae_digits", {"eval.manifold": True}, "need --config.model.latent_dim=2 (got 8)"),
    ("vae_digits", {"model.net": "conv", "data.name": "8gaussians"},
     "model.net='conv' takes images [h, w, c]"),
    ("vae_toy", {"model.likelihood": "bernoulli"}, "needs binary data, but moons holds"),
    ("vae_toy", {"model.variance": "learnt"}, "valid choices: fixed, learned"),
    ("vae_toy", {"objective.binarize": "dynamic"}, "valid choice here: 'none'"),
    ("vae_mnist", {"eval.is_samples": 1}, "eval.is_samples must be >= 2"),
])
def test_bad_input_is_refused_before_any_work(config_name, changes, message):
    import importlib

    from gmjax.experiment import ConfigError, preflight

    from experiments import vae

    config = importlib.import_module(f"experiments.configs.{config_name}").get_config()
    for path, value in changes.items():
        block, field = path.split(".")
        config[block][field] = value
    with pytest.raises(ConfigError, match=re.escape(message)):
        preflight(vae.EXPERIMENT, config)


def test_the_objective_fields_that_an_estimator_does_not_read_are_declared():
    from experiments import vae
    from experiments.configs import vae_digits

    config = vae_digits.get_config()
    unread = vae.unread_fields(config)
    assert "objective.baseline" in unread and "objective.kl" not in unread
    config.objective.name = "iwae"
    unread = vae.unread_fields(config)
    assert {"objective.kl", "objective.beta", "objective.baseline"} <= set(unread)
    config.objective.estimator = "score"
    assert "objective.baseline" not in vae.unread_fields(config)
    config.model.name = "autoencoder"
    unread = vae.unread_fields(config)
    assert "objective.binarize" not in unread and "eval.is_samples" in unread


def test_the_quickstart_vae_section_passes_the_checks_before_any_work():
    from gmjax.experiment import contract_violations, preflight

    from experiments import quickstart

    section = quickstart.SECTIONS["vae_digits"](3_000)
    assert section.config.data.name == "digits" and section.config.model.latent_dim == 2
    assert section.config.train.steps == 1_500
    unread, reads = preflight(section.experiment, section.config, section.defaults)
    assert contract_violations(section.config, reads, unread) == []


def test_gradient_variance_study_writes_json_and_figure(tmp_path):
    from experiments import vae_gradient_variance as study

    assert study.checkpoint_steps(1000, 4) == [0, 10, 100, 1000]
    with pytest.raises(ValueError, match="num_checkpoints >= 2"):
        study.checkpoint_steps(1000, 1)
    summary = study.run(str(tmp_path), steps=2, num_checkpoints=2, num_draws=30, batch_size=20,
                        latent_dim=2, iwae_k=5, seed=0)
    saved = json.load(open(tmp_path / "gradient_variance.json"))
    assert saved["steps"] == summary["steps"] == [0, 2]
    assert (tmp_path / "gradient_variance.png").exists()
    variance = saved["variance"]
    assert all(len(v) == 2 and min(v) > 0 for v in variance.values())
    # DReG's encoder gradient is far less noisy than IWAE's total derivative (Tucker et al.).
    assert variance["IWAE k=5 dreg"][0] < variance["IWAE k=5 total"][0]


@pytest.fixture
def kept_figures(monkeypatch):
    kept = []
    close = plt.close
    monkeypatch.setattr(plt, "close", lambda fig=None: kept.append(fig))
    yield kept
    for fig in kept:
        close(fig)


def test_vae_figures_are_labelled(kept_figures, tmp_path):
    rng = np.random.default_rng(0)
    plot_latent_scatter(str(tmp_path / "scatter.png"), rng.normal(size=(100, 2)),
                        rng.integers(0, 10, 100), title="codes")
    plot_gradient_variance(str(tmp_path / "variance.png"), [0, 10, 100],
                           {"total": [3.0, 2.0, 1.0], "stl": [1.0, 0.5, 0.1]})
    assert len(kept_figures) == 2
    for fig in kept_figures:
        assert figure.unlabeled_axes(fig) == []
