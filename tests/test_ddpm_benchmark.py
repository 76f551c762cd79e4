"""benchmarks.ddpm_vs_torch at tiny sizes: the torch MLP and U-Net are gmjax's (parameter count,
output, L_simple and every gradient from the same parameters, step indices and noise), the
check can fail, and one end-to-end run writes its record."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from benchmarks import ddpm_vs_torch

TINY = argparse.Namespace(hidden=[16, 16], channels=[8, 16], num_res_blocks=1, mlp_batch=6,
                          unet_batch=3, num_steps=50, steps=1)


def test_same_padding_is_xlas():
    pytest.importorskip("torch")
    from benchmarks import torch_ddpm

    # SAME with stride 2 on an even side pads one row after (28 -> 14 -> 7), none before.
    assert torch_ddpm.same_padding(28, 3, 2) == (0, 1)
    assert torch_ddpm.same_padding(14, 3, 2) == (0, 1)
    assert torch_ddpm.same_padding(7, 3, 2) == (1, 1)
    assert torch_ddpm.same_padding(28, 3, 1) == (1, 1)


@pytest.mark.parametrize("model", ["mlp", "unet"])
def test_the_torch_network_is_gmjax_network(model):
    pytest.importorskip("torch")
    from benchmarks import torch_ddpm
    from experiments.diffusion import build_model

    row = ddpm_vs_torch.sides(model, TINY, ["torch"])
    assert len(set(row["parameters"].values())) == 1
    difference = row["relative_difference"]["torch"]
    assert difference["output"] < 1e-4 and difference["loss"] < 1e-5
    assert difference["gradient"] < 1e-4
    if model == "mlp":  # every side trains (the U-Net's steps compile as slowly as they run)
        for run in row["runs"].values():
            run()

    # The check can fail: the embedding's two dense layers swapped give another function.
    config = ddpm_vs_torch.experiment_config(model, TINY)
    diffusion = build_model(config)
    x = ddpm_vs_torch.batch_for(model, config.data.batch_size)
    params = ddpm_vs_torch.perturbed_params(diffusion.net, x)
    net = ddpm_vs_torch.torch_network(model, config)
    torch_ddpm.load_gmjax(net, params)
    outer, inner = net.embed.outer, net.embed.inner
    net.embed.outer, net.embed.inner = inner, outer
    assert ddpm_vs_torch.agreement(diffusion, params, net, x)["output"] > 1e-3
    with pytest.raises(ValueError, match="layers differ"):
        del params["params"]["Dense_0"]
        torch_ddpm.load_gmjax(net, params)


def test_a_tiny_run_writes_its_record(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "ddpm.json"
    code = ddpm_vs_torch.main(["--models", "mlp", "--hidden", "8,8", "--mlp_batch", "4",
                               "--steps", "1", "--rounds", "2", "--peers", "torch",
                               "--allow_busy", "--out", str(out)])
    assert code == 0
    record = json.load(open(out))
    row = record["results"]["mlp"]
    assert set(row["ms_per_step"]) == {"gmjax", "torch"}
    assert row["ratio_to_gmjax"]["torch"]["rounds"] == 2
    assert row["parameters"]["gmjax"] == row["parameters"]["torch"]
    assert row["batch"] == 4 and row["lr"] == pytest.approx(2e-3)
    assert "load" in record and np.isfinite(row["ms_per_step"]["gmjax"]["median"])


def test_bad_options_name_the_valid_choices(capsys):
    with pytest.raises(SystemExit):
        ddpm_vs_torch.main(["--models", "mlp,gan"])
    assert "unknown --models gan; valid choices: mlp, unet" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ddpm_vs_torch.main(["--peers", "jax"])
    assert "valid choices: torch, torch_compile" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ddpm_vs_torch.main(["--channels", "8,16,32,64"])
    assert "at most 3" in capsys.readouterr().err
