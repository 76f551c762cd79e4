"""Normalizing flows as distrax bijectors, parameters owned by Flax modules.

Importing this package registers every layer in ``FLOW_LAYERS``.
"""

from gmjax.flows import coupling  # noqa: F401  (registers the coupling layers)
from gmjax.flows import autoregressive  # noqa: F401  (registers maf, iaf)
from gmjax.flows import spline  # noqa: F401  (registers the rq_spline_* layers)
from gmjax.flows import normalization  # noqa: F401  (registers batch_norm)
from gmjax.flows import elementwise  # noqa: F401  (registers logit, diag_scale)
from gmjax.flows import planar  # noqa: F401  (registers planar, radial, sylvester)
from gmjax.flows import glow  # noqa: F401  (registers actnorm, invertible_conv1x1)
from gmjax.flows import image_coupling  # noqa: F401  (registers the image couplings)
from gmjax.flows import block_autoregressive  # noqa: F401  (registers block_autoregressive)
from gmjax.flows.base import Flow, FlowLayer
from gmjax.flows.builders import nice, realnvp, stack
from gmjax.flows.registry import FLOW_LAYERS, LayerSpec, build_layer, register_layer

__all__ = ["Flow", "FlowLayer", "nice", "realnvp", "stack", "FLOW_LAYERS", "LayerSpec",
           "build_layer", "register_layer"]
