"""Flow recipes: the flows of the papers, as stacks of registered layers.

Each recipe is one function ``recipe(event_shape, **options) -> Flow`` whose
layers are listed data side first over a standard normal base, registered in
``FLOWS.recipes`` under the name configs use (``model.name``). Every option
has a default; ``gmjax.models.flow.build_flow`` fills them from a config's
``model`` block.

Vectors ``[d]``: realnvp, nice, maf, made, spline_coupling,
spline_autoregressive, spline_block_autoregressive, block_autoregressive.
Images ``[h, w, c]``: glow, realnvp_image (multi-scale, ``gmjax.flows.multiscale``).
All of them are invertible, with exact log-determinants.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

from gmjax.flows.base import Flow, FlowLayer
from gmjax.flows.glow import SqueezeLayer
from gmjax.flows.multiscale import MultiScale
from gmjax.flows.registry import build_layer, register_recipe, stack

# ------------------------------------------------------------------------------ vectors


@register_recipe("realnvp", event_rank=1)
def realnvp(event_shape: Tuple[int], num_layers: int = 8, hidden: Sequence[int] = (64, 64),
            mask: str = "half") -> Flow:
    """RealNVP (Dinh et al., 2017): affine couplings on alternating halves."""
    return stack("affine_coupling", event_shape, num_layers, hidden=tuple(hidden), mask=mask)


@register_recipe("nice", event_rank=1)
def nice(event_shape: Tuple[int], num_layers: int = 8,
         hidden: Sequence[int] = (64, 64)) -> Flow:
    """NICE (Dinh et al., 2015): additive couplings, then a diagonal scaling on the latent side."""
    layers = [build_layer("additive_coupling", event_shape, i, hidden=tuple(hidden))
              for i in range(num_layers)]
    return Flow(layers=[*layers, build_layer("diag_scale", event_shape)],
                event_shape=tuple(event_shape))


@register_recipe("maf", event_rank=1)
def maf(event_shape: Tuple[int], num_layers: int = 8, hidden: Sequence[int] = (64, 64)) -> Flow:
    """MAF (Papamakarios et al., 2017): affine MADE layers with reversed orders."""
    return stack("maf", event_shape, num_layers, hidden=tuple(hidden))


@register_recipe("made", event_rank=1)
def made(event_shape: Tuple[int], hidden: Sequence[int] = (64, 64)) -> Flow:
    """MADE with Gaussian conditionals as a density model: one MAF layer (Germain et al., 2015)."""
    return stack("maf", event_shape, 1, hidden=tuple(hidden))


def spline_stack(layer: str, event_shape: Tuple[int], num_layers: int, standardize: bool,
                 **options) -> Flow:
    """``num_layers`` spline layers of kind ``layer``; with ``standardize``, a vector ActNorm
    before each of them.

    A rational-quadratic spline maps [-B, B] onto itself and is the identity
    outside (Durkan et al., 2019), so a stack of them alone leaves every point
    beyond the box at its place, and the density there is the base's standard
    normal tail: on data of another scale, or heavy-tailed, those points cost
    many nats each. The first ActNorm (``vector_actnorm``, initialized from the
    init batch) standardizes the data before the first spline; the others
    rescale between splines, learnably, so the stack can move points into a box
    or out of it. Density estimation turns it on (``experiments/configs/flow_toy.py``);
    it is off by default, which keeps the flows of samplers that start from the
    base and see no data (TemperFlow) as they are.
    """
    layers = []
    for i in range(num_layers):
        if standardize:
            layers.append(build_layer("vector_actnorm", event_shape, i))
        layers.append(build_layer(layer, event_shape, i, **options))
    return Flow(layers=layers, event_shape=tuple(event_shape))


@register_recipe("spline_coupling", event_rank=1)
def spline_coupling(event_shape: Tuple[int], num_layers: int = 8,
                    hidden: Sequence[int] = (64, 64), num_bins: int = 8,
                    bound: float = 5.0, standardize: bool = False) -> Flow:
    """Rational-quadratic spline couplings on [-bound, bound] (Durkan et al., 2019).

    ``standardize``: a data-initialized ActNorm before every coupling (``spline_stack``).
    """
    return spline_stack("rq_spline_coupling", event_shape, num_layers, standardize,
                        hidden=tuple(hidden), num_bins=num_bins, bound=bound)


@register_recipe("spline_autoregressive", event_rank=1)
def spline_autoregressive(event_shape: Tuple[int], num_layers: int = 8,
                          hidden: Sequence[int] = (64, 64), num_bins: int = 8,
                          bound: float = 5.0, standardize: bool = False) -> Flow:
    """Rational-quadratic spline autoregressive flow (Durkan et al., 2019).

    ``standardize``: a data-initialized ActNorm before every layer (``spline_stack``).
    """
    return spline_stack("rq_spline_autoregressive", event_shape, num_layers, standardize,
                        hidden=tuple(hidden), num_bins=num_bins, bound=bound)


@register_recipe("spline_block_autoregressive", event_rank=1)
def spline_block_autoregressive(event_shape: Tuple[int], num_layers: int = 8,
                                block_size: int = 8, hidden: Sequence[int] = (64, 64),
                                num_bins: int = 8, bound: float = 5.0,
                                standardize: bool = False) -> Flow:
    """Spline MADE layers over blocks of ``block_size`` variables (Qiu and Wang, 2024; not BNAF).

    ``standardize``: a data-initialized ActNorm before every layer (``spline_stack``).
    """
    return spline_stack("rq_spline_block_autoregressive", event_shape, num_layers,
                        standardize, block_size=int(block_size), hidden=tuple(hidden),
                        num_bins=num_bins, bound=bound)


@register_recipe("block_autoregressive", event_rank=1)
def block_autoregressive(event_shape: Tuple[int], num_layers: int = 8,
                         hidden: Sequence[int] = (64, 64), hidden_factor: Optional[int] = None,
                         num_hidden_layers: Optional[int] = None) -> Flow:
    """BNAF (De Cao et al., 2019): block neural autoregressive layers, order reversed between.

    ``hidden`` (widths, as for the other recipes) sets the hidden layers:
    ``len(hidden)`` of them, each ``a * dim`` wide with
    ``a = ceil(max(hidden) / dim)`` units per variable; ``hidden_factor`` and
    ``num_hidden_layers``, where given, override the two.
    """
    dim = event_shape[0]
    hidden = tuple(hidden)
    hidden_factor = hidden_factor or max(1, -(-max(hidden, default=dim) // dim))
    num_hidden_layers = num_hidden_layers or max(len(hidden), 1)
    return stack("block_autoregressive", event_shape, num_layers,
                 hidden_factor=int(hidden_factor), num_hidden_layers=int(num_hidden_layers))


# ------------------------------------------------------------------------------ images


def _check_divisible(event_shape: Tuple[int, int, int], squeezes: int) -> None:
    h, w, _ = event_shape
    if h % 2 ** squeezes or w % 2 ** squeezes:
        raise ValueError(f"{squeezes} squeezes need height and width divisible by "
                         f"{2 ** squeezes}, got event shape {tuple(event_shape)}")


@register_recipe("glow", event_rank=3)
def glow(event_shape: Tuple[int, int, int], levels: int = 2, steps_per_level: int = 4,
         width: int = 32) -> Flow:
    """Glow (Kingma & Dhariwal, 2018): multi-scale ActNorm, 1x1 convolution, coupling.

    Per level, a squeeze then ``steps_per_level`` steps of ActNorm -> invertible
    1x1 convolution -> affine (channel) coupling; half the channels are
    factored out after every level but the last.
    """
    event_shape = tuple(event_shape)
    _check_divisible(event_shape, levels)
    h, w, c = event_shape
    per_level, index = [], 0
    for _ in range(levels):
        h, w, c = h // 2, w // 2, 4 * c
        layers = [SqueezeLayer()]
        for _ in range(steps_per_level):
            shape = (h, w, c)
            layers += [build_layer("actnorm", shape, index),
                       build_layer("invertible_conv1x1", shape, index),
                       build_layer("channel_coupling", shape, index, width=width)]
            index += 1
        per_level.append(tuple(layers))
        c = c - c // 2
    return Flow(layers=[MultiScale(event_shape=event_shape, levels=tuple(per_level))],
                event_shape=event_shape)


@register_recipe("realnvp_image", event_rank=3)
def realnvp_image(event_shape: Tuple[int, int, int], levels: int = 2, steps_per_level: int = 3,
                  width: int = 32, actnorm: bool = True) -> Flow:
    """RealNVP on images (Dinh et al., 2017, Sec. 4.1): multi-scale affine couplings.

    Per level but the last, ``steps_per_level`` checkerboard couplings, a squeeze, ``steps_per_level`` channel
    couplings and a factor-out of half the channels; the last level has
    ``steps_per_level + 1`` checkerboard couplings (the paper's 3, 3 and 4).

    RealNVP puts batch normalization into the flow (Sec. 3.7); with ``actnorm``
    an ActNorm, Glow's batch-independent replacement for it, precedes every
    coupling instead.
    """
    event_shape = tuple(event_shape)
    _check_divisible(event_shape, levels - 1)
    h, w, c = event_shape
    per_level, index = [], 0

    def coupling(kind: str) -> list[FlowLayer]:
        shape = (h, w, c)
        norm = [build_layer("actnorm", shape, index)] if actnorm else []
        return norm + [build_layer(f"{kind}_coupling", shape, index, width=width)]

    for level in range(levels):
        last = level == levels - 1
        layers = []
        for _ in range(steps_per_level + int(last)):
            layers += coupling("checkerboard")
            index += 1
        if not last:
            h, w, c = h // 2, w // 2, 4 * c
            layers.append(SqueezeLayer())
            for _ in range(steps_per_level):
                layers += coupling("channel")
                index += 1
            c = c - c // 2
        per_level.append(tuple(layers))
    return Flow(layers=[MultiScale(event_shape=event_shape, levels=tuple(per_level))],
                event_shape=event_shape)
