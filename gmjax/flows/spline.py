"""Rational-quadratic spline flows (Durkan et al., 2019, "Neural Spline Flows").

On [-B, B] each variable goes through a monotone rational-quadratic spline
with K bins; in bin k, with xi = (x - x_k) / w_k, s_k = h_k / w_k and knot
derivatives d_k, d_{k+1} (Durkan et al., 2019),

    y = y_k + h_k (s_k xi^2 + d_k xi (1 - xi))
              / (s_k + (d_{k+1} + d_k - 2 s_k) xi (1 - xi)),

and outside [-B, B] it is the identity (boundary derivatives fixed to 1, as
in the paper). The K widths, K heights and K + 1 derivatives come from a
conditioner as 3K + 1 unconstrained numbers per variable (distrax's
``RationalQuadraticSpline``: softmax widths and heights, softplus
derivatives; the two boundary ones are ignored). At zero parameters the bins
are equal and every derivative is 1, so the spline is the identity up to
float rounding; both layers zero-initialize the conditioner's output layer.

* ``rq_spline_coupling``: ``MaskedCoupling`` with an MLP conditioner on the
  masked half (RQ-NSF (C)).
* ``rq_spline_autoregressive``: MADE conditioner in the MAF arrangement
  (RQ-NSF (AR)): density in one pass, sampling in D passes.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Sequence, Tuple

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp

from gmjax.flows.autoregressive import (MaskedAutoregressive, autoregressive_order,
                                        made_parameters, unbound_made)
from gmjax.flows.base import FlowLayer
from gmjax.flows.coupling import VECTOR_MASKS
from gmjax.flows.registry import register_layer
from gmjax.nets.made import MADE
from gmjax.nets.mlp import MLP


@dataclasses.dataclass(frozen=True)
class RQSpline:
    """``theta [..., 3K + 1] -> RationalQuadraticSpline`` on [-B, B], identity outside."""

    bound: float = 5.0

    def __call__(self, theta: jax.Array) -> distrax.Bijector:
        return distrax.RationalQuadraticSpline(theta, range_min=-self.bound,
                                               range_max=self.bound, boundary_slopes="identity")


class SplineCouplingBijector(distrax.Bijector):
    """distrax's ``MaskedCoupling`` with a spline transformer, jit-compiled per configuration.

    ``net`` is an unbound Flax module, ``net.apply(variables, masked_x) ->
    [..., D * (3K + 1)]``; it and ``transformer`` must be hashable.
    """

    def __init__(self, net: nn.Module, variables: Any, mask: jax.Array, transformer: RQSpline):
        super().__init__(event_ndims_in=1)
        self._static = (net, transformer)
        self._variables, self._mask = variables, mask

    def forward_and_log_det(self, x: jax.Array) -> Tuple[jax.Array, jax.Array]:
        return _coupling(*self._static, False, self._variables, self._mask, x)

    def inverse_and_log_det(self, y: jax.Array) -> Tuple[jax.Array, jax.Array]:
        return _coupling(*self._static, True, self._variables, self._mask, y)


# Jitted with the network and transformer static so that un-jitted callers
# reuse one compilation per shape and dtype; under an outer jit it is inlined.
@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _coupling(net, transformer, inverse, variables, mask, x):  # [..., D] -> [..., D], [...]
    def conditioner(v):  # [..., D] -> [..., D, 3K + 1]
        return net.apply(variables, v).reshape(*v.shape, -1)

    coupling = distrax.MaskedCoupling(mask=mask, conditioner=conditioner, bijector=transformer,
                                      event_ndims=1)
    return coupling.inverse_and_log_det(x) if inverse else coupling.forward_and_log_det(x)


class SplineCoupling(FlowLayer):
    """Rational-quadratic spline coupling on vectors ``[n, dim]``."""

    dim: int
    parity: int = 0
    mask: str = "half"
    hidden: Sequence[int] = (32, 32)
    num_bins: int = 8
    bound: float = 5.0

    def net(self) -> MLP:
        # Unbound (its variables are the parameter "net"), so the jitted
        # coupling can take it as a static argument.
        return MLP((*self.hidden, self.dim * (3 * self.num_bins + 1)), zero_init_last=True,
                   parent=None)

    def setup(self):
        net = self.net()
        self.net_variables = {"params": self.param(
            "net", lambda key: net.init(key, jnp.zeros((1, self.dim)))["params"])}

    def bijector(self) -> distrax.Bijector:
        mask = VECTOR_MASKS[self.mask](self.dim, self.parity)
        return SplineCouplingBijector(self.net(), self.net_variables, mask, RQSpline(self.bound))


class SplineAutoregressive(FlowLayer):
    """Rational-quadratic spline MAF on vectors ``[n, dim]``."""

    dim: int
    order: Sequence[int]
    hidden: Sequence[int] = (32, 32)
    num_bins: int = 8
    bound: float = 5.0

    def made(self) -> MADE:
        return unbound_made(self.order, self.hidden, num_params=3 * self.num_bins + 1)

    def setup(self):
        self.made_variables = made_parameters(self, self.made(), self.dim)

    def bijector(self) -> distrax.Bijector:
        return distrax.Inverse(MaskedAutoregressive(self.made(), self.made_variables,
                                                    RQSpline(self.bound)))


@register_layer("rq_spline_coupling", event_rank=1, identity_at_init=True)
def _rq_spline_coupling(event_shape: Tuple[int, ...], index: int, mask: str = "half",
                        hidden: Sequence[int] = (32, 32), num_bins: int = 8,
                        bound: float = 5.0) -> FlowLayer:
    return SplineCoupling(dim=event_shape[0], parity=index, mask=mask, hidden=tuple(hidden),
                          num_bins=num_bins, bound=bound)


@register_layer("rq_spline_autoregressive", event_rank=1, identity_at_init=True)
def _rq_spline_autoregressive(event_shape: Tuple[int, ...], index: int,
                              hidden: Sequence[int] = (32, 32), num_bins: int = 8,
                              bound: float = 5.0) -> FlowLayer:
    dim = event_shape[0]
    return SplineAutoregressive(dim=dim, order=autoregressive_order(dim, index),
                                hidden=tuple(hidden), num_bins=num_bins, bound=bound)
