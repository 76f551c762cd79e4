"""sklearn's tabular data sets (gmjax.data.tabular) and continuous flows trained on them.

* loading: shapes, the fixed split (a partition of the data, the same for every seed),
  standardization with the training split's statistics;
* the Gaussian baseline of ``experiments/cnf.py`` against scipy;
* ``experiments/configs/cnf_tabular.py``: every model reads its own fields, and a tiny
  flow-matching run and a tiny FFJORD run with Hutchinson's trace in 30 dimensions write
  a finite test NLL and the baseline.
"""

import json
import re

import numpy as np
import pytest
import scipy.stats

from gmjax.data import load_dataset
from gmjax.data.tabular import TABULAR_DATA_SOURCES, _raw, split_indices, training_statistics

SIZES = {"wine": (142, 36, 13), "breast_cancer": (455, 114, 30)}


@pytest.mark.parametrize("name", sorted(TABULAR_DATA_SOURCES))
def test_loading_splits_and_standardization(name):
    n_train, n_test, dim = SIZES[name]
    train, test = load_dataset(name, "train"), load_dataset(name, "test")
    assert train.x.shape == (n_train, dim) and test.x.shape == (n_test, dim)
    assert train.x.dtype == np.float32 and train.y.dtype == np.int32 and test.y.shape == (n_test,)
    # Standardized with the training split's statistics: exactly on train, approximately on test.
    np.testing.assert_allclose(train.x.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(train.x.std(axis=0), 1.0, atol=1e-5)
    assert np.all(np.abs(test.x.mean(axis=0)) < 1.0)
    raw, labels = _raw(name)
    train_idx, test_idx = split_indices(len(raw))
    assert sorted(np.concatenate([train_idx, test_idx]).tolist()) == list(range(len(raw)))
    mean, std = training_statistics(name)
    np.testing.assert_allclose(test.x, (raw[test_idx] - mean) / std, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(test.y, labels[test_idx])
    # A fixed split: the seed does not move it; n and slices apply within it.
    np.testing.assert_array_equal(load_dataset(name, "train", seed=7).x, train.x)
    np.testing.assert_array_equal(load_dataset(name, "test", n=10).x, test.x[:10])
    assert len(load_dataset(name, "test[:50%]")) == (n_test + 1) // 2
    with pytest.raises(ValueError, match=f"has {n_test} examples"):
        load_dataset(name, "test", n=n_test + 1)


def test_the_gaussian_baseline_matches_scipy():
    from experiments.cnf import gaussian_test_nll

    train, test = load_dataset("wine", "train").x, load_dataset("wine", "test").x
    mean = train.astype(np.float64).mean(axis=0)
    cov = np.cov(train.astype(np.float64), rowvar=False, bias=True)
    expected = -scipy.stats.multivariate_normal(mean, cov).logpdf(test).mean()
    assert gaussian_test_nll(train, test) == pytest.approx(expected, rel=1e-10)


def tabular_config(changes):
    from experiments.configs import cnf_tabular

    config = cnf_tabular.get_config()
    for path, value in changes.items():
        block, field = path.split(".")
        config[block][field] = value
    return config


@pytest.mark.parametrize("model", ["ffjord", "otflow", "flow_matching"])
def test_the_tabular_config_passes_the_checks_for_every_model(model):
    from experiments import cnf
    from experiments.configs import cnf_tabular
    from gmjax.experiment import contract_violations, preflight

    config = tabular_config({"model.name": model})
    unread, reads = preflight(cnf.EXPERIMENT, config, cnf_tabular.get_config())
    assert contract_violations(config, reads, unread) == []
    assert "data.data_dir" in unread


def test_toy_sizes_on_a_tabular_set_are_refused_before_any_work():
    from experiments import cnf
    from experiments.configs import cnf_toy
    from gmjax.experiment import ConfigError, preflight

    config = cnf_toy.get_config()
    config.data.name = "wine"
    with pytest.raises(ConfigError, match=re.escape(
            "--config.data.num_train: n=50000 but wine 'train' has 142 examples")):
        preflight(cnf.EXPERIMENT, config)
    del config.data["num_train"], config.data["num_test"]
    config.data.name = "moons"
    with pytest.raises(ConfigError, match="is a toy density: the config needs data.num_train"):
        preflight(cnf.EXPERIMENT, config)


TINY = {"train.steps": 6, "train.log_every": 3, "train.eval_every": 6,
        "train.checkpoint_every": 6, "data.batch_size": 64, "model.hidden": (16,),
        "model.embed_dim": 8, "model.num_steps": 2, "eval.solver": "rk4",
        "eval.num_steps": 3, "eval.num_samples": 100, "eval.panels": 2}


@pytest.mark.parametrize("model,data", [("flow_matching", "wine"),
                                        ("ffjord", "breast_cancer")])
def test_a_tiny_run_reports_the_test_nll_and_the_gaussian_baseline(tmp_path, model, data):
    import warnings

    from experiments import cnf
    from experiments.configs import cnf_tabular
    from gmjax.experiment import ConfigContractWarning, run

    changes = {"model.name": model, "data.name": data, **TINY}
    if model == "flow_matching":
        del changes["model.num_steps"]  # no training solve
    config = tabular_config(changes)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConfigContractWarning)
        m = run(cnf.EXPERIMENT, config, str(tmp_path), defaults=cnf_tabular.get_config())
    assert m["steps"] == 6 and np.isfinite(m["test_nll"]) and "nll_excess" not in m
    baseline = cnf.gaussian_test_nll(load_dataset(data, "train").x, load_dataset(data, "test").x)
    assert m["gaussian_test_nll"] == pytest.approx(baseline)
    assert m["nfe_nll"] == 12 and m["nfe_sample"] == 12  # RK4, 3 steps
    train = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert [r["step"] for r in train if r["split"] == "train"] == [3, 6]
    if model == "ffjord":  # trained with Hutchinson's trace: one probe per solve
        assert config.model.trace == "hutchinson"
        assert all(r["nfe"] == 8 for r in train if r["split"] == "train")
    assert (tmp_path / "trajectories.png").exists() and not (tmp_path / "density.png").exists()


def test_table_cells_take_the_config_of_their_data_and_render():
    import os
    import sys

    from experiments import cnf_table

    wine = cnf_table.cell_config("flow_matching", "wine", 300, 20)
    assert "num_train" not in wine.data and wine.train.steps == 300
    assert wine.model.trace == "hutchinson" and wine.data.name == "wine"
    moons = cnf_table.cell_config("ffjord", "moons", 300, 20)
    assert moons.data.num_train == 50_000 and moons.train.steps == 20

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "docs"))
    import generate_tables

    empty = dict.fromkeys(cnf_table.COLUMNS)
    lines = generate_tables.cnf_tabular({
        "wine/flow_matching": {**empty, "test_nll": 17.5, "nfe_nll": 62.0, "nfe_sample": 50,
                               "train_seconds": 30.2, "steps": 5000},
        "wine/gaussian": {**empty, "test_nll": 19.405}})
    assert lines[2] == "| wine / Gaussian (fitted to train) | 19.405 | - | - | - | - |"
    assert lines[3] == "| wine / flow matching | 17.500 | 62 | 50 | 30 | 5,000 |"
