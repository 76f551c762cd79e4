"""Flow density models by name, for the flow experiments and the quick start."""

from __future__ import annotations

from typing import Any, Callable, Mapping

import flax.linen as nn

from gmjax.flows.builders import realnvp
from gmjax.registry import Registry

FLOW_MODELS: Registry[Callable[[Mapping[str, Any], int], nn.Module]] = Registry("flow model")


@FLOW_MODELS.register("realnvp")
def _realnvp(model: Mapping[str, Any], dim: int) -> nn.Module:
    return realnvp(dim, num_layers=model["num_layers"], hidden=tuple(model["hidden"]))


def build_flow(model: Mapping[str, Any], dim: int) -> nn.Module:
    """The Flax module for ``model.name`` on ``dim``-dimensional data.

    The module's ``__call__(x)`` is the log-density ``[n, dim] -> [n]`` and
    ``sample(key, n)`` draws ``[n, dim]``.
    """
    return FLOW_MODELS.get(model["name"])(model, dim)
