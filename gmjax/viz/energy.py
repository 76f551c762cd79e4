"""Samples drawn over the contours of an unnormalized 2-D density ``exp(-E)``."""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

from gmjax.viz.density2d import density_grid
from gmjax.viz.figure import panels, plane_axes, save_figure


def plot_samples_on_density(path: str, samples: np.ndarray,
                            log_prob: Callable[[np.ndarray], np.ndarray], title: str = "",
                            bounds: Optional[Sequence[float]] = None,
                            name: str = "samples", levels: int = 8,
                            max_points: int = 3000) -> str:
    """Writes a PNG of ``samples [n, 2]`` (a scatter) over the contours of ``exp(log_prob)``.

    The contours are drawn at ``levels`` equally spaced heights of
    ``exp(log_prob - max log_prob)`` on a 200 x 200 grid, so ``log_prob`` may
    be unnormalized (``-E``). At most ``max_points`` points are drawn.

    Args:
      bounds: ``(xmin, xmax, ymin, ymax)``; by default the samples' 0.5-99.5%
        range with a margin.
      name: what the points are, for the panel's title.
    """
    samples = np.asarray(samples)
    if bounds is None:
        lo, hi = np.percentile(samples, [0.5, 99.5], axis=0)
        pad = 0.2 * (hi - lo) + 0.5
        bounds = (lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1])
    xs, ys, logp = density_grid(log_prob, bounds)
    relative = np.exp(logp - logp.max())
    fig, axes = panels(1, 1, (4.6, 4.4))
    ax = axes[0, 0]
    ax.contour(xs, ys, relative, levels=np.linspace(0.05, 0.95, levels), cmap="viridis",
               linewidths=0.8)
    shown = samples[:max_points]
    ax.scatter(shown[:, 0], shown[:, 1], s=2, c="tab:red", alpha=0.5, linewidths=0)
    plane_axes(ax, f"{name} ({len(shown):,} points) over\ncontours of exp(-E)", bounds)
    return save_figure(fig, path, title)


__all__ = ["plot_samples_on_density"]
