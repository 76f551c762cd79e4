"""Figures people look at instead of reading numbers."""

from gmjax.viz.curves import plot_curves
from gmjax.viz.density2d import density_grid, plot_density_2d

__all__ = ["plot_curves", "density_grid", "plot_density_2d"]
