"""Flow density models from a config: the flow recipe ``model.name`` with the config's sizes.

The recipes themselves (RealNVP, MAF, the spline flows, BNAF, Glow, ...) live
in ``gmjax.flows.recipes`` and are listed, with every flow layer, in
``gmjax.flows.FLOWS``; ``FLOWS.recipe_names(event_rank=1)`` are the valid
``model.name`` values for vectors, ``FLOWS.recipe_names(event_rank=3)`` for
images.

The spline recipes act on the box ``[-model.bound, model.bound]`` and are the
identity outside it; ``check_spline_bound`` tells, with a
``SplineBoundWarning``, when training data fall outside.
"""

from __future__ import annotations

import inspect
import math
import numbers
import warnings
from typing import Any, Dict, Mapping, Optional, Sequence, Union

import numpy as np

import gmjax.flows  # noqa: F401  (registers every layer and recipe)
from gmjax.flows.base import Flow
from gmjax.flows.registry import FLOWS, build_recipe


def recipe_options(name: str, model: Mapping[str, Any]) -> Dict[str, Any]:
    """The fields of ``model`` that are keyword options of the recipe ``name``.

    A config's ``model`` block is shared by every recipe a script can build
    (``num_bins`` is for the spline flows, ``block_size`` for the block
    spline flow, ...); each recipe takes the fields it names and its own
    defaults for the rest.
    """
    parameters = inspect.signature(FLOWS.recipes.get(name).build).parameters
    return {key: model[key] for key in list(parameters)[1:] if key in model}


def build_flow(model: Mapping[str, Any], event_shape: Union[int, Sequence[int]]) -> Flow:
    """The ``Flow`` of recipe ``model.name`` on events of ``event_shape``.

    ``event_shape`` is ``(h, w, c)`` for images, or the dimension ``d`` (or
    ``(d,)``) for vectors. ``flow(x)`` is the log-density ``[n, *event] -> [n]``
    and ``flow.sample(key, n)`` draws ``[n, *event]`` (call both through ``apply``).
    """
    if isinstance(event_shape, numbers.Integral):
        event_shape = (int(event_shape),)
    name = model["name"]
    return build_recipe(name, tuple(event_shape), **recipe_options(name, model))


class SplineBoundWarning(UserWarning):
    """Training data lie outside the box ``[-bound, bound]`` of a spline flow's splines."""


def check_spline_bound(model: Mapping[str, Any], x: Any, tolerance: float = 1e-3
                       ) -> Optional[float]:
    """The fraction of the rows of ``x`` outside a spline recipe's box; warns above ``tolerance``.

    A rational-quadratic spline maps ``[-B, B]`` onto itself and is the
    identity outside (``gmjax.flows.spline``), so a point beyond the box keeps
    the base's normal tail there and costs of the order of ``x^2 / 2`` nats.
    A row counts as outside when any coordinate's magnitude reaches B, in the
    coordinates the first spline sees at initialization: standardized by the
    mean and standard deviation of ``x`` when ``model.standardize`` is on (the
    first ActNorm's data-dependent init), raw otherwise.

    Args:
      model: a config's ``model`` block (``name``, ``bound``, ``standardize``).
      x: training data ``[n, *event]``.
      tolerance: largest fraction outside that passes silently.

    Returns:
      The fraction outside, or ``None`` where ``model.name`` has no ``bound``
      option (not a spline recipe).
    """
    name = model["name"]
    parameters = inspect.signature(FLOWS.recipes.get(name).build).parameters
    if "bound" not in parameters:
        return None
    options = {k: p.default for k, p in parameters.items() if k in ("bound", "standardize")}
    options.update(recipe_options(name, model))
    bound = float(options["bound"])
    standardize = bool(options.get("standardize", False))
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    if standardize:
        std = x.std(axis=0)
        x = (x - x.mean(axis=0)) / np.where(std < 1e-6, 1.0, std)
    extent = np.abs(x).max(axis=1)  # [n]
    fraction = float(np.mean(extent >= bound))
    if fraction > tolerance:
        coordinates = "standardized" if standardize else "raw"
        holds = math.ceil(float(np.quantile(extent, 1.0 - tolerance)))
        advice = f"raise model.bound (--config.model.bound) to at least {holds}"
        if not standardize and "standardize" in parameters:
            advice = ("set model.standardize=True (--config.model.standardize=True: an "
                      "ActNorm initialized from the data before every spline layer) or "
                      + advice)
        warnings.warn(
            f"{fraction:.2%} of the {len(x)} training points lie outside the box "
            f"[-{bound:g}, {bound:g}] of {name!r} ({coordinates} coordinates), where its "
            f"splines are the identity and the density is the base's normal tail: {advice}",
            SplineBoundWarning, stacklevel=2)
    return fraction
