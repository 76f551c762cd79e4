"""The experiment scripts end to end: bad configs, SIGKILL + resume, the quick start."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from gmjax.training import Checkpointer

FLOW_CONFIG = os.path.join("experiments", "configs", "flow_toy.py")
SMALL = ["--config.data.num_train=4096", "--config.data.num_test=2048",
         "--config.model.num_layers=4", "--config.model.hidden=(32, 32)",
         "--config.data.batch_size=128", "--config.eval.num_samples=1000"]


def script(repo_root, name, *args, **kwargs):
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=repo_root)
    return subprocess.run([sys.executable, os.path.join("experiments", name), *args],
                          cwd=repo_root, env=env, capture_output=True, text=True,
                          timeout=600, **kwargs)


@pytest.mark.parametrize("override,message", [
    ("--config.optim.name=adamm", "valid choices: adam, adamw, lamb, rmsprop, sgd"),
    ("--config.data.name=moon", "valid choices: 25gaussians, 2spirals, 8gaussians"),
    ("--config.optim.lrr=0.1", "valid fields there: accumulate_steps, b1, b2"),
    ("--config.train.steps=many", "--config.train.steps=many"),
    ("--config.data.batch_size=0", "must be positive"),
])
def test_bad_config_stops_before_any_work(repo_root, tmp_path, override, message):
    out = script(repo_root, "flow.py", f"--config={FLOW_CONFIG}", f"--workdir={tmp_path / 'run'}",
                 override)
    assert out.returncode == 2, out.stderr[-2000:]
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


def final_params(workdir):
    state, meta = Checkpointer(os.path.join(workdir, "checkpoints")).restore()
    return meta["step"], jax.tree.leaves(state["params"])


def test_sigkill_then_resume_matches_an_uninterrupted_run_bitwise(repo_root, tmp_path):
    args = [f"--config={FLOW_CONFIG}", *SMALL, "--config.train.steps=800",
            "--config.train.checkpoint_every=100", "--config.train.eval_every=400",
            "--config.train.log_every=50"]
    reference = script(repo_root, "flow.py", *args, f"--workdir={tmp_path / 'straight'}")
    assert reference.returncode == 0, reference.stderr[-3000:]
    assert "ConfigContractWarning" not in reference.stderr  # the run read what it declared

    killed_dir = tmp_path / "killed"
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=repo_root)
    proc = subprocess.Popen([sys.executable, os.path.join("experiments", "flow.py"), *args,
                             f"--workdir={killed_dir}"], cwd=repo_root, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        # Only look: opening a Checkpointer here would clean the writer's temporaries.
        ckpt_dir = killed_dir / "checkpoints"
        steps = [int(d) for d in os.listdir(ckpt_dir) if d.isdigit()] if ckpt_dir.exists() else []
        if steps and max(steps) >= 200:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    interrupted_at = Checkpointer(killed_dir / "checkpoints").latest_step()
    assert 200 <= interrupted_at < 800

    resumed = script(repo_root, "flow.py", *args, f"--workdir={killed_dir}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    step_a, params_a = final_params(tmp_path / "straight")
    step_b, params_b = final_params(killed_dir)
    assert step_a == step_b == 800
    for a, b in zip(params_a, params_b):
        np.testing.assert_array_equal(a, b)
    steps = [r["step"] for r in map(json.loads, open(killed_dir / "metrics.jsonl"))
             if r["split"] == "train"]
    assert steps == list(range(50, 801, 50))


def test_resume_with_a_changed_model_is_refused(repo_root, tmp_path):
    args = [f"--config={FLOW_CONFIG}", *SMALL, "--config.train.steps=20",
            "--config.train.log_every=10", "--config.train.checkpoint_every=10",
            f"--workdir={tmp_path}"]
    assert script(repo_root, "flow.py", *args).returncode == 0
    out = script(repo_root, "flow.py", *args, "--config.model.num_layers=6")
    assert out.returncode == 2
    assert "model.num_layers: 4 -> 6" in out.stderr


def test_a_field_added_since_the_run_was_saved_resumes_and_others_are_refused(tmp_path, capsys):
    import ml_collections

    from gmjax.experiment import ConfigError, prepare_workdir
    old = ml_collections.ConfigDict({"model": {"num_layers": 4}, "seed": 0})
    assert prepare_workdir(old, str(tmp_path)) is False
    new = ml_collections.ConfigDict({"model": {"num_layers": 4, "block_size": 8}, "seed": 0})
    assert prepare_workdir(new, str(tmp_path)) is True
    assert "model.block_size=8" in capsys.readouterr().out
    assert json.load(open(tmp_path / "config.json"))["model"]["block_size"] == 8
    changed = ml_collections.ConfigDict({"model": {"num_layers": 4, "block_size": 4}, "seed": 0})
    with pytest.raises(ConfigError, match="model.block_size: 8 -> 4"):
        prepare_workdir(changed, str(tmp_path))
    # A field the script declares unread (or its own resumable one) may change.
    assert prepare_workdir(changed, str(tmp_path), resumable=("model.block_size",)) is True
    removed = ml_collections.ConfigDict({"model": {"num_layers": 4}, "seed": 0})
    with pytest.raises(ConfigError, match="model.block_size: 4 -> None"):
        prepare_workdir(removed, str(tmp_path))


@pytest.mark.parametrize("overrides,message", [
    (["--config.data.data_dir=/tmp"],
     "--config.data.data_dir='/tmp' is not read by this script: toy densities are sampled"),
    (["--config.optim.momentum=0.9"],
     "--config.optim.momentum=0.9 is not read by this script: optim.name='adam'"),
    (["--config.model.name=gmm", "--config.optim.lr=0.1"],
     "--config.optim.lr=0.1 is not read by this script: model.name='gmm' is fitted by EM"),
])
def test_a_change_to_a_field_the_script_does_not_read_is_refused(repo_root, tmp_path, overrides,
                                                                 message):
    out = script(repo_root, "flow.py", f"--config={FLOW_CONFIG}", f"--workdir={tmp_path / 'run'}",
                 *overrides)
    assert out.returncode == 2, out.stderr[-2000:]
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "run").exists()


def check_quickstart_flows(summary, tmp_path):
    for section in ("flow_8gaussians", "flow_moons"):
        metrics = summary[section]
        assert metrics["steps"] == 300
        assert np.isfinite(metrics["test_nll"])
        for figure in ("density.png", "curves.png"):
            with open(tmp_path / section / figure, "rb") as f:
                assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        for name in ("config.json", "metrics.jsonl", "metrics.json"):
            assert (tmp_path / section / name).exists()
    # 300 steps already beat the standard normal the flow starts as (NLL ~ 4.3 nats here).
    assert summary["flow_8gaussians"]["nll_excess"] < 1.0


def test_quickstart_flow_sections_write_metrics_and_figures(repo_root, tmp_path):
    out = script(repo_root, "quickstart.py", f"--workdir={tmp_path}", "--steps=300",
                 "--sections=flow_8gaussians,flow_moons")
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.load(open(tmp_path / "metrics.json"))
    assert sorted(summary) == ["flow_8gaussians", "flow_moons"]
    check_quickstart_flows(summary, tmp_path)


def test_quickstart_temperflow_section_passes_the_checks_before_any_work():
    # The section runs the code path of test_temperflow_experiment.py;
    # here only its config is checked (the whole quick start is the slow test below).
    from experiments import quickstart
    from gmjax.experiment import preflight
    section = quickstart.SECTIONS["temperflow_circle"](300)
    preflight(section.experiment, section.config, section.defaults)


def test_quickstart_refuses_an_unknown_section(repo_root, tmp_path):
    out = script(repo_root, "quickstart.py", f"--workdir={tmp_path}", "--sections=flow_moon")
    assert out.returncode != 0
    assert "unknown flow_moon" in out.stderr and "flow_moons" in out.stderr
    assert not (tmp_path / "metrics.json").exists()


@pytest.mark.slow
def test_quickstart_writes_metrics_and_figures(repo_root, tmp_path):
    out = script(repo_root, "quickstart.py", f"--workdir={tmp_path}", "--steps=300")
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.load(open(tmp_path / "metrics.json"))
    check_quickstart_flows(summary, tmp_path)
    # TemperFlow on circle at a tenth of the quick start's budget: it runs the whole
    # tempering to beta = 1 and scores itself; the figures are there.
    tf = summary["temperflow_circle"]
    assert tf["betas"][-1] == 1.0 and tf["num_modes"] == 8 and np.isfinite(tf["adjusted_w1"])
    for figure in ("samples.png", "beta_trace.png"):
        with open(tmp_path / "temperflow_circle" / figure, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_every_script_imports_beside_every_other(repo_root):
    """Scripts define their flags under __main__, not at import: importing two that share a
    flag name (--workdir, --out, --stage ...) in one process must not raise DuplicateFlagError."""
    code = ("import importlib, pathlib\n"
            "for path in sorted(pathlib.Path('experiments').rglob('*.py')):\n"
            "    importlib.import_module('.'.join(path.with_suffix('').parts))\n")
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=repo_root)
    out = subprocess.run([sys.executable, "-c", code], cwd=repo_root, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]


@pytest.mark.parametrize("name,flag", [
    ("quickstart.py", "--sections"), ("flow_table.py", "--num_layers"),
    ("temperflow_table.py", "--recipe"), ("diagnostics/final_rounds.py", "--log_u"),
    ("diagnostics/missing_mass.py", "--draws"), ("diagnostics/reference_coverage.py", "--shares"),
    ("diagnostics/target_ml_fit.py", "--num_data"), ("diagnostics/weight_traces.py", "--truth"),
])
def test_scripts_still_define_their_flags_when_run(repo_root, name, flag):
    out = script(repo_root, name, "--helpshort")  # absl prints the help and exits with 1
    assert f"{flag}:" in out.stdout, out.stdout[-2000:] + out.stderr[-2000:]
