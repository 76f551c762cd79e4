"""Figures for samplers: the tempering trace and samples against the target."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Sequence, Tuple

import numpy as np

from gmjax.viz.density2d import plot_density_2d
from gmjax.viz.figure import plt, save_figure


def plot_beta_trace(path: str, stages: Sequence[Mapping[str, Any]], title: str = "") -> str:
    """beta per stage (log scale) and the estimated KL(p_beta || p_1) beside it.

    ``stages`` are TemperFlow's stage records (``StageInfo.to_record()``:
    ``beta``, ``loss``, optional ``kl`` and ``ref_updated``). Stages where the
    reference flow was refreshed are ringed.
    """
    index = np.arange(len(stages))
    betas = np.array([s["beta"] for s in stages])
    fig, (ax_beta, ax_kl) = plt.subplots(1, 2, figsize=(9, 3.5))
    colors = ["tab:red" if s["loss"] == "reverse_kl" else "tab:blue" for s in stages]
    later = sorted({s["loss"] for s in stages if s["loss"] != "reverse_kl"})
    ax_beta.plot(index, betas, color="0.6", lw=1)
    ax_beta.scatter(index, betas, c=colors, zorder=3, s=25)
    refreshed = [i for i, s in enumerate(stages) if s.get("ref_updated")]
    ax_beta.scatter(index[refreshed], betas[refreshed], facecolors="none", edgecolors="k",
                    s=90, zorder=4, label="reference refreshed")
    ax_beta.set_yscale("log")
    ax_beta.set_xlabel("stage")
    ax_beta.set_ylabel("beta")
    ax_beta.set_title(f"temperatures (red: reverse_kl, blue: {', '.join(later) or '-'})",
                      fontsize=9)
    if refreshed:
        ax_beta.legend(fontsize=8, loc="lower right")
    with_kl = [(i, s["kl"]) for i, s in enumerate(stages) if "kl" in s]
    if with_kl:
        i, kl = zip(*with_kl)
        ax_kl.semilogy(i, np.maximum(kl, 1e-8), "o-")
    ax_kl.set_xlabel("stage")
    ax_kl.set_ylabel("KL(p_beta || p_1) estimate")
    return save_figure(fig, path, title)


def plot_weight_trace(path: str, stages: Sequence[Mapping[str, Any]],
                      truth: Optional[Sequence[float]] = None, title: str = "") -> Optional[str]:
    """The flow's mode weights along the tempering curve against the target's.

    ``stages`` carry ``weights_flow`` and ``weights_target_is`` (importance-sampling
    estimates under p_beta from the flow's own draws, ``weights_is_ess``). Left:
    each weight per stage, flow solid, tempered target dashed, ``truth`` (the
    weights at beta = 1) dotted. Right: the largest gap between the two and the
    effective sample size behind the estimate. Returns None when no stage has them.
    """
    rows = [s for s in stages if "weights_flow" in s]
    if not rows:
        return None
    betas = np.array([s["beta"] for s in rows])
    flow = np.array([s["weights_flow"] for s in rows])
    est = np.array([s["weights_target_is"] for s in rows])
    index = np.arange(len(rows))
    fig, (ax_w, ax_lag) = plt.subplots(1, 2, figsize=(10, 3.8))
    colors = plt.cm.tab10(np.linspace(0, 1, 10))
    for k in range(flow.shape[1]):
        c = colors[k % 10]
        ax_w.plot(index, flow[:, k], "-", color=c, lw=1.2)
        ax_w.plot(index, est[:, k], "--", color=c, lw=1)
        if truth is not None:
            ax_w.axhline(truth[k], color=c, ls=":", lw=0.8)
    ax_w.set_xlabel("stage")
    ax_w.set_ylabel("weight")
    ax_w.set_title("flow (solid) vs p_beta by IS (dashed), beta = 1 truth (dotted)",
                   fontsize=8)
    ax_lag.plot(index, [s["weights_lag"] for s in rows], "o-", label="max |flow - IS|")
    ax_lag.set_xlabel("stage")
    ax_lag.set_ylabel("max weight gap")
    twin = ax_lag.twinx()
    twin.semilogy(index, [s["weights_is_ess"] for s in rows], "x:", color="0.5")
    twin.set_ylabel("IS effective sample size", color="0.4")
    ax_lag.set_title("beta: " + ", ".join(f"{b:.2g}" for b in betas[::max(1, len(betas) // 8)]),
                     fontsize=8)
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


def plot_target_samples(path: str, samples: np.ndarray, exact: np.ndarray,
                        log_prob: Optional[Callable[[np.ndarray], np.ndarray]] = None,
                        title: str = "") -> str:
    """A sampler's points against a target's exact draws.

    In 2-D: both over the target's density (``log_prob``); in more dimensions:
    scatter plots of coordinate pairs (x0, x1), (x2, x3) and, from 10
    dimensions on, (x0, x8) and (x8, x9).
    """
    samples, exact = np.asarray(samples), np.asarray(exact)
    if samples.shape[1] == 2:
        lo = np.minimum(exact.min(0), -1.0) - 1.0
        hi = np.maximum(exact.max(0), 1.0) + 1.0
        return plot_density_2d(path, exact, samples, log_prob=log_prob, title=title,
                               bounds=(lo[0], hi[0], lo[1], hi[1]))
    pairs = [(0, 1), (2, 3)] + ([(0, 8), (8, 9)] if samples.shape[1] > 9 else [])
    return plot_sample_pairs(path, samples, exact, pairs, title=title)
