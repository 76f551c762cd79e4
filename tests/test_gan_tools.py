"""The GAN study scripts: the vanishing-gradient demonstration, the ring and grid tables, and the
DCGAN speed benchmark's torch twin (same parameter count, same outputs)."""

import argparse
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_vanishing_gradient_study_writes_its_json_and_figure(tmp_path):
    from experiments import gan_vanishing_gradient as study

    summary = study.run(str(tmp_path), critic_steps=40, measure_every=20, pretrain_steps=5,
                        batch_size=32, lr=1e-2, seeds=1)
    assert os.path.isfile(tmp_path / "gan_vanishing_gradient.png")
    saved = json.load(open(tmp_path / "gan_vanishing_gradient.json"))
    assert saved["settings"]["critic_steps"] == 40 and len(saved["runs"]) == 2
    for run in summary["runs"]:
        assert run["critic_step"] == [0, 20, 40]
        d_fake = np.asarray(run["mean_d_fake"])
        assert d_fake[-1] < d_fake[0]  # the discriminator learns to reject the fakes
        minimax = np.asarray(run["grad_norm_minimax"])
        saturating = np.asarray(run["grad_norm_non_saturating"])
        # grad of E log(1 - D) weighs each fake by D, of -E log D by 1 - D: once D(G(z)) < 1/2
        # the minimax gradient is the smaller one.
        assert minimax[-1] < saturating[-1]
    with pytest.raises(ValueError, match="multiple of --measure_every"):
        study.run(str(tmp_path), critic_steps=45, measure_every=20, pretrain_steps=0,
                  batch_size=32, lr=1e-2, seeds=1)


def test_gan_table_commands_and_summary(tmp_path):
    from experiments import gan_table

    cmd = gan_table.command("runs/x", "pacgan4", 3)
    assert "--config.seed=3" in cmd and "--config.model.pack=4" in cmd
    assert cmd[cmd.index("--workdir") + 1] == os.path.join("runs/x", "pacgan4_s3")
    for seed, (modes, quality) in enumerate([(25, 0.95), (24, 0.91)]):
        path = tmp_path / f"wide_cosine_s{seed}"
        path.mkdir()
        (path / "metrics.json").write_text(json.dumps(
            {"modes_captured": modes, "high_quality_frac": quality, "steps": 12000}))
    table = gan_table.summary(str(tmp_path), ["non_saturating", "wide_cosine"], [0, 1])
    assert list(table["configs"]) == ["wide_cosine"]  # configurations without runs are left out
    row = table["configs"]["wide_cosine"]
    assert row["seeds"] == 2 and row["modes_mean"] == 24.5 and row["modes_se"] == 0.5
    assert row["high_quality_mean"] == pytest.approx(0.93)
    assert row["all_seeds_25_modes_90_percent"] is False


def test_gan_table_ring_commands_summary_and_bad_flags(tmp_path):
    from experiments import gan_table

    cmd = gan_table.command("runs/r", "pacgan2", 1, data="ring")
    assert "experiments/configs/gan_ring.py" in cmd and "--config.model.pack=2" in cmd
    assert "--config.train.steps=2000" in cmd
    assert cmd[cmd.index("--workdir") + 1] == os.path.join("runs/r", "pacgan2_s1")
    for seed in (0, 1):
        path = tmp_path / f"unrolled_s{seed}"
        path.mkdir()
        (path / "metrics.json").write_text(json.dumps(
            {"modes_captured": 8, "high_quality_frac": 0.92 + 0.02 * seed, "steps": 2000}))
    table = gan_table.summary(str(tmp_path), ["unrolled", "wgan_gp"], [0, 1], data="ring")
    assert table["num_modes"] == 8 and list(table["configs"]) == ["unrolled"]
    assert table["configs"]["unrolled"]["all_seeds_8_modes_90_percent"] is True
    assert "--data=ring" in table["command"]

    for args, message in ((["--data=circle"], "valid: grid, ring"),
                          (["--data=ring", "--configs=pacgan4"], "pacgan4")):
        done = subprocess.run([sys.executable, "-m", "experiments.gan_table", *args,
                               f"--runs={tmp_path}", f"--out={tmp_path / 'out.json'}"],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode != 0 and message in done.stderr, done.stderr


def test_torch_dcgan_is_gmjax_dcgan():
    pytest.importorskip("torch")
    from benchmarks import gan_vs_torch

    args = argparse.Namespace(channels=3, latent_dim=4, steps=1)
    x = np.random.default_rng(0).integers(0, 256, size=(4, 28, 28, 1), dtype=np.uint8)
    row = gan_vs_torch.sides(args, ["torch"], x)  # asserts counts and outputs
    c = 3  # G: 4 -> 7*7*2c dense, 3x3 convs 2c -> c -> 1; d: 4x4 convs 1 -> c -> 2c, dense
    expected = ((4 + 1) * 49 * 2 * c + (9 * 2 * c + 1) * c + (9 * c + 1)
                + (16 + 1) * c + (16 * c + 1) * 2 * c + (49 * 2 * c + 1))
    assert row["parameters"] == {"gmjax": expected, "torch": expected}
    assert max(row["max_abs_difference"]["torch"].values()) < 1e-5
    row["runs"]["torch"]()  # the torch step trains (gmjax's step is tested with the engine)
