"""benchmarks.vae_vs_torch at tiny sizes: the torch VAE is gmjax's (parameter count, loss from
the same parameters and eps), the FLOP count, and one end-to-end run that writes its record."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import vae_vs_torch

HIDDEN, LATENT = (8, 8), 3


def test_parameter_and_flop_counts():
    # 784 -> 500 -> 500 -> 100 and 50 -> 500 -> 500 -> 784, weights and biases.
    assert vae_vs_torch.parameter_count((500, 500), 50) == (
        784 * 500 + 500 + 500 * 500 + 500 + 500 * 100 + 100
        + 50 * 500 + 500 + 500 * 500 + 500 + 500 * 784 + 784)
    macs = 784 * 8 + 8 * 8 + 8 * 6 + 3 * 8 + 8 * 8 + 8 * 784
    assert vae_vs_torch.step_matmul_flops(4, HIDDEN, LATENT) == 2 * 4 * (3 * macs - 784 * 8)


def test_the_torch_vae_is_gmjax_vae():
    torch = pytest.importorskip("torch")
    from benchmarks import torch_vae

    row = vae_vs_torch.sides(HIDDEN, LATENT, batch=5, steps=2, peers=["torch"])
    assert set(row["parameters"].values()) == {vae_vs_torch.parameter_count(HIDDEN, LATENT)}
    assert row["relative_loss_difference"]["torch"] < 1e-5
    for run in row["runs"].values():  # every side trains
        run()

    # The check can fail: another eps gives another loss.
    import jax

    _, objective = vae_vs_torch.build_gmjax(HIDDEN, LATENT)
    x = vae_vs_torch.binary_batch(5)
    params = objective.init(jax.random.PRNGKey(0), x[:1])
    loss, eps = vae_vs_torch.gmjax_loss_at_check_key(objective, params, x, LATENT)
    model = torch_vae.MLPVAE(784, HIDDEN, LATENT)
    torch_vae.load_gmjax_params(model, params)
    with torch.no_grad():
        same = float(model(torch.as_tensor(x.reshape(5, -1)), torch.as_tensor(eps)))
        other = float(model(torch.as_tensor(x.reshape(5, -1)), torch.as_tensor(-eps)))
    assert same == pytest.approx(loss, rel=1e-5) and abs(other - loss) > 1e-3


def test_a_tiny_run_writes_its_record(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "vae.json"
    code = vae_vs_torch.main(["--batches", "4,8", "--hidden", "8,8", "--latent", "3",
                              "--steps", "1", "--rounds", "2", "--peers", "torch",
                              "--peak_size", "64", "--peak_repeats", "2", "--allow_busy",
                              "--out", str(out)])
    assert code == 0
    record = json.load(open(out))
    results = record["results"]
    assert results["matmul_peak"]["gflops"] > 0 and set(results["batches"]) == {"4", "8"}
    row = results["batches"]["8"]
    assert set(row["ms_per_step"]) == {"gmjax", "torch"}
    assert row["ratio_to_gmjax"]["torch"]["rounds"] == 2
    share = row["share_of_matmul_peak"]["gmjax"]["max"]  # the fastest round's
    assert share == pytest.approx(row["matmul_flops_per_step"]
                                  / (row["ms_per_step"]["gmjax"]["min"] * 1e-3)
                                  / (results["matmul_peak"]["gflops"] * 1e9), rel=1e-9)


def test_bad_options_name_the_valid_choices(capsys):
    with pytest.raises(SystemExit):
        vae_vs_torch.main(["--xla_variants", "onednn,mkl"])
    assert "unknown --xla_variants mkl; valid choices: default, onednn" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        vae_vs_torch.main(["--peers", "jax"])
    assert "valid choices: torch, torch_compile" in capsys.readouterr().err


@pytest.mark.slow
def test_xla_variants_run_in_their_own_processes(tmp_path):
    import argparse

    args = argparse.Namespace(threads=1, steps=1, rounds=2, batches=[4], hidden=[8], latent=2,
                              peak_size=64, peak_repeats=2)
    out = vae_vs_torch.run_variants(args, ["default", "onednn"])
    assert out["default"]["batches"]["4"]["ratio_to_default"] == 1.0
    assert "batches" in out["onednn"] or "error" in out["onednn"]
    assert np.isfinite(out["default"]["matmul_peak"]["gflops"])
