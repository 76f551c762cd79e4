"""Bad command lines of the experiment scripts: one or two lines, exit code 2, nothing touched.

Every case here stops before any training (most before JAX starts), so each
run of a script costs seconds. ``--help`` lists the script's own flags and the
fields of its config file, and nothing of the libraries' flags.
"""

import hashlib
import json
import os
import subprocess
import sys

import pytest

FLOW_CONFIG = os.path.join("experiments", "configs", "flow_toy.py")
CLASSIFIER_CONFIG = os.path.join("experiments", "configs", "classifier_fashion_mnist.py")


def script(repo_root, name, *args, env=None):
    """Runs ``experiments/<name>`` on the CPU with the visible devices of ``env`` (default 1)."""
    full = {key: value for key, value in os.environ.items() if key != "XLA_FLAGS"}
    full.update(JAX_PLATFORMS="cpu", PYTHONPATH=repo_root, **(env or {}))
    return subprocess.run([sys.executable, os.path.join("experiments", name), *args],
                          cwd=repo_root, env=full, capture_output=True, text=True, timeout=300)


def assert_usage_error(out, *phrases, max_lines=2):
    """Exit code 2, no traceback, at most ``max_lines`` lines on stderr, each phrase in them."""
    assert out.returncode == 2, out.stderr[-3000:]
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    lines = out.stderr.strip().splitlines()
    assert 1 <= len(lines) <= max_lines, out.stderr
    assert lines[0].startswith("error: "), out.stderr
    for phrase in phrases:
        assert phrase in out.stderr, (phrase, out.stderr)


def snapshot(folder):
    """``{relative path: (sha256, mtime_ns)}`` of every file under ``folder``."""
    files = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, folder)] = (hashlib.sha256(f.read()).hexdigest(),
                                                        os.stat(path).st_mtime_ns)
    return files


def test_a_config_file_that_does_not_exist(repo_root, tmp_path):
    out = script(repo_root, "flow.py", "--config=experiments/configs/flow_tyo.py",
                 f"--workdir={tmp_path / 'run'}", "--config.train.steps=10")
    assert_usage_error(out, "--config=experiments/configs/flow_tyo.py: no such file",
                       "config files for flow.py: experiments/configs/flow_toy.py", max_lines=1)
    assert not (tmp_path / "run").exists()


def test_a_config_file_that_fails_to_load_names_the_line(repo_root, tmp_path):
    config = tmp_path / "broken.py"
    config.write_text("import ml_collections\n\ndef get_config():\n    return 1 / 0\n")
    out = script(repo_root, "flow.py", f"--config={config}", f"--workdir={tmp_path / 'run'}")
    assert_usage_error(out, "failed to load: line 4: ZeroDivisionError", max_lines=1)
    out = script(repo_root, "flow.py", f"--config={tmp_path}", f"--workdir={tmp_path / 'run'}")
    assert_usage_error(out, "not a file but a directory", max_lines=1)


@pytest.mark.parametrize("name,args,phrases", [
    ("flow.py", [], ["--config is required", "experiments/configs/flow_toy.py"]),
    # An override without a config file is the same mistake, not an unknown flag.
    ("flow.py", ["--config.train.steps=10"], ["--config is required"]),
    ("temperflow.py", [], ["--config is required", "experiments/configs/temperflow_2d.py",
                           "experiments/configs/temperflow_clayton.py"]),
    ("classifier.py", [], ["--config is required", "experiments/configs/classifier_digits.py"]),
])
def test_no_config_names_the_config_files_of_the_script(repo_root, tmp_path, name, args,
                                                        phrases):
    out = script(repo_root, name, f"--workdir={tmp_path / 'run'}", *args)
    assert_usage_error(out, *phrases, f"usage: python experiments/{name} --config=")
    assert not (tmp_path / "run").exists()


def test_no_workdir_and_no_flags_at_all(repo_root):
    out = script(repo_root, "flow.py", f"--config={FLOW_CONFIG}")
    assert_usage_error(out, "error: --workdir is required",
                       "--config=experiments/configs/flow_toy.py --workdir=runs/flow")
    out = script(repo_root, "flow.py")
    assert_usage_error(out, "error: --config and --workdir are required")


def test_a_workdir_that_is_a_file_or_holds_other_files(repo_root, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a run")
    out = script(repo_root, "flow.py", f"--config={FLOW_CONFIG}", f"--workdir={path}")
    assert_usage_error(out, f"--workdir={path} is a file, not a folder", max_lines=1)
    out = script(repo_root, "flow.py", f"--config={FLOW_CONFIG}", f"--workdir={path / 'run'}")
    assert_usage_error(out, f"is inside the file {path}", max_lines=1)
    out = script(repo_root, "flow.py", f"--config={FLOW_CONFIG}", f"--workdir={tmp_path}")
    assert_usage_error(out, "holds files but no saved run", max_lines=1)
    assert path.read_text() == "not a run" and os.listdir(tmp_path) == ["notes.txt"]


@pytest.mark.parametrize("args,phrases", [
    (["--config.optim.lrr=0.1"], ["unknown config field --config.optim.lrr",
                                  "valid fields there: accumulate_steps, b1, b2"]),
    (["--config.train.steps=many"], ["--config.train.steps=many",
                                     "takes an int, such as 5000"]),
    (["--config.model.hidden=abc"], ["--config.model.hidden=('abc',) is not a tuple of ints",
                                     "(64, 64)"]),
    (["--config.optim.name=adamm"], ["valid choices: adam, adamw, lamb, rmsprop, sgd"]),
    (["--config.model.name=realnvpp"], ["valid choices: ", "realnvp", "spline_coupling"]),
    (["--workdr=x"], ["Unknown command line flag 'workdr'", "workdir"]),
    (["experiments/configs/flow_toy.py"], ["unexpected argument", "--name=value"]),
])
def test_bad_overrides_flags_and_arguments_give_one_line(repo_root, tmp_path, args, phrases):
    out = script(repo_root, "flow.py", f"--config={FLOW_CONFIG}", f"--workdir={tmp_path / 'run'}",
                 *args)
    assert_usage_error(out, *phrases, max_lines=1)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("args,phrases", [
    (["--config.train.num_devices=3"],
     ["--config.data.batch_size=512 does not split evenly over the 3 devices",
      "multiple of 3 (such as 513)", "--config.train.num_devices=4"]),
    (["--config.data.batch_size=510"],
     ["--config.data.batch_size=510 does not split evenly over the 4 devices",
      "every visible device: 4", "--config.train.num_devices=3"]),
    (["--config.train.num_devices=8"],
     ["asked for 8 devices but only 4 are visible", "xla_force_host_platform_device_count=8"]),
])
def test_a_batch_that_does_not_split_over_the_devices(repo_root, tmp_path, args, phrases):
    out = script(repo_root, "flow.py", f"--config={FLOW_CONFIG}", f"--workdir={tmp_path / 'run'}",
                 *args, env={"XLA_FLAGS": "--xla_force_host_platform_device_count=4"})
    assert_usage_error(out, *phrases, max_lines=1)
    assert not (tmp_path / "run").exists()


def test_missing_data_names_the_config_field_and_the_debian_package(repo_root, tmp_path):
    if os.path.isdir("/usr/share/datasets/fashion-mnist"):
        pytest.skip("Fashion-MNIST is installed on this machine")
    empty = tmp_path / "empty"
    empty.mkdir()
    out = script(repo_root, "classifier.py", f"--config={CLASSIFIER_CONFIG}",
                 f"--workdir={tmp_path / 'run'}", f"--config.data.data_dir={empty}")
    # The message lists every place searched and how to get the data, one per line.
    assert_usage_error(out, "'fashion_mnist' split 'train' was not found", str(empty),
                       "--config.data.data_dir=DIR", "apt-get install dataset-fashion-mnist",
                       max_lines=12)
    assert "--data_dir" not in out.stderr.replace("--config.data.data_dir", "")
    assert not (tmp_path / "run").exists()  # a run that saved nothing leaves no workdir


def test_a_saved_run_is_untouched_by_bad_invocations(repo_root, tmp_path):
    from gmjax.experiment import load_config_file

    saved = tmp_path / "saved"
    (saved / "checkpoints" / "100").mkdir(parents=True)
    config = load_config_file(os.path.join(repo_root, FLOW_CONFIG))
    (saved / "config.json").write_text(json.dumps(json.loads(config.to_json_best_effort()),
                                                  indent=2, sort_keys=True))
    (saved / "checkpoints" / "100" / "state").write_bytes(b"\x00saved state")
    (saved / "metrics.jsonl").write_text('{"step": 100, "loss": 3.5}\n')
    before = snapshot(saved)
    cases = [
        (["--config.model.num_layers=6"], "holds a run with a different config "
                                          "(model.num_layers: 8 -> 6)"),
        (["--config.optim.name=adamm"], "valid choices"),
        (["--config.optim.lrr=1"], "unknown config field"),
        (["--config.model.hidden=abc"], "is not a tuple of ints"),
        (["--config.data.data_dir=/tmp"], "is not read by this script"),
        (["--config.train.num_devices=3"], "does not split evenly"),
        (["extra"], "unexpected argument"),
    ]
    for args, phrase in cases:
        out = script(repo_root, "flow.py", f"--config={FLOW_CONFIG}", f"--workdir={saved}", *args,
                     env={"XLA_FLAGS": "--xla_force_host_platform_device_count=4"})
        assert_usage_error(out, phrase, max_lines=1)
    out = script(repo_root, "flow.py", "--config=nope.py", f"--workdir={saved}")
    assert_usage_error(out, "no such file", max_lines=1)
    assert snapshot(saved) == before


def test_help_lists_the_script_flags_and_the_config_fields(repo_root):
    for flag in ("--help", "-h"):
        out = script(repo_root, "flow.py", f"--config={FLOW_CONFIG}", flag)
        assert out.returncode == 0, out.stderr[-2000:]
        text = out.stdout
        assert text.startswith("Normalizing flows by maximum likelihood")
        for own in ("--config=FILE", "--workdir=DIR", "--[no]progress",
                    "Config files for flow.py: experiments/configs/flow_toy.py"):
            assert own in text, own
        # Every field of the config file, with its value there.
        assert "config fields of experiments/configs/flow_toy.py" in text
        assert "--config.train.steps" in text and "= 5000" in text
        assert "= (64, 64)" in text and "one of: adam, adamw, lamb, rmsprop, sgd" in text
        assert "(not read with this config)" in text
        # Nothing of absl's, JAX's, chex's or orbax's own flags.
        for other in ("--verbosity", "--logtostderr", "--jax_", "--chex", "--only_check_args",
                      "--flagfile", "--pdb"):
            assert other not in text, other


def test_help_without_a_config_says_how_to_see_the_fields(repo_root):
    out = script(repo_root, "temperflow.py", "--help")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "--config=FILE --help lists the fields of a config file" in out.stdout
    assert "experiments/configs/temperflow_2d.py" in out.stdout
    assert "--verbosity" not in out.stdout
