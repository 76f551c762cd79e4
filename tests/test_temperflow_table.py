"""The Clayton Table S1 writer: rows from a runs directory, one file per recipe."""

import json
import os

import pytest

from experiments import temperflow_table


def write_metrics(path, **metrics):
    os.makedirs(path)
    with open(os.path.join(path, "metrics.json"), "w") as f:
        json.dump(metrics, f)


def flow_metrics(train_seconds, num_betas, max_error, rejection=None):
    return dict(train_seconds=train_seconds, num_betas=num_betas, sample_seconds=0.25,
                rejection=rejection or {}, sign_patterns_present=256,
                positive_frac_max_error=max_error, pattern_weight_tv=0.07)


@pytest.mark.parametrize("recipe", ["l2", "forward_kl"])
def test_clayton_table_reads_each_p_and_names_its_recipe(tmp_path, recipe):
    runs, out = tmp_path / "runs", tmp_path / "out"
    write_metrics(runs / "p8-temperflow", **flow_metrics(
        123.4, 18, 0.0078, {"acceptance_rate": 0.031, "sample_seconds": 1.5}))
    for method, seconds in (("mh", 0.24), ("hmc", 0.57), ("pt", 0.58)):
        write_metrics(runs / f"p8-{method}", sample_seconds=seconds)
    write_metrics(runs / "p32-temperflow", **flow_metrics(1221.0, 24, 0.073))
    write_metrics(runs / "p64-mh", sample_seconds=0.37)  # chains only at p = 64

    text = temperflow_table.table_clayton(str(runs), str(out), recipe)

    name, how = temperflow_table.CLAYTON_RECIPES[recipe]
    assert sorted(os.listdir(out)) == [f"{name}.json", f"{name}.md"]
    assert (out / f"{name}.md").read_text() == text + "\n"
    lines = text.splitlines()
    row = {line.split(" | ")[0]: line for line in lines if line.startswith("| ") and
           line[2:4].strip().isdigit()}
    assert set(row) == {"| 8", "| 32", "| 64"}  # p = 16 has no runs at all
    assert row["| 8"] == ("| 8 | 123.4 | 18 | 0.2500 | 1.500 (0.0310) | 0.24 | 0.57 | 0.58 | "
                          "256/256 | 0.008 | 0.070 |")
    assert "below the minimum acceptance | - | - | - | 256/256 | 0.073 |" in row["| 32"]
    assert row["| 64"].startswith("| 64 | not run | - | - | - | 0.37 | - | - |")
    assert how in lines and "Table S1" in lines[-1]
    rows = json.loads((out / f"{name}.json").read_text())
    assert [r["p"] for r in rows] == [8, 32, 64]
    assert rows[0]["temperflow"]["num_betas"] == 18


def test_the_two_recipes_write_different_files():
    names = [name for name, _ in temperflow_table.CLAYTON_RECIPES.values()]
    assert len(set(names)) == len(names) == 2
