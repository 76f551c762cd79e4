"""Flow density models by name: the recipes the flow experiments build from a config.

Each recipe turns the ``model`` config block (``num_layers``, ``hidden`` and,
for splines, ``num_bins`` / ``bound`` and ``block_size`` for the
block-autoregressive spline; for BNAF, optionally ``hidden_factor`` /
``num_hidden_layers``) into a ``Flow`` of registered layers, data side first.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from gmjax.flows.base import Flow
from gmjax.flows.builders import stack
from gmjax.flows.registry import build_layer
from gmjax.registry import Registry

FLOW_MODELS: Registry[Callable[[Mapping[str, Any], int], Flow]] = Registry("flow model")


def _hidden(model: Mapping[str, Any]) -> tuple:
    return tuple(model["hidden"])


@FLOW_MODELS.register("realnvp")
def _realnvp(model, dim):
    """Affine couplings on alternating halves (Dinh et al., 2017)."""
    return stack("affine_coupling", (dim,), model["num_layers"], hidden=_hidden(model))


@FLOW_MODELS.register("nice")
def _nice(model, dim):
    """Additive couplings, then NICE's diagonal scaling on the latent side (Dinh et al., 2015)."""
    layers = [build_layer("additive_coupling", (dim,), i, hidden=_hidden(model))
              for i in range(model["num_layers"])]
    return Flow(layers=[*layers, build_layer("diag_scale", (dim,))], event_shape=(dim,))


@FLOW_MODELS.register("maf")
def _maf(model, dim):
    """Affine MADE layers with reversed orders (Papamakarios et al., 2017)."""
    return stack("maf", (dim,), model["num_layers"], hidden=_hidden(model))


@FLOW_MODELS.register("made")
def _made(model, dim):
    """MADE with Gaussian conditionals as a density model: one MAF layer (Germain et al., 2015)."""
    return stack("maf", (dim,), 1, hidden=_hidden(model))


@FLOW_MODELS.register("spline_coupling")
def _spline_coupling(model, dim):
    """Rational-quadratic spline couplings (Durkan et al., 2019)."""
    return stack("rq_spline_coupling", (dim,), model["num_layers"], hidden=_hidden(model),
                 num_bins=model.get("num_bins", 8), bound=model.get("bound", 5.0))


@FLOW_MODELS.register("spline_autoregressive")
def _spline_autoregressive(model, dim):
    """Rational-quadratic spline autoregressive flow (Durkan et al., 2019)."""
    return stack("rq_spline_autoregressive", (dim,), model["num_layers"],
                 hidden=_hidden(model), num_bins=model.get("num_bins", 8),
                 bound=model.get("bound", 5.0))


@FLOW_MODELS.register("spline_block_autoregressive")
def _spline_block_autoregressive(model, dim):
    """Spline MADE layers over blocks of ``model.block_size`` (Qiu and Wang, 2024; not BNAF)."""
    return stack("rq_spline_block_autoregressive", (dim,), model["num_layers"],
                 block_size=int(model.get("block_size", 8)), hidden=_hidden(model),
                 num_bins=model.get("num_bins", 8), bound=model.get("bound", 5.0))


@FLOW_MODELS.register("block_autoregressive")
def _block_autoregressive(model, dim):
    """BNAF layers with the order reversed between them (De Cao et al., 2019).

    ``model.hidden`` (widths, as for the other recipes) sets the hidden
    layers: ``len(hidden)`` of them, each ``a * dim`` wide with
    ``a = ceil(max(hidden) / dim)`` units per variable; ``model.hidden_factor``
    and ``model.num_hidden_layers``, where present, override the two.
    """
    hidden = _hidden(model)
    hidden_factor = model.get("hidden_factor") or max(1, -(-max(hidden, default=dim) // dim))
    num_hidden_layers = model.get("num_hidden_layers") or max(len(hidden), 1)
    return stack("block_autoregressive", (dim,), model["num_layers"],
                 hidden_factor=int(hidden_factor), num_hidden_layers=int(num_hidden_layers))


def build_flow(model: Mapping[str, Any], dim: int) -> Flow:
    """The ``Flow`` for ``model.name`` on ``dim``-dimensional vectors.

    ``flow(x)`` is the log-density ``[n, dim] -> [n]`` and ``flow.sample(key, n)``
    draws ``[n, dim]`` (call both through ``apply``).
    """
    return FLOW_MODELS.get(model["name"])(model, dim)
