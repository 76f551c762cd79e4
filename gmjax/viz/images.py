"""Grids of images: one array to look at, or a PNG."""

from __future__ import annotations

import numpy as np

from gmjax.viz.figure import image_axes, plt, save_figure


def image_grid(images: np.ndarray, rows: int) -> np.ndarray:
    """Tiles ``[n, h, w, c]`` images into one ``[rows * h, cols * w, c]`` image.

    ``cols = n // rows``; image ``r * cols + k`` lands at row r, column k (the
    last ``n mod rows`` images are dropped).
    """
    n, h, w, c = images.shape
    cols = n // rows
    grid = images[:rows * cols].reshape(rows, cols, h, w, c)
    return grid.transpose(0, 2, 1, 3, 4).reshape(rows * h, cols * w, c)


def save_image_grid(path: str, images: np.ndarray, rows: int, title: str = "") -> str:
    """Writes ``image_grid(images, rows)`` (values in [0, 1]; grey if one channel) to ``path``.

    Tiles are parted by a one-pixel grey gutter. The panel is titled with the
    grid's size (for example ``64 images, 8 rows of 8``) under the figure's
    ``title``; it has no ticks, as pixel positions carry no meaning.
    """
    images = np.asarray(images)
    # A one-pixel mid-grey gutter between tiles, so that neighbouring images stay apart.
    padded = np.pad(images, ((0, 0), (0, 1), (0, 1), (0, 0)), constant_values=0.5)
    grid = image_grid(padded, rows)[:-1, :-1]
    cols = images.shape[0] // rows
    fig, ax = plt.subplots(figsize=(5, 5.3 + 0.2 * title.count("\n")))
    ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0.0, vmax=1.0,
              interpolation="nearest")
    image_axes(ax, f"{rows * cols} images, {rows} rows of {cols}")
    return save_figure(fig, path, title=title)
