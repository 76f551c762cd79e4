"""Figures of latent-variable models: the latent scatter and gradient-estimator variances.

Image grids (reconstructions, prior samples, interpolations, the decoded
manifold) are ``gmjax.viz.save_image_grid``; these are the plots of values.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import matplotlib
import numpy as np

from gmjax.viz.figure import legend, panels, save_figure, style_axes


def plot_latent_scatter(path: str, codes: np.ndarray, labels: Optional[np.ndarray] = None,
                        title: str = "") -> str:
    """The posterior means ``codes [n, >=2]`` of test examples in latent dimensions 1 and 2,
    coloured by class ``labels [n]`` (one legend entry per class) where there are labels."""
    codes = np.asarray(codes)
    fig, axes = panels(1, 1, (5.0, 4.5))
    ax = axes[0, 0]
    if labels is None:
        ax.scatter(codes[:, 0], codes[:, 1], s=3, alpha=0.6)
    else:
        labels = np.asarray(labels)
        cmap = matplotlib.colormaps["tab10"]
        for i, label in enumerate(np.unique(labels)):
            mask = labels == label
            ax.scatter(codes[mask, 0], codes[mask, 1], s=3, alpha=0.7, color=cmap(i % 10),
                       label=str(label))
        legend(ax, markerscale=3, loc="best", ncol=2)
    style_axes(ax, "z1 (posterior mean)", "z2 (posterior mean)",
               f"latent codes of {len(codes)} test examples")
    ax.set_aspect("equal", adjustable="datalim")
    return save_figure(fig, path, title=title)


def plot_gradient_variance(path: str, steps: Sequence[int],
                           variances: Mapping[str, Sequence[float]],
                           ylabel: str = "gradient variance (sum over encoder parameters)",
                           title: str = "") -> str:
    """One line per estimator: the variance of its gradient against the training step, both on
    log scales (the steps on a symmetric one, so step 0 shows; values <= 0 are left out, a log
    axis cannot show them)."""
    fig, axes = panels(1, 1, (6.0, 4.2))
    ax = axes[0, 0]
    for name, values in variances.items():
        values = np.asarray(values, dtype=float)
        keep = values > 0
        ax.plot(np.asarray(steps)[keep], values[keep], "o-", markersize=4, lw=1.2, label=name)
    ax.set_yscale("log")
    positive = np.asarray(steps)[np.asarray(steps) > 0]
    ax.set_xscale("symlog", linthresh=float(positive.min()) if positive.size else 1.0)
    ax.set_xlim(0, float(max(steps)) * 1.3 if len(steps) else 1.0)
    style_axes(ax, "training step of the model (symmetric log scale)", ylabel,
               "gradient estimator variance")
    legend(ax)
    return save_figure(fig, path, title=title)
