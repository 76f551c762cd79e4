"""2-D density figures: data, model samples and the model's density side by side."""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

from gmjax.viz.figure import plt, save_figure


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
                    title: str = "", bounds: Optional[Sequence[float]] = None) -> str:
    """Writes a PNG with panels *data*, *samples* and *density* (those given).

    Args:
      path: output file (``.png``).
      data: ``[n, 2]`` training or test points.
      samples: ``[m, 2]`` model samples.
      log_prob: vectorized model log-density for the heat map.
      bounds: ``(xmin, xmax, ymin, ymax)``; by default the data's 0.5-99.5%
        range with a margin.
    """
    if bounds is None:
        lo, hi = np.percentile(data, [0.5, 99.5], axis=0)
        pad = 0.15 * (hi - lo)
        bounds = (lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1])
    panels = [("data", data)]
    if samples is not None:
        panels.append(("samples", samples))
    fig, axes = plt.subplots(1, len(panels) + (log_prob is not None),
                             figsize=(4 * (len(panels) + (log_prob is not None)), 4),
                             squeeze=False)
    axes = axes[0]
    for ax, (name, points) in zip(axes, panels):
        ax.hist2d(points[:, 0], points[:, 1], bins=150,
                  range=[bounds[:2], bounds[2:]], cmap="viridis")
        ax.set_title(name)
    if log_prob is not None:
        xs, ys, logp = density_grid(log_prob, bounds)
        axes[-1].pcolormesh(xs, ys, np.exp(logp), cmap="viridis", shading="auto")
        axes[-1].set_title("density")
    for ax in axes:
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    return save_figure(fig, path, title)
