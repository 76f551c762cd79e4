"""Training curves from ``metrics.jsonl``."""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from gmjax.viz.figure import plt, save_figure


def plot_curves(path: str, records: Iterable[Mapping], names: Sequence[str] = ("loss",),
                title: str = "") -> str:
    """Plots each metric in ``names`` against ``step``, train and eval records apart."""
    records = list(records)
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.5), squeeze=False)
    for ax, name in zip(axes[0], names):
        for split, style in (("train", "-"), ("eval", "o-")):
            points = [(r["step"], r[name]) for r in records
                      if r.get("split") == split and isinstance(r.get(name), (int, float))]
            if points:
                steps, values = zip(*points)
                ax.plot(steps, values, style, label=split, markersize=3)
        ax.set_xlabel("step")
        ax.set_title(name)
        ax.legend()
    return save_figure(fig, path, title)
