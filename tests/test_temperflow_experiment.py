"""experiments/temperflow.py end to end: the experiment contract, resume, baselines, bad input."""

import json
import os
import subprocess
import sys

import pytest

from gmjax.experiment.temperflow import sampler_config
from gmjax.samplers.temperflow.schedule import middle_steps

CONFIG = os.path.join("experiments", "configs", "temperflow_2d.py")
TINY = ["--config.model.name=spline_coupling", "--config.model.num_layers=2",
        "--config.model.hidden=(16,)", "--config.data.batch_size=256",
        "--config.train.steps=40", "--config.train.steps_per_call=20",
        "--config.train.log_every=20", "--config.sampler.steps_init=40",
        "--config.sampler.steps_final=40", "--config.sampler.max_betas=3",
        "--config.sampler.estimate_draws=2000", "--config.eval.num_samples=2000",
        "--config.eval.replicates=2", "--config.eval.replicate_size=200"]


def script(repo_root, *args):
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=repo_root)
    return subprocess.run([sys.executable, os.path.join("experiments", "temperflow.py"), *args],
                          cwd=repo_root, env=env, capture_output=True, text=True, timeout=600)


def test_experiment_writes_the_contract_and_resumes(repo_root, tmp_path):
    workdir = tmp_path / "tf"
    args = [f"--config={CONFIG}", f"--workdir={workdir}", *TINY, "--config.method=temperflow"]
    out = script(repo_root, *args)
    assert out.returncode == 0, out.stderr[-3000:]
    for name in ("config.json", "metrics.jsonl", "metrics.json", "beta_trace.png",
                 "weight_trace.png", "samples.png", "samples.npy", "checkpoints"):
        assert (workdir / name).exists(), name
    metrics = json.loads((workdir / "metrics.json").read_text())
    for name in ("adjusted_w1", "adjusted_mmd", "modes_captured", "mode_weight_max_error",
                 "train_seconds", "sample_seconds", "num_betas", "rejection", "is_ess_min",
                 "is_ess_collapsed_stages", "steps"):
        assert name in metrics, name
    rejection = metrics["rejection"]  # the same flow as a rejection proposal, or why not
    if "error" in rejection:
        assert "minimum acceptance rate" in rejection["error"]
    else:
        assert 0 < rejection["acceptance_rate"] <= 1
    stages = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [s["step"] for s in stages] == list(range(1, len(stages) + 1))
    assert stages[0]["loss"] == "reverse_kl" and stages[-1]["loss"] == "l2_distance"
    assert metrics["steps"] == sum(s["steps"] for s in stages)
    for s in stages:  # the mode weights along the curve, the flow's and p_beta's
        assert len(s["weights_flow"]) == len(s["weights_target_is"]) == 8  # circle's modes
        assert sum(s["weights_flow"]) == pytest.approx(1.0)
        assert 1.0 <= s["weights_is_ess"] <= 10_000
    # Each stage's own training log, written by the engine's fit.
    assert (workdir / "stages" / "000" / "metrics.jsonl").exists()

    # Running again finds every stage done: nothing is retrained, the betas are the same.
    again = script(repo_root, *args)
    assert again.returncode == 0, again.stderr[-3000:]
    metrics_again = json.loads((workdir / "metrics.json").read_text())
    assert metrics_again["betas"] == metrics["betas"]
    assert metrics_again["train_seconds"] == pytest.approx(metrics["train_seconds"])


def test_mcmc_baseline_through_the_experiment(repo_root, tmp_path):
    out = script(repo_root, f"--config={CONFIG}", f"--workdir={tmp_path / 'mh'}",
                 "--config.method=mh", "--config.mcmc.num_chains=20", "--config.mcmc.burn_in=100",
                 "--config.eval.num_samples=2000", "--config.eval.replicates=2",
                 "--config.eval.replicate_size=200")
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = json.loads((tmp_path / "mh" / "metrics.json").read_text())
    assert 0 < metrics["acceptance_rate"] < 1 and "ess_min" in metrics
    assert (tmp_path / "mh" / "samples.png").exists()


@pytest.mark.parametrize("flag, message", [
    ("--config.method=temperflo", "temperflow+rej"),
    ("--config.sampler.defensive_share=1.2", "defensive_share must be in [0, 1), got 1.2"),
    ("--config.sampler.stage_loss=l3", "l2_distance"),
    ("--config.optim.schedule=cosine", "one_cycle"),
    # a field the chosen method does not read is refused, with the reason
    ("--config.sampler.num_fixed_betas=5", "fixed_grid"),
    ("--config.mcmc.num_chains=5", "trains a flow"),
])
def test_bad_input_stops_before_any_work(repo_root, tmp_path, flag, message):
    out = script(repo_root, f"--config={CONFIG}", f"--workdir={tmp_path / 'bad'}", flag)
    assert out.returncode == 2, out.stderr[-3000:]
    assert message in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "bad").exists()


def _config(name):
    from gmjax.experiment import load_config_file
    return load_config_file(os.path.join("experiments", "configs", name))


def test_clayton_paper_config_is_the_measured_recipe(repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    config = sampler_config(_config("temperflow_clayton_paper.py"))
    assert (config.stage_loss, config.final_kl_steps) == ("forward_kl", 0)
    assert (config.batch_size, config.steps_mid, config.steps_final) == (2000, 1000, 1000)


def test_clayton_forward_kl_config_is_the_measured_recipe(repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    config = sampler_config(_config("temperflow_clayton_forward_kl.py"))
    assert (config.stage_loss, config.final_kl_steps, config.ref_refresh) == \
        ("forward_kl", 0, "every_stage")
    assert (config.batch_size, config.steps_mid, config.lr_decay) == (500, 500, 0.95)
    # 500 steps at the first middle beta, 3,700 at the last of p = 32's 22 middle betas
    steps = [middle_steps(config.steps_mid, config.steps_growth, i, config.steps_per_call)
             for i in (1, 22)]
    assert steps == [500, 3700]
    # then 10 rounds of 400 steps at beta = 1, each from a fresh reference
    assert (config.final_rounds, config.steps_final) == (10, 400)


# Slow (about 45 s): the default suite kills a flow run the same way
# (test_experiments.py) and interrupts TemperFlow inside and between stages in-process
# (test_interrupts.py, test_temperflow_kernel.py).
@pytest.mark.slow
def test_sigkill_inside_a_stage_then_resume_matches_an_uninterrupted_run_bitwise(repo_root,
                                                                                   tmp_path):
    import signal
    import time

    import jax
    import numpy as np

    from gmjax.training import Checkpointer

    # Middle stages of 200 steps, checkpointed every 20 inside the stage.
    args = [f"--config={CONFIG}", *TINY, "--config.train.steps=200",
            "--config.train.checkpoint_every=20", "--config.eval.stage_weight_draws=0"]
    reference = script(repo_root, *args, f"--workdir={tmp_path / 'straight'}")
    assert reference.returncode == 0, reference.stderr[-3000:]
    assert "ConfigContractWarning" not in reference.stderr

    killed = tmp_path / "killed"
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=repo_root)
    proc = subprocess.Popen([sys.executable, os.path.join("experiments", "temperflow.py"), *args,
                             f"--workdir={killed}"], cwd=repo_root, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stage_dir = killed / "stages" / "001" / "checkpoints"  # the first middle stage
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        steps = [int(d) for d in os.listdir(stage_dir) if d.isdigit()] \
            if stage_dir.exists() else []
        if steps and max(steps) >= 40:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert Checkpointer(str(stage_dir)).latest_step() < 200  # killed inside the stage

    resumed = script(repo_root, *args, f"--workdir={killed}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    def final(workdir):
        state, meta = Checkpointer(str(workdir / "checkpoints")).restore()
        return meta["schedule"], jax.tree.leaves(state["params"])

    (schedule_a, params_a), (schedule_b, params_b) = final(tmp_path / "straight"), final(killed)
    assert schedule_a == schedule_b
    for a, b in zip(params_a, params_b):
        np.testing.assert_array_equal(a, b)
    records = [json.loads(line) for line in open(killed / "metrics.jsonl")]
    assert [r["step"] for r in records] == list(range(1, len(records) + 1))
