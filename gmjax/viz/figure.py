"""Shared figure plumbing: panels, axis styling, legends, saving, and a label check.

Every figure in ``gmjax.viz`` is built from these helpers so that all of them
read the same way: each panel has a title saying what it shows; plots of values
have both axes labelled (with units where there are any) and ticks; scatter and
density plots of points use the coordinate names ``x1, x2, ...`` with equal
aspect; image grids have a title and no ticks; several lines get a legend.
``unlabeled_axes`` checks a figure against these rules (the tests run it on
every public plotting function). Matplotlib runs on the Agg backend: no
display is needed.
"""

from __future__ import annotations

import os
from typing import List, Optional, Sequence, Tuple

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

TITLE_SIZE = 10
LABEL_SIZE = 9
LEGEND_SIZE = 8


def panels(rows: int, cols: int, panel_size: Tuple[float, float] = (4.0, 3.5),
           **kwargs) -> Tuple["plt.Figure", np.ndarray]:
    """``plt.subplots`` with a ``[rows, cols]`` array of axes, each ``panel_size`` inches."""
    width, height = panel_size
    return plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False,
                        **kwargs)


def style_axes(ax: "plt.Axes", xlabel: str, ylabel: str, title: Optional[str] = None) -> None:
    """Labels both axes (and the panel title), at the shared font sizes."""
    ax.set_xlabel(xlabel, fontsize=LABEL_SIZE)
    ax.set_ylabel(ylabel, fontsize=LABEL_SIZE)
    ax.tick_params(labelsize=LABEL_SIZE - 1)
    if title is not None:
        ax.set_title(title, fontsize=TITLE_SIZE)


def coordinate_name(i: int) -> str:
    """The axis name of coordinate ``i`` (0-based index): ``x1, x2, ...``."""
    return f"x{i + 1}"


def plane_axes(ax: "plt.Axes", title: str, bounds: Optional[Sequence[float]] = None,
               dims: Tuple[int, int] = (0, 1)) -> None:
    """A panel of points in the plane: coordinates ``dims`` on the axes, equal aspect,
    a handful of ticks, and ``bounds = (xmin, xmax, ymin, ymax)`` as limits if given."""
    style_axes(ax, coordinate_name(dims[0]), coordinate_name(dims[1]), title)
    if bounds is not None:
        ax.set_xlim(bounds[0], bounds[1])
        ax.set_ylim(bounds[2], bounds[3])
    ax.set_aspect("equal")
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.yaxis.set_major_locator(MaxNLocator(5))


def image_axes(ax: "plt.Axes", title: str) -> None:
    """A panel showing an image: a title, no ticks (pixel indices carry no meaning)."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=TITLE_SIZE)


def legend(ax: "plt.Axes", handles: Optional[Sequence] = None, **kwargs) -> None:
    """A legend at the shared size, only when there are labelled artists to list."""
    if handles is None:
        handles, _ = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles=list(handles), fontsize=LEGEND_SIZE, **kwargs)


def save_figure(fig: "plt.Figure", path: str, title: str = "", dpi: int = 100) -> str:
    """Adds the optional super-title, lays out, writes ``path`` (PNG) and closes ``fig``."""
    if title:
        fig.suptitle(title, fontsize=TITLE_SIZE + 1)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def _is_colorbar(ax: "plt.Axes") -> bool:
    return hasattr(ax, "_colorbar")


def unlabeled_axes(fig: "plt.Figure") -> List[str]:
    """What a reader of ``fig`` would miss, one line per problem (empty: none).

    Checked for every visible panel but colour bars: a title (its own or the
    figure's); and for every panel but images (``imshow``), an x label and a y
    label (a label on an axis shared with another panel, such as a ``twinx``,
    counts for both), tick labels on both axes, and a legend or text labels
    when it has more than one line.
    """
    problems = []
    fig.canvas.draw()  # tick labels get their text when drawn
    axes = [ax for ax in fig.axes if ax.get_visible() and not _is_colorbar(ax)]
    suptitle = fig._suptitle.get_text() if fig._suptitle is not None else ""
    for n, ax in enumerate(axes):
        name = f"axes {n} ({ax.get_title() or 'untitled'})"
        twins = [other for other in axes if other is not ax and other.bbox.bounds == ax.bbox.bounds]
        if not (ax.get_title() or suptitle or any(t.get_title() for t in twins)):
            problems.append(f"{name}: no title")
        if ax.images:
            continue  # an image panel: a title is all it needs
        for axis, shared in (("x", ax.get_shared_x_axes()), ("y", ax.get_shared_y_axes())):
            siblings = [ax] + [o for o in axes if o is not ax and (
                shared.joined(ax, o) or (o in twins and axis == "x"))]
            if not any(getattr(o, f"get_{axis}label")() for o in siblings):
                problems.append(f"{name}: no {axis} label")
        for axis in ("x", "y"):
            if not any(t.get_text() for t in getattr(ax, f"get_{axis}ticklabels")()):
                if not any(any(t.get_text() for t in getattr(o, f"get_{axis}ticklabels")())
                           for o in twins):
                    problems.append(f"{name}: no {axis} tick labels")
        lines = [line for line in ax.get_lines() if len(line.get_xdata()) > 2]
        if len(lines) > 1 and ax.get_legend() is None and not ax.texts and not fig.legends:
            problems.append(f"{name}: {len(lines)} lines and no legend")
    return problems
