"""Training curves from ``metrics.jsonl``."""

from __future__ import annotations

from typing import Iterable, Mapping, Optional, Sequence

from gmjax.viz.figure import legend, panels, save_figure, style_axes

# Axis labels (with units) of the metrics the experiment scripts log; any other
# metric is labelled with its own name.
METRIC_LABELS = {
    "loss": "loss (mean over the logged window)",
    "test_nll": "test NLL (nats per example)",
    "bits_per_dim": "test bits per dimension",
    "test_accuracy": "test accuracy (fraction correct)",
    "critic/loss": "critic loss",
    "gen/loss": "generator loss",
    "critic/d_real": "D(real) (mean critic output)",
    "critic/d_fake": "D(fake) (mean critic output)",
}

SPLIT_NAMES = {"train": "training batches", "eval": "held-out evaluation"}


def plot_curves(path: str, records: Iterable[Mapping], names: Sequence[str] = ("loss",),
                title: str = "", labels: Optional[Mapping[str, str]] = None) -> str:
    """One panel per metric in ``names``: its value against the training step.

    Train and eval records (``split``) are drawn apart -- a line for the train
    logs, dots joined for the evaluations -- with a legend when a metric has
    both. ``labels`` maps a metric to its y-axis label; by default
    ``METRIC_LABELS``, else the metric's name.
    """
    records = list(records)
    labels = {**METRIC_LABELS, **(labels or {})}
    fig, axes = panels(1, len(names), (5.0, 3.6))
    for ax, name in zip(axes[0], names):
        splits = []
        for split, style in (("train", "-"), ("eval", "o-")):
            points = [(r["step"], r[name]) for r in records
                      if r.get("split") == split and isinstance(r.get(name), (int, float))]
            if points:
                steps, values = zip(*points)
                ax.plot(steps, values, style, label=SPLIT_NAMES[split], markersize=3, lw=1.2)
                splits.append(SPLIT_NAMES[split])
        label = labels.get(name, name)
        style_axes(ax, "training step", label,
                   f"{label.split(' (')[0]} ({' and '.join(splits) or 'no records'})")
        if len(splits) > 1:
            legend(ax)
    return save_figure(fig, path, title)
