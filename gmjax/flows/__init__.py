"""Normalizing flows as distrax bijectors, parameters owned by Flax modules.

Importing this package registers every flow layer in ``FLOWS.layers`` and
every flow recipe (RealNVP, MAF, Glow, ...) in ``FLOWS.recipes``; see
``gmjax.flows.registry``.
"""

from gmjax.flows import coupling  # noqa: F401  (registers the coupling layers)
from gmjax.flows import autoregressive  # noqa: F401  (registers maf, iaf)
from gmjax.flows import spline  # noqa: F401  (registers the rq_spline_* layers)
from gmjax.flows import normalization  # noqa: F401  (registers batch_norm)
from gmjax.flows import elementwise  # noqa: F401  (registers logit, diag_scale)
from gmjax.flows import planar  # noqa: F401  (registers planar)
from gmjax.flows import radial  # noqa: F401  (registers radial)
from gmjax.flows import sylvester  # noqa: F401  (registers sylvester)
from gmjax.flows import glow  # noqa: F401  (registers actnorm, invertible_conv1x1, squeeze)
from gmjax.flows import image_coupling  # noqa: F401  (registers the image couplings)
from gmjax.flows import block_autoregressive  # noqa: F401  (registers block_autoregressive)
from gmjax.flows import recipes  # noqa: F401  (registers every recipe)
from gmjax.flows.base import Flow, FlowLayer
from gmjax.flows.registry import (FLOWS, FlowRegistry, LayerSpec, RecipeSpec, build_layer,
                                  build_recipe, register_layer, register_recipe, stack)

__all__ = ["Flow", "FlowLayer", "FLOWS", "FlowRegistry", "LayerSpec", "RecipeSpec",
           "build_layer", "build_recipe", "register_layer", "register_recipe", "stack"]
from gmjax.flows.continuous import CNF, CNFBijector, cnf_flow  # noqa: E402

__all__ += ["CNF", "CNFBijector", "cnf_flow"]
