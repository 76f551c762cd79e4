"""Training curves from ``metrics.jsonl``."""

from __future__ import annotations

import os
from typing import Iterable, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


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
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
