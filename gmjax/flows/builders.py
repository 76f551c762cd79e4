"""Flow builders: stacks of registered layers over a standard normal base."""

from __future__ import annotations

from typing import Any, Sequence, Tuple

from gmjax.flows.base import Flow
from gmjax.flows.registry import build_layer


def stack(layer: str, event_shape: Tuple[int, ...], num_layers: int, **options: Any) -> Flow:
    """``num_layers`` layers of one registered kind (alternating masks/orders by index)."""
    layers = [build_layer(layer, event_shape, i, **options) for i in range(num_layers)]
    return Flow(layers=layers, event_shape=tuple(event_shape))


def realnvp(dim: int, num_layers: int = 8, hidden: Sequence[int] = (64, 64),
            mask: str = "half") -> Flow:
    """RealNVP on vectors (Dinh et al., 2017): alternating affine couplings."""
    return stack("affine_coupling", (dim,), num_layers, hidden=hidden, mask=mask)


def nice(dim: int, num_layers: int = 8, hidden: Sequence[int] = (64, 64)) -> Flow:
    """NICE on vectors (Dinh et al., 2015): alternating additive couplings.

    (NICE's final diagonal scaling layer is a separate registered layer.)
    """
    return stack("additive_coupling", (dim,), num_layers, hidden=hidden)
