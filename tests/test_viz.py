"""Every public plotting function writes a PNG whose panels a reader can read.

The figures are caught before they are closed and checked with
``gmjax.viz.figure.unlabeled_axes``: titles, axis labels, tick labels, and a
legend where a panel has several lines.
"""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from gmjax import viz
from gmjax.viz import figure, samplers

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def figures(monkeypatch):
    """The figures the plotting functions close, kept open to be inspected."""
    kept = []
    close = plt.close
    monkeypatch.setattr(plt, "close", lambda fig=None: kept.append(fig))
    yield kept
    for fig in kept:
        close(fig)


def only_figure(figures, path):
    assert len(figures) == 1
    with open(path, "rb") as f:
        assert f.read(8) == PNG
    return figures[0]


def gaussian_log_prob(x):
    return -0.5 * np.sum(np.square(x), axis=-1) - np.log(2 * np.pi)


def stage_records(num_stages=6, num_modes=8):
    rng = np.random.default_rng(0)
    betas = np.geomspace(0.1, 1.0, num_stages)
    records = []
    for i, beta in enumerate(betas):
        flow = rng.dirichlet(np.full(num_modes, 50.0))
        target = rng.dirichlet(np.full(num_modes, 50.0))
        records.append({"stage": i, "beta": float(beta),
                        "loss": "reverse_kl" if i == 0 else "l2_distance",
                        "kl": float(2.0 * (1 - beta)) + 1e-3, "ref_updated": i % 2 == 1,
                        "weights_flow": flow.tolist(), "weights_target_is": target.tolist(),
                        "weights_is_ess": 5000.0 + i,
                        "weights_lag": float(np.max(np.abs(flow - target)))})
    return records


def test_the_check_catches_a_bare_panel_and_unlegended_lines():
    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [0, 1, 4])
    ax.plot([0, 1, 2], [1, 2, 3])
    problems = figure.unlabeled_axes(fig)
    assert any("no title" in p for p in problems)
    assert any("no x label" in p for p in problems)
    assert any("no y label" in p for p in problems)
    assert any("2 lines and no legend" in p for p in problems)
    figure.style_axes(ax, "step", "value", "two curves")
    ax.lines[0].set_label("a")
    ax.lines[1].set_label("b")
    figure.legend(ax)
    assert figure.unlabeled_axes(fig) == []
    plt.close(fig)


def test_the_check_wants_a_title_on_an_image_panel_and_no_axis_labels():
    fig, ax = plt.subplots()
    ax.imshow(np.zeros((4, 4)))
    ax.set_xticks([])
    ax.set_yticks([])
    assert figure.unlabeled_axes(fig) == ["axes 0 (untitled): no title"]
    figure.image_axes(ax, "a 4 x 4 image")
    assert figure.unlabeled_axes(fig) == []
    plt.close(fig)


def test_plot_curves(figures, tmp_path):
    records = [{"split": "train", "step": s, "loss": 3.0 / s} for s in (100, 200, 300)]
    records += [{"split": "eval", "step": s, "test_nll": 2.0 / s} for s in (100, 300)]
    records += [{"split": "eval", "step": 300, "loss": 0.02}]
    path = viz.plot_curves(str(tmp_path / "curves.png"), records, names=("loss", "test_nll"))
    fig = only_figure(figures, path)
    assert figure.unlabeled_axes(fig) == []
    loss_ax, nll_ax = fig.axes
    assert loss_ax.get_xlabel() == "training step"
    assert nll_ax.get_ylabel() == "test NLL (nats per example)"
    # Train and eval records of one metric: two lines, told apart by a legend.
    assert [t.get_text() for t in loss_ax.get_legend().get_texts()] == [
        "training batches", "held-out evaluation"]
    assert nll_ax.get_legend() is None


@pytest.mark.parametrize("with_samples,with_density", [(True, True), (False, False)])
def test_plot_density_2d(figures, tmp_path, with_samples, with_density):
    rng = np.random.default_rng(0)
    data = rng.normal(size=(2000, 2)) * [2.0, 1.0]
    path = viz.plot_density_2d(str(tmp_path / "density.png"), data,
                               samples=data[::-1] if with_samples else None,
                               log_prob=gaussian_log_prob if with_density else None,
                               title="a Gaussian")
    fig = only_figure(figures, path)
    assert figure.unlabeled_axes(fig) == []
    panels = [ax for ax in fig.axes if not hasattr(ax, "_colorbar")]
    assert len(panels) == 1 + with_samples + with_density
    for ax in panels:
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("x1", "x2")
    assert len(fig.axes) == len(panels) + with_density  # the density's colour bar


def test_save_image_grid(figures, tmp_path):
    images = np.random.default_rng(0).uniform(size=(12, 8, 8, 1))
    path = viz.save_image_grid(str(tmp_path / "grid.png"), images, rows=3, title="noise")
    fig = only_figure(figures, path)
    assert figure.unlabeled_axes(fig) == []
    assert fig.axes[0].get_title() == "12 images, 3 rows of 4"
    assert fig.axes[0].get_xticks().size == 0


def test_plot_beta_trace(figures, tmp_path):
    path = samplers.plot_beta_trace(str(tmp_path / "beta.png"), stage_records(), title="run")
    fig = only_figure(figures, path)
    assert figure.unlabeled_axes(fig) == []
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["stage loss: reverse_kl", "stage loss: l2_distance", "reference refreshed"]


@pytest.mark.parametrize("truth", [np.full(8, 0.125), np.linspace(0.05, 0.2, 8), None])
def test_plot_weight_trace_names_every_mode(figures, tmp_path, truth):
    path = samplers.plot_weight_trace(str(tmp_path / "weights.png"), stage_records(), truth)
    fig = only_figure(figures, path)
    assert figure.unlabeled_axes(fig) == []
    ax_w = fig.axes[0]
    assert (ax_w.get_xlabel(), ax_w.get_ylabel()) == ("stage", "mode weight (share of draws)")
    entries = [t.get_text() for t in ax_w.get_legend().get_texts()]
    assert entries[:8] == [f"mode {k}" for k in range(1, 9)]
    assert entries[8] == "flow" and len(entries) == 10 + (truth is not None)
    # Eight modes: a solid line for the flow's weights and a dashed one for p_beta's each.
    assert len([line for line in ax_w.get_lines() if len(line.get_xdata()) > 2]) == 16


def test_plot_weight_trace_without_weights_and_with_wrong_names(figures, tmp_path):
    assert samplers.plot_weight_trace(str(tmp_path / "w.png"), [{"beta": 1.0}]) is None
    with pytest.raises(ValueError, match="3 names for 8 modes"):
        samplers.plot_weight_trace(str(tmp_path / "w.png"), stage_records(),
                                   mode_names=["a", "b", "c"])


@pytest.mark.parametrize("dim", [2, 3, 10])
def test_plot_target_samples(figures, tmp_path, dim):
    rng = np.random.default_rng(0)
    samples, exact = rng.normal(size=(500, dim)), rng.normal(size=(500, dim))
    log_prob = gaussian_log_prob if dim == 2 else None
    path = samplers.plot_target_samples(str(tmp_path / "samples.png"), samples, exact,
                                        log_prob, title="N(0, I)")
    fig = only_figure(figures, path)
    assert figure.unlabeled_axes(fig) == []
    labels = {(ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes if ax.get_xlabel()}
    expected = {2: {("x1", "x2")}, 3: {("x1", "x2")},
                10: {("x1", "x2"), ("x3", "x4"), ("x1", "x9"), ("x9", "x10")}}[dim]
    assert labels == expected


def test_the_weight_traces_diagnostic_figure(figures, tmp_path, capsys):
    import json

    from experiments.diagnostics import weight_traces
    from gmjax.samplers.temperflow import REFINE
    workdirs = []
    for name in ("l2", "forward_kl"):
        rows = [dict(r, phase=REFINE if r["stage"] == 5 else "temper", split="train",
                     step=r["stage"], sign_counts_flow=[0.1] * 8 + [0.2])
                for r in stage_records()]
        (tmp_path / name).mkdir()
        with open(tmp_path / name / "metrics.jsonl", "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
        workdirs.append(str(tmp_path / name))
    curve = {"beta": np.array([0.5, 1.0]), "mean": np.array([0.35, 0.3]),
             "ess": np.array([5e3, 5e3]), "counts": np.full((2, 9), 0.1)}
    path = weight_traces.plot(workdirs, str(tmp_path / "traces.png"), 0.3, "", curve)
    fig = only_figure(figures, path)
    assert figure.unlabeled_axes(fig) == []
    assert [ax.get_xlabel() for ax in fig.axes] == ["beta (inverse temperature)"] * 2


def test_the_temperflow_table_figure(figures, tmp_path):
    from experiments import temperflow_table
    path = temperflow_table.figure_2d(str(tmp_path / "runs"), str(tmp_path))
    fig = only_figure(figures, path)
    assert figure.unlabeled_axes(fig) == []
