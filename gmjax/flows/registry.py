"""Flow layers by name, so configs and tools can list and build them.

``FLOW_LAYERS.get(name)`` returns a ``LayerSpec``: ``build(event_shape,
index, **options) -> FlowLayer`` makes the ``index``-th layer of a stack
(layers alternate masks or orders by index), and ``event_rank`` says which
examples the layer takes (1: vectors ``[d]``, 3: images ``[h, w, c]``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Tuple

from gmjax.flows.base import FlowLayer
from gmjax.registry import Registry


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    build: Callable[..., FlowLayer]
    event_rank: int
    identity_at_init: bool = False  # the layer promises f = id right after init


FLOW_LAYERS: Registry[LayerSpec] = Registry("flow layer")


def register_layer(name: str, event_rank: int, identity_at_init: bool = False):
    """Decorator registering ``build(event_shape, index, **options) -> FlowLayer``."""

    def add(build: Callable[..., FlowLayer]) -> Callable[..., FlowLayer]:
        FLOW_LAYERS.register(name)(LayerSpec(build, event_rank, identity_at_init))
        return build

    return add


def build_layer(name: str, event_shape: Tuple[int, ...], index: int = 0,
                **options: Any) -> FlowLayer:
    spec = FLOW_LAYERS.get(name)
    if len(event_shape) != spec.event_rank:
        raise ValueError(f"flow layer {name!r} takes events of rank {spec.event_rank}, "
                         f"got shape {tuple(event_shape)}")
    return spec.build(tuple(event_shape), index, **options)
