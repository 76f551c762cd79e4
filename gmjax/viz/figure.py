"""Writing matplotlib figures to disk (Agg backend: no display needed)."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def save_figure(fig: "plt.Figure", path: str, title: str = "", dpi: int = 100) -> str:
    """Adds the optional super-title, lays out, writes ``path`` (PNG) and closes ``fig``."""
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
