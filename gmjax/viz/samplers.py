"""Figures for samplers: the tempering trace and samples against the target."""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
from matplotlib.lines import Line2D

from gmjax.viz.density2d import plot_density_2d
from gmjax.viz.figure import (LABEL_SIZE, LEGEND_SIZE, coordinate_name, legend, panels,
                              plane_axes, plt, save_figure, style_axes)


def loss_colours(losses: Sequence[str]) -> Dict[str, Any]:
    """One colour per stage loss, in order of first use (reverse KL first, in red)."""
    palette = ["tab:red", "tab:blue", "tab:green", "tab:purple", "tab:brown", "tab:olive"]
    names = sorted(set(losses), key=lambda name: (name != "reverse_kl", losses.index(name)))
    return {name: palette[i % len(palette)] for i, name in enumerate(names)}


def beta_axis(ax: "plt.Axes", betas: Sequence[float], max_ticks: int = 8) -> None:
    """A second x axis on top of a per-stage panel: the stages' beta at a few stages."""
    ticks = np.unique(np.linspace(0, len(betas) - 1, min(len(betas), max_ticks)).round()
                      ).astype(int)
    top = ax.secondary_xaxis("top")
    top.set_xticks(ticks, labels=[f"{betas[i]:.2g}" for i in ticks])
    top.tick_params(labelsize=LABEL_SIZE - 1)
    top.set_xlabel("beta at that stage", fontsize=LABEL_SIZE)


def plot_beta_trace(path: str, stages: Sequence[Mapping[str, Any]], title: str = "") -> str:
    """beta per stage (log scale) and the estimated KL(p_beta || p_1) beside it.

    ``stages`` are TemperFlow's stage records (``StageInfo.to_record()``:
    ``beta``, ``loss``, optional ``kl`` and ``ref_updated``). Points are
    coloured by the stage's loss; stages where the reference flow was refreshed
    are ringed.
    """
    index = np.arange(len(stages))
    betas = np.array([s["beta"] for s in stages])
    losses = [s["loss"] for s in stages]
    colours = loss_colours(losses)
    fig, axes = panels(1, 2, (4.8, 3.6))
    ax_beta, ax_kl = axes[0]
    ax_beta.plot(index, betas, color="0.6", lw=1)
    for name, colour in colours.items():
        at = [i for i, loss in enumerate(losses) if loss == name]
        ax_beta.scatter(index[at], betas[at], color=colour, zorder=3, s=25,
                        label=f"stage loss: {name}")
    refreshed = [i for i, s in enumerate(stages) if s.get("ref_updated")]
    if refreshed:
        ax_beta.scatter(index[refreshed], betas[refreshed], facecolors="none",
                        edgecolors="k", s=90, zorder=4, label="reference refreshed")
    ax_beta.set_yscale("log")
    style_axes(ax_beta, "stage", "beta (inverse temperature, log scale)",
               "temperature schedule: beta per stage")
    legend(ax_beta, loc="lower right")
    with_kl = [(i, s["kl"]) for i, s in enumerate(stages) if "kl" in s]
    if with_kl:
        i, kl = zip(*with_kl)
        ax_kl.semilogy(i, np.maximum(kl, 1e-8), "o-", ms=4)
    ax_kl.set_xlim(ax_beta.get_xlim())
    style_axes(ax_kl, "stage", "KL(p_beta || p_1) estimate (nats, log scale)",
               "estimated KL to the target, per stage" if with_kl
               else "estimated KL to the target: not recorded")
    return save_figure(fig, path, title)


def plot_weight_trace(path: str, stages: Sequence[Mapping[str, Any]],
                      truth: Optional[Sequence[float]] = None, title: str = "",
                      mode_names: Optional[Sequence[str]] = None) -> Optional[str]:
    """The flow's mode weights along the tempering curve against the target's.

    ``stages`` carry ``weights_flow`` and ``weights_target_is`` (importance-sampling
    estimates under p_beta from the flow's own draws, ``weights_is_ess``). Left:
    each mode's weight per stage in its own colour (legend: ``mode_names``,
    default ``mode 1 ... mode K``), the flow's solid, the tempered target's
    dashed, ``truth`` (the weights at beta = 1) dotted -- one black line when
    all modes share it; the top axis gives the stages' beta. Right: the largest
    gap between the two and the effective sample size behind the estimate.
    Returns None when no stage has them.
    """
    rows = [s for s in stages if "weights_flow" in s]
    if not rows:
        return None
    betas = np.array([s["beta"] for s in rows])
    flow = np.array([s["weights_flow"] for s in rows])
    est = np.array([s["weights_target_is"] for s in rows])
    k_modes = flow.shape[1]
    names = list(mode_names) if mode_names is not None else [
        f"mode {k + 1}" for k in range(k_modes)]
    if len(names) != k_modes:
        raise ValueError(f"mode_names has {len(names)} names for {k_modes} modes")
    index = np.arange(len(rows))
    fig, (ax_w, ax_lag) = plt.subplots(
        1, 2, figsize=(13.0, 4.6), gridspec_kw={"width_ratios": [1.5, 1.0]})
    cmap = plt.cm.tab10 if k_modes <= 10 else plt.cm.tab20 if k_modes <= 20 else plt.cm.viridis
    colours = [cmap(k % 20) if k_modes <= 20 else cmap(k / (k_modes - 1))
               for k in range(k_modes)]
    shared_truth = truth is not None and np.allclose(truth, truth[0])
    for k in range(k_modes):
        ax_w.plot(index, flow[:, k], "-", color=colours[k], lw=1.4, marker=".", ms=4)
        ax_w.plot(index, est[:, k], "--", color=colours[k], lw=0.9, alpha=0.8)
        if truth is not None and not shared_truth:
            ax_w.axhline(truth[k], color=colours[k], ls=":", lw=0.8)
    if shared_truth:
        ax_w.axhline(truth[0], color="k", ls=":", lw=1.2)
    style_axes(ax_w, "stage", "mode weight (share of draws)",
               f"mode weights along the tempering curve ({k_modes} modes)")
    beta_axis(ax_w, betas)
    styles = [Line2D([], [], color="k", ls="-", marker=".", label="flow"),
              Line2D([], [], color="k", ls="--", label="p_beta\n(importance sampling)")]
    if truth is not None:
        styles.append(Line2D([], [], color="k", ls=":",
                             label="truth at beta = 1" + (f"\n(all modes: {truth[0]:.3g})"
                                                          if shared_truth else "")))
    # One legend right of the panel, clear of the lines: the modes' colours, then the styles.
    modes = [Line2D([], [], color=c, lw=2, label=n) for c, n in zip(colours, names)]
    ax_w.legend(handles=modes + styles, fontsize=LEGEND_SIZE, loc="upper left",
                bbox_to_anchor=(1.01, 1.0), ncol=1 + (k_modes - 1) // 14,
                title="colour: mode; style: source", title_fontsize=LEGEND_SIZE)
    gap, = ax_lag.plot(index, [s["weights_lag"] for s in rows], "o-", ms=4,
                       label="largest |flow - p_beta| weight gap")
    style_axes(ax_lag, "stage", "largest weight gap",
               "flow against p_beta: weight gap and IS sample size")
    twin = ax_lag.twinx()
    ess, = twin.semilogy(index, [s["weights_is_ess"] for s in rows], "x:", color="0.4",
                         label="IS effective sample size (right axis)")
    twin.set_ylabel("IS effective sample size (log scale)", color="0.3", fontsize=LABEL_SIZE)
    twin.tick_params(labelsize=LABEL_SIZE - 1)
    legend(ax_lag, handles=[gap, ess], loc="upper center", bbox_to_anchor=(0.5, -0.16),
           ncol=2)
    beta_axis(ax_lag, betas, max_ticks=6)
    return save_figure(fig, path, title)


def plot_sample_pairs(path: str, samples: np.ndarray, reference: np.ndarray,
                      pairs: Sequence[Tuple[int, int]] = ((0, 1),),
                      title: str = "", bounds: Optional[Sequence[float]] = None,
                      max_points: int = 5000) -> str:
    """Scatter plots of coordinate pairs: sampler (top row) against exact draws (bottom).

    ``pairs`` are 0-based coordinate indices; the axes name them ``x1, x2, ...``.
    Both rows of a column share limits: ``bounds`` if given, else the 0.5-99.5%
    range of both point sets with a margin.
    """
    samples, reference = np.asarray(samples)[:max_points], np.asarray(reference)[:max_points]
    fig, axes = panels(2, len(pairs), (3.4, 3.4))
    for col, (i, j) in enumerate(pairs):
        limits = bounds
        if limits is None:
            both = np.concatenate([samples[:, [i, j]], reference[:, [i, j]]])
            lo, hi = np.percentile(both, [0.5, 99.5], axis=0)
            pad = 0.1 * (hi - lo) + 1e-6
            limits = (lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1])
        for row, (name, points) in enumerate((("sampler", samples), ("exact draws", reference))):
            ax = axes[row, col]
            ax.scatter(points[:, i], points[:, j], s=1, alpha=0.3)
            plane_axes(ax, f"{name}: {coordinate_name(j)} against {coordinate_name(i)}",
                       limits, dims=(i, j))
    return save_figure(fig, path, title)


def plot_target_samples(path: str, samples: np.ndarray, exact: np.ndarray,
                        log_prob: Optional[Callable[[np.ndarray], np.ndarray]] = None,
                        title: str = "") -> str:
    """A sampler's points against a target's exact draws.

    In 2-D: panels of the exact draws, the sampler's draws and the target's
    density (``log_prob``); in more dimensions: scatter plots of coordinate
    pairs (x1, x2), (x3, x4) and, from 10 dimensions on, (x1, x9) and (x9, x10).
    """
    samples, exact = np.asarray(samples), np.asarray(exact)
    if samples.shape[1] == 2:
        lo = np.minimum(exact.min(0), -1.0) - 1.0
        hi = np.maximum(exact.max(0), 1.0) + 1.0
        return plot_density_2d(path, exact, samples, log_prob=log_prob, title=title,
                               bounds=(lo[0], hi[0], lo[1], hi[1]),
                               names=("exact draws", "sampler draws", "target density"))
    pairs = [(0, 1), (2, 3)] + ([(0, 8), (8, 9)] if samples.shape[1] > 9 else [])
    pairs = [(i, j) for i, j in pairs if j < samples.shape[1]]  # 3-D: (x1, x2) only
    return plot_sample_pairs(path, samples, exact, pairs, title=title)
