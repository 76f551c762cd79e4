"""Normalizing flows as distrax bijectors, parameters owned by Flax modules.

Importing this package registers every layer in ``FLOW_LAYERS``.
"""

from gmjax.flows import coupling  # noqa: F401  (registers the coupling layers)
from gmjax.flows.base import Flow, FlowLayer
from gmjax.flows.builders import nice, realnvp, stack
from gmjax.flows.registry import FLOW_LAYERS, LayerSpec, build_layer, register_layer

__all__ = ["Flow", "FlowLayer", "nice", "realnvp", "stack", "FLOW_LAYERS", "LayerSpec",
           "build_layer", "register_layer"]
