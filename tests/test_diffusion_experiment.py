"""experiments/diffusion.py end to end on a toy density (DDPM, score SDE, NCSN), resume, its
refusals, the quick-start section, and few-step DDIM against its closed form."""

import importlib
import json
import math
import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gmjax.objectives.diffusion_process import make_schedule
from gmjax.samplers.diffusion import ddim_sample, ddim_timesteps

TOY = os.path.join("experiments", "configs", "diffusion_toy.py")


def tiny(family="ddpm", **changes):
    from experiments.configs import diffusion_toy

    config = diffusion_toy.get_config()
    config.model.family = family
    config.data.num_train, config.data.num_test, config.data.batch_size = 2_000, 400, 64
    config.train.update(steps=40, log_every=20, eval_every=20, checkpoint_every=20,
                        steps_per_call=10)
    config.model.hidden = (16, 16)
    config.model.embed_dim = 8
    config.model.num_steps = 20
    config.model.num_levels = 4
    config.eval.update(ddim_steps=5, num_samples=100, nll_examples=50, panels=3,
                       langevin_steps=3, sample_steps=10, rtol=1e-3, atol=1e-3)
    for path, value in changes.items():
        block, field = path.split(".")
        config[block][field] = value
    return config


def test_a_ddpm_run_writes_the_contract_and_resumes(tmp_path):
    from gmjax.experiment import run

    from experiments import diffusion

    metrics = run(diffusion.EXPERIMENT, tiny(), str(tmp_path))
    saved = json.load(open(tmp_path / "metrics.json"))
    assert saved["steps"] == metrics["steps"] == 40
    # Both DDPM samplers, side by side, and the headline is the ancestral one.
    for name in ("energy_distance", "adjusted_mmd", "adjusted_w1", "sample_seconds"):
        assert np.isfinite(saved[f"ancestral_{name}"]) and np.isfinite(saved[f"ddim_{name}"])
        assert saved[name] == saved[f"ancestral_{name}"]
    assert saved["two_sample_points"] == 100  # min(num_samples, num_test / 2)
    assert saved["elbo"] < 0 and saved["nll_examples"] == 50
    # -elbo bounds the NLL from above, so its excess over the entropy is positive (paired).
    assert saved["nll_excess_bound"] > 0
    for name in ("reverse", "score", "curves"):
        assert (tmp_path / f"{name}.png").exists(), name
    assert json.load(open(tmp_path / "config.json"))["model"]["family"] == "ddpm"

    again = run(diffusion.EXPERIMENT, tiny(**{"eval.ddim_steps": 4}), str(tmp_path))
    steps = [r["step"] for r in map(json.loads, open(tmp_path / "metrics.jsonl"))
             if r["split"] == "train"]
    assert steps == [20, 40] and again["steps"] == 40  # resumed at the end: no new steps


def test_score_sde_and_ncsn_runs_sample_and_the_sde_scores_its_likelihood(tmp_path):
    from gmjax.experiment import run

    from experiments import diffusion

    m = run(diffusion.EXPERIMENT, tiny("sde", **{"eval.sampler": "ode"}), str(tmp_path / "sde"))
    assert np.isfinite(m["test_nll"]) and m["nfe"] > 0 and m["nll_examples"] == 50
    # The paired excess is the test NLL minus the true mean log-density of those points.
    assert np.isfinite(m["nll_excess"]) and "ddim_energy_distance" not in m
    m = run(diffusion.EXPERIMENT, tiny("ncsn"), str(tmp_path / "ncsn"))
    assert np.isfinite(m["energy_distance"]) and "test_nll" not in m and "elbo" not in m
    assert (tmp_path / "ncsn" / "reverse.png").exists()


@pytest.mark.parametrize("config_name,changes,message", [
    ("diffusion_toy", {"model.schedule": "quadratic"}, "valid choices: cosine, linear"),
    ("diffusion_toy", {"model.family": "sde", "model.sde": "subvp"}, "valid choices: ve, vp"),
    ("diffusion_toy", {"model.parameterization": "x0"}, "valid choices: eps, score"),
    ("diffusion_toy", {"eval.sampler": "langevin"},
     "not a sampler of --config.model.family='ddpm'; valid choices: default, ancestral, ddim"),
    ("diffusion_toy", {"model.family": "ncsn", "eval.sampler": "ode"},
     "valid choices: default, langevin"),
    ("diffusion_toy", {"eval.sampler": "ddpm"}, "valid choices: ancestral, ddim, default"),
    ("diffusion_toy", {"eval.ddim_steps": 2_000},
     "--config.eval.ddim_steps=2000 must be at most the training steps"),
    ("diffusion_toy", {"eval.ddim_steps": 0}, "--config.eval.ddim_steps=0 must be an integer >= 1"),
    ("diffusion_toy", {"model.num_steps": 0}, "--config.model.num_steps=0 must be an integer >= 1"),
    ("diffusion_toy", {"model.family": "ncsn", "model.num_levels": 0},
     "--config.model.num_levels=0 must be an integer >= 1"),
    ("diffusion_toy", {"model.family": "ncsn", "eval.langevin_steps": 0},
     "--config.eval.langevin_steps=0 must be an integer >= 1"),
    ("diffusion_toy", {"model.family": "sde", "eval.ode_solver": "rk45"},
     "valid choices: dopri5, euler, heun, midpoint, rk4, tsit5"),
    ("diffusion_toy", {"model.family": "sde", "model.sde": "ve", "model.sigma_max": 0.01},
     "need --config.model.sigma_min < sigma_max"),
    ("diffusion_toy", {"model.family": "sde", "eval.t_min": 0.0}, "eval.t_min=0.0 must be in"),
    ("diffusion_toy", {"data.name": "mnist"}, "needs data.train_split and data.test_split"),
    ("diffusion_fashion_mnist", {"model.channels": (32, 64, 128, 256)},
     "which need image sides divisible by 8"),
    ("diffusion_fashion_mnist", {"eval.feature_network": "/nonexistent/classifier"},
     "is not a directory; train the feature network first"),
])
def test_bad_input_is_refused_before_any_work(config_name, changes, message):
    from gmjax.experiment import ConfigError, preflight

    from experiments import diffusion

    config = importlib.import_module(f"experiments.configs.{config_name}").get_config()
    for path, value in changes.items():
        block, field = path.split(".")
        config[block][field] = value
    with pytest.raises(ConfigError, match=re.escape(message)):
        preflight(diffusion.EXPERIMENT, config)


def test_a_bad_sampler_exits_2_from_the_command_line(repo_root, tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=repo_root)
    out = subprocess.run([sys.executable, os.path.join("experiments", "diffusion.py"),
                          f"--config={TOY}", f"--workdir={tmp_path / 'run'}",
                          "--config.model.family=sde", "--config.eval.sampler=ddim"],
                         cwd=repo_root, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "valid choices: default, predictor_corrector, euler_maruyama, ode" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "run").exists()


def test_unread_fields_follow_the_family_and_the_sampler():
    from experiments import diffusion
    from experiments.configs import diffusion_toy

    config = diffusion_toy.get_config()
    unread = diffusion.unread_fields(config)
    assert {"model.sde", "model.num_levels", "eval.snr", "eval.ode_solver"} <= set(unread)
    assert "model.schedule" not in unread and "eval.ddim_steps" not in unread
    config.model.family = "sde"
    unread = diffusion.unread_fields(config)
    assert {"model.schedule", "model.sigma_max", "eval.ddim_steps"} <= set(unread)
    assert {"model.beta_max", "eval.snr", "eval.ode_solver", "eval.rtol"}.isdisjoint(unread)
    assert "eval.ode_steps" in unread  # dopri5 adapts its steps
    config.eval.ode_solver = "rk4"
    assert "eval.ode_steps" not in diffusion.unread_fields(config)


def test_the_quickstart_diffusion_section_passes_the_checks_before_any_work():
    from gmjax.experiment import contract_violations, preflight

    from experiments import quickstart

    section = quickstart.SECTIONS["diffusion_8gaussians"](3_000)
    assert section.config.data.name == "8gaussians"
    assert section.config.model.family == "ddpm"
    unread, reads = preflight(section.experiment, section.config, section.defaults)
    assert contract_violations(section.config, reads, unread) == []


def test_few_step_ddim_matches_its_closed_form_on_gaussian_data():
    """x_0 ~ N(0, s^2 I) has the exact noise predictor eps(x_t) = sqrt(1 - abar) x_t / v_t,
    v_t = abar s^2 + 1 - abar, so deterministic DDIM is linear: each step multiplies by
    (sqrt(abar' abar) s^2 + sqrt((1 - abar')(1 - abar))) / v_t, and the sample variance is
    the product of the squares (x_T ~ N(0, I)). Few steps shrink it below s^2."""
    s2, steps = 4.0, 5
    schedule = make_schedule("linear", 100)
    abar = np.asarray(schedule.alpha_bars, np.float64)

    def eps(x, t):
        a = schedule.alpha_bars[t][:, None]
        return jnp.sqrt(1.0 - a) * x / (a * s2 + 1.0 - a)

    taus = ddim_timesteps(100, steps)
    factor = 1.0
    for k, prev in zip(taus[::-1], np.concatenate([[-1], taus[:-1]])[::-1]):
        a, ap = abar[k], (abar[prev] if prev >= 0 else 1.0)
        factor *= (math.sqrt(ap * a) * s2 + math.sqrt((1 - ap) * (1 - a))) / (a * s2 + 1 - a)
    x = jax.jit(lambda k: ddim_sample(eps, schedule, k, (20_000, 2), steps, eta=0.0))(
        jax.random.PRNGKey(0))
    cov = np.cov(np.asarray(x, np.float64), rowvar=False)
    # 20,000 draws: the variance's relative standard error is sqrt(2 / n) = 1%.
    np.testing.assert_allclose(np.diag(cov), factor ** 2, rtol=0.04)
    assert abs(cov[0, 1]) < 0.04 * factor ** 2
    assert factor ** 2 < 0.97 * s2  # the closed form is not trivially the data variance
