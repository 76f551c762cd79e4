"""The TemperFlow table script: run directories in, the JSON that docs/generate_tables.py
renders out."""

import json
import os

import pytest

from experiments import temperflow_table


def write_metrics(path, **metrics):
    os.makedirs(path)
    with open(os.path.join(path, "metrics.json"), "w") as f:
        json.dump(metrics, f)


def flow_metrics(train_seconds, num_betas, max_error):
    return dict(method="temperflow", train_seconds=train_seconds, num_betas=num_betas,
                sample_seconds=0.25, rejection={}, sign_patterns_present=256,
                positive_frac_max_error=max_error, pattern_weight_tv=0.07)


def test_clayton_rows_are_the_ps_with_every_run(tmp_path, capsys):
    runs = tmp_path / "runs"
    write_metrics(runs / "p8-temperflow", **flow_metrics(123.4, 18, 0.0078))
    for method, seconds in (("mh", 0.24), ("hmc", 0.57), ("pt", 0.58)):
        write_metrics(runs / f"p8-{method}", method=method, sample_seconds=seconds)
    write_metrics(runs / "p32-temperflow", **flow_metrics(1221.0, 24, 0.073))
    write_metrics(runs / "p64-mh", method="mh", sample_seconds=0.37)  # chains only at p = 64

    rows = temperflow_table.rows_clayton(str(runs))

    assert [r["p"] for r in rows] == [8]  # p = 16 has no runs at all; 32 and 64 only some
    assert set(rows[0]) == {"p", "temperflow", "mh", "hmc", "pt"}
    assert rows[0]["temperflow"]["num_betas"] == 18 and rows[0]["hmc"]["sample_seconds"] == 0.57
    err = capsys.readouterr().err
    assert "p = 32 left out: no finished mh, hmc, pt run" in err
    assert "p = 64 left out: no finished temperflow, hmc, pt run" in err


def test_2d_rows_name_each_run_by_its_directory(tmp_path):
    runs = tmp_path / "runs"
    write_metrics(runs / "grid-temperflow", method="temperflow", target="grid", num_betas=31)
    # The fixed-grid ablation is a method=temperflow run; its row is named by its directory.
    write_metrics(runs / "circle-l2-fixed-grid", method="temperflow", target="circle",
                  num_betas=10)
    write_metrics(runs / "circle-pt", method="pt", target="circle")
    write_metrics(runs / "circle-extra", method="kl", target="circle")  # not a table run

    rows = temperflow_table.rows_2d(str(runs))

    assert [(r["run"], r["method"]) for r in rows] == [
        ("circle-l2-fixed-grid", "l2-fixed-grid"), ("circle-pt", "pt"),
        ("grid-temperflow", "temperflow")]
    assert rows[0]["num_betas"] == 10


@pytest.mark.parametrize("name,kind", [("temperflow_2d", "2d"), ("temperflow_clayton", "clayton"),
                                       ("temperflow_clayton_forward_kl", "clayton")])
def test_the_docs_json_comes_back_from_its_runs(repo_root, tmp_path, name, kind):
    # The runs behind each JSON file in docs/results, written back as run directories,
    # give the same JSON: the files the docs render keep their layout.
    with open(os.path.join(repo_root, "docs", "results", f"{name}.json")) as f:
        rows = json.load(f)
    runs = tmp_path / "runs"
    for row in rows:
        if kind == "2d":
            write_metrics(runs / row["run"], **{k: v for k, v in row.items() if k != "run"})
        else:
            for method in temperflow_table.CLAYTON_RUNS:
                write_metrics(runs / f"p{row['p']}-{method}", **row[method])

    if kind == "2d":
        again = temperflow_table.rows_2d(str(runs))
    else:
        again = temperflow_table.rows_clayton(str(runs))
    path = temperflow_table.write_json(str(tmp_path / "out"), name, again)

    assert os.listdir(tmp_path / "out") == [f"{name}.json"]
    with open(path) as f:
        assert json.load(f) == rows


def test_each_recipe_has_its_own_file(repo_root):
    names = list(temperflow_table.CLAYTON_RECIPES.values())
    assert len(set(names)) == len(names) == 2
    for name in names:
        assert os.path.exists(os.path.join(repo_root, "docs", "results", f"{name}.json"))
