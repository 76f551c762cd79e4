"""Figures for samplers: the tempering trace and samples against the target."""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence, Tuple

import numpy as np

from gmjax.viz.figure import plt, save_figure


def plot_beta_trace(path: str, stages: Sequence[Mapping[str, Any]], title: str = "") -> str:
    """beta per stage (log scale) and the estimated KL(p_beta || p_1) beside it.

    ``stages`` are TemperFlow's stage records (``beta``, ``kind``, optional
    ``kl`` and ``ref_updated``). Stages where the reference flow was
    refreshed are ringed.
    """
    index = np.arange(len(stages))
    betas = np.array([s["beta"] for s in stages])
    fig, (ax_beta, ax_kl) = plt.subplots(1, 2, figsize=(9, 3.5))
    colors = ["tab:red" if s["kind"] == "kl" else "tab:blue" for s in stages]
    ax_beta.plot(index, betas, color="0.6", lw=1)
    ax_beta.scatter(index, betas, c=colors, zorder=3, s=25)
    refreshed = [i for i, s in enumerate(stages) if s.get("ref_updated")]
    ax_beta.scatter(index[refreshed], betas[refreshed], facecolors="none", edgecolors="k",
                    s=90, zorder=4, label="reference refreshed")
    ax_beta.set_yscale("log")
    ax_beta.set_xlabel("stage")
    ax_beta.set_ylabel("beta")
    ax_beta.set_title("temperatures (red: KL stage, blue: L2 stage)", fontsize=9)
    if refreshed:
        ax_beta.legend(fontsize=8, loc="lower right")
    with_kl = [(i, s["kl"]) for i, s in enumerate(stages) if "kl" in s]
    if with_kl:
        i, kl = zip(*with_kl)
        ax_kl.semilogy(i, np.maximum(kl, 1e-8), "o-")
    ax_kl.set_xlabel("stage")
    ax_kl.set_ylabel("KL(p_beta || p_1) estimate")
    return save_figure(fig, path, title)


def plot_sample_pairs(path: str, samples: np.ndarray, reference: np.ndarray,
                      pairs: Sequence[Tuple[int, int]] = ((0, 1),),
                      title: str = "", bounds: Optional[Sequence[float]] = None,
                      max_points: int = 5000) -> str:
    """Scatter plots of coordinate pairs: sampler (top row) against exact draws (bottom)."""
    samples, reference = np.asarray(samples)[:max_points], np.asarray(reference)[:max_points]
    fig, axes = plt.subplots(2, len(pairs), figsize=(3.2 * len(pairs), 6.4), squeeze=False)
    for col, (i, j) in enumerate(pairs):
        for row, (name, points) in enumerate((("sampler", samples), ("exact", reference))):
            ax = axes[row, col]
            ax.scatter(points[:, i], points[:, j], s=1, alpha=0.3)
            ax.set_title(f"{name}: x{i} vs x{j}", fontsize=9)
            if bounds is not None:
                ax.set_xlim(bounds[:2])
                ax.set_ylim(bounds[2:])
    return save_figure(fig, path, title)
