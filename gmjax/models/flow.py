"""Flow density models from a config: the flow recipe ``model.name`` with the config's sizes.

The recipes themselves (RealNVP, MAF, the spline flows, BNAF, Glow, ...) live
in ``gmjax.flows.recipes`` and are listed, with every flow layer, in
``gmjax.flows.FLOWS``; ``FLOWS.recipe_names(event_rank=1)`` are the valid
``model.name`` values for vectors, ``FLOWS.recipe_names(event_rank=3)`` for
images.
"""

from __future__ import annotations

import inspect
import numbers
from typing import Any, Dict, Mapping, Sequence, Union

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
