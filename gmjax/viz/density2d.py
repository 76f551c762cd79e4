"""2-D density figures: data, model samples and the model's density side by side."""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np
from mpl_toolkits.axes_grid1 import make_axes_locatable

from gmjax.viz.figure import LABEL_SIZE, panels, plane_axes, save_figure

PANEL_NAMES = ("data", "model samples", "model density")


def density_grid(log_prob: Callable[[np.ndarray], np.ndarray], bounds: Sequence[float],
                 resolution: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluates ``log_prob`` on a ``resolution x resolution`` grid over ``bounds``.

    Returns ``(xs, ys, log_density [resolution, resolution])``.
    """
    xmin, xmax, ymin, ymax = bounds
    xs = np.linspace(xmin, xmax, resolution)
    ys = np.linspace(ymin, ymax, resolution)
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2).astype(np.float32)
    return xs, ys, np.asarray(log_prob(grid)).reshape(resolution, resolution)


def plot_density_2d(path: str, data: np.ndarray, samples: Optional[np.ndarray] = None,
                    log_prob: Optional[Callable[[np.ndarray], np.ndarray]] = None,
                    title: str = "", bounds: Optional[Sequence[float]] = None,
                    names: Sequence[str] = PANEL_NAMES) -> str:
    """Writes a PNG with panels *data*, *samples* and *density* (those given).

    The point panels are 2-D histograms (150 bins a side, colour: count per
    bin); the density panel is ``exp(log_prob)`` on a 200 x 200 grid with its
    colour bar. All share ``bounds`` and the axes ``x1``, ``x2``.

    Args:
      path: output file (``.png``).
      data: ``[n, 2]`` training or test points.
      samples: ``[m, 2]`` model samples.
      log_prob: vectorized model log-density for the heat map.
      title: the figure's title.
      bounds: ``(xmin, xmax, ymin, ymax)``; by default the data's 0.5-99.5%
        range with a margin.
      names: the three panels' names (data, samples, density).
    """
    if bounds is None:
        lo, hi = np.percentile(data, [0.5, 99.5], axis=0)
        pad = 0.15 * (hi - lo)
        bounds = (lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1])
    panel_data = [(names[0], data)]
    if samples is not None:
        panel_data.append((names[1], samples))
    count = len(panel_data) + (log_prob is not None)
    # Panels as wide as the data are, so that equal aspect leaves no blank margins.
    aspect = (bounds[3] - bounds[2]) / (bounds[1] - bounds[0])
    height = float(np.clip(3.6 * aspect, 2.2, 4.5))
    fig, axes = panels(1, count, (3.6 + 0.45 * (log_prob is not None), height + 0.7))
    axes = axes[0]
    for ax, (name, points) in zip(axes, panel_data):
        ax.hist2d(points[:, 0], points[:, 1], bins=150,
                  range=[bounds[:2], bounds[2:]], cmap="viridis")
        plane_axes(ax, f"{name} ({len(points):,} points)", bounds)
    if log_prob is not None:
        xs, ys, logp = density_grid(log_prob, bounds)
        mesh = axes[-1].pcolormesh(xs, ys, np.exp(logp), cmap="viridis", shading="auto")
        plane_axes(axes[-1], names[2], bounds)
        # A colour bar exactly as tall as its (equal-aspect) panel.
        bar = fig.colorbar(mesh, cax=make_axes_locatable(axes[-1]).append_axes(
            "right", size="5%", pad=0.08))
        bar.set_label("density", fontsize=LABEL_SIZE)
        bar.ax.tick_params(labelsize=LABEL_SIZE - 1)
    return save_figure(fig, path, title)
