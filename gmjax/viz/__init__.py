"""Figures people look at instead of reading numbers."""

from gmjax.viz.curves import plot_curves
from gmjax.viz.density2d import density_grid, plot_density_2d
from gmjax.viz.images import image_grid, save_image_grid

__all__ = ["plot_curves", "density_grid", "plot_density_2d", "image_grid", "save_image_grid"]
