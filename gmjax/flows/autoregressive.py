"""Affine autoregressive flows on MADE: MAF (Papamakarios et al., 2017), IAF (Kingma et al., 2016).

Both use the elementwise affine map conditioned on the preceding variables,

    y_i = x_i * exp(s_i(x_{<i})) + t_i(x_{<i}),
    log|det dy/dx| = sum_i s_i(x_{<i}),

with (s, t) from one MADE pass over x. Evaluating it takes one pass; its
inverse x_i = (y_i - t_i(x_{<i})) exp(-s_i(x_{<i})) needs the x_{<i} first,
i.e. D passes. The two flows differ in which side the one pass is on:

* MAF: z = y, x = x above, i.e. z_i = x_i exp(s_i) + t_i with (s, t) read off
  the data (the paper's z_i = (x_i - mu_i) exp(-alpha_i) with alpha = -s,
  mu = -t exp(-s)). Density evaluation is one pass, sampling D passes.
* IAF: x_i = z_i exp(s_i(z_{<i})) + t_i(z_{<i}): sampling (and the density
  of its own samples) is one pass, the density of external data D passes.

The log-scale is bounded, s = c * tanh(raw / c), as in the coupling layers;
the zero-initialized MADE output layer makes both flows the identity at
initialization. (Kingma et al. also give a gated update
x = sigma * z + (1 - sigma) * m with sigma = sigmoid(.), which is not the
identity at any finite parameters; it is not used here.) Stacked layers
reverse the variable order on odd indices.

Context (Kingma et al., 2016, Sec. 4: the IAF posterior of a VAE conditions
every step on an extra encoder output h). A layer built with
``context_dim=C`` gives its MADE an unmasked dense input from h into the
first hidden layer, so (s, t) = MADE(x, h) and the map stays autoregressive
in x for every fixed h. distrax's bijector methods take no extra argument,
so the context is closed over: ``layer.bijector(h)`` returns the bijector
for that h (h ``[..., C]``, leading axes broadcasting against the events'),
and ``layer(x, h)`` is the normalizing direction. Through Flax::

    layer = build_layer("iaf", (d,), 0, context_dim=c)
    variables = layer.init(key, z, h)
    x, log_det = layer.apply(variables, z, h,
                             method=lambda m, z, h: m.bijector(h).forward_and_log_det(z))

Without a context (``context_dim=0``, the default) layers, parameters and
numbers are those of plain MAF / IAF.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Optional, Sequence, Tuple

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gmjax.flows.base import FlowLayer
from gmjax.flows.registry import register_layer
from gmjax.nets.made import MADE


def autoregressive_order(dim: int, index: int) -> Tuple[int, ...]:
    """``0, 1, ..., D-1`` on even stack indices, reversed on odd ones."""
    order = np.arange(dim) if index % 2 == 0 else np.arange(dim)[::-1]
    return tuple(int(i) for i in order)


class MaskedAutoregressive(distrax.Bijector):
    """``y_i = tau(x_i; theta_i(x_{<i}, h))`` on ``[..., D]``, the conditioner reading x.

    ``conditioner`` is an unbound Flax module whose ``apply(variables, x)``
    (``apply(variables, x, context)`` when a ``context`` h is given)
    returns ``[..., D, k]`` autoregressively (a MADE); ``transformer(theta)``
    returns an elementwise bijector (``event_ndims_in=0``) with batch shape
    ``[..., D]``. Both must be hashable (Flax modules compare by their
    attributes; use frozen dataclasses for transformers). The
    forward map is one conditioner pass; the inverse runs one pass per rank
    of the conditioner's ``order`` (D for a permutation, R when ranks tie),
    each fixing one more rank, so after pass p every x_i of rank < p is exact.
    """

    def __init__(self, conditioner: nn.Module, variables: Any,
                 transformer: Callable[[jax.Array], distrax.Bijector],
                 context: Optional[jax.Array] = None):
        super().__init__(event_ndims_in=1)
        self._conditioner = conditioner
        self._variables = variables
        self._transformer = transformer
        self._context = context

    def forward_and_log_det(self, x: jax.Array) -> Tuple[jax.Array, jax.Array]:
        return _one_pass(self._conditioner, self._transformer, self._variables, x, self._context)

    def inverse_and_log_det(self, y: jax.Array) -> Tuple[jax.Array, jax.Array]:
        return _invert_by_passes(self._conditioner, self._transformer, self._variables, y,
                                 self._context)


def _condition(conditioner: nn.Module, variables: Any, x: jax.Array,
               context: Optional[jax.Array]) -> jax.Array:  # [..., D], [..., C] -> [..., D, k]
    if context is None:
        return conditioner.apply(variables, x)
    return conditioner.apply(variables, x, context)


# Both directions are jitted with the conditioner and transformer static, so
# that un-jitted callers reuse one compilation (per shape and dtype) instead
# of compiling every small op, and every loop, on every call. Under an outer
# jit they are inlined.
@functools.partial(jax.jit, static_argnums=(0, 1))
def _one_pass(conditioner, transformer, variables, x, context):  # [..., D] -> [..., D], [...]
    theta = _condition(conditioner, variables, x, context)  # [..., D, k]
    y, log_det = transformer(theta).forward_and_log_det(x)
    return y, jnp.sum(log_det, axis=-1)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _invert_by_passes(conditioner, transformer, variables, y, context
                      ):  # [..., D] -> [..., D], [...]
    def one_pass(_, x):
        return transformer(_condition(conditioner, variables, x, context)).inverse(y)

    # One pass per rank of the order: D for a permutation, fewer when ranks tie.
    ranks = len(set(getattr(conditioner, "order", range(y.shape[-1]))))
    x = jax.lax.fori_loop(0, ranks - 1, one_pass, jnp.zeros_like(y))
    x, log_det = transformer(_condition(conditioner, variables, x, context)
                             ).inverse_and_log_det(y)
    return x, jnp.sum(log_det, axis=-1)


@dataclasses.dataclass(frozen=True)
class BoundedAffine:
    """``theta [..., D, 2] -> ScalarAffine(shift, c * tanh(raw / c))``."""

    max_log_scale: float = 3.0

    def __call__(self, theta: jax.Array) -> distrax.Bijector:
        shift, raw = theta[..., 0], theta[..., 1]
        c = self.max_log_scale
        return distrax.ScalarAffine(shift=shift, log_scale=c * jnp.tanh(raw / c))


def unbound_made(order: Sequence[int], hidden: Sequence[int], num_params: int) -> MADE:
    """A zero-output-initialized MADE outside any module tree, called as ``made.apply``.

    Unbound, it is pure and hashable, which ``MaskedAutoregressive`` needs; the
    layer holding it keeps its variables as one parameter (``made_parameters``).
    """
    return MADE(order=tuple(order), hidden=tuple(hidden), num_params=num_params,
                zero_init_last=True, parent=None)


def made_parameters(module: nn.Module, made: MADE, dim: int, context_dim: int = 0) -> Any:
    """``made``'s variables, declared as the parameter ``"made"`` of ``module`` (call in setup).

    With ``context_dim > 0`` the MADE is initialized with a context input of
    that width (its ``"context"`` dense layer); without, it has none.
    """
    def init(key):
        if context_dim:
            return made.init(key, jnp.zeros((1, dim)), jnp.zeros((1, context_dim)))["params"]
        return made.init(key, jnp.zeros((1, dim)))["params"]

    return {"params": module.param("made", init)}


class AffineAutoregressive(FlowLayer):
    """MAF (``inverse_autoregressive=False``) or IAF layer on vectors ``[n, dim]``.

    With ``context_dim > 0`` every call takes a context ``h [..., context_dim]``:
    ``bijector(h)``, ``layer(x, h)`` (see the module docstring).
    """

    dim: int
    order: Sequence[int]
    hidden: Sequence[int] = (32, 32)
    max_log_scale: float = 3.0
    inverse_autoregressive: bool = False
    context_dim: int = 0

    def made(self) -> MADE:
        return unbound_made(self.order, self.hidden, num_params=2)

    def setup(self):
        self.made_variables = made_parameters(self, self.made(), self.dim, self.context_dim)

    def bijector(self, context: Optional[jax.Array] = None) -> distrax.Bijector:
        """The bijector z -> x, closed over ``context [..., context_dim]`` if it takes one."""
        if self.context_dim and context is None:
            raise ValueError(f"this layer takes a context of width {self.context_dim}: "
                             "call bijector(context)")
        if context is not None:
            if not self.context_dim:
                raise ValueError("this layer was built without a context (context_dim=0)")
            if context.shape[-1] != self.context_dim:
                raise ValueError(f"context of width {self.context_dim} expected, "
                                 f"got shape {tuple(context.shape)}")
        one_pass = MaskedAutoregressive(self.made(), self.made_variables,
                                        BoundedAffine(self.max_log_scale), context)
        # IAF: one pass from z to x. MAF: one pass from x to z.
        return one_pass if self.inverse_autoregressive else distrax.Inverse(one_pass)

    def __call__(self, x: jax.Array, context: Optional[jax.Array] = None
                 ) -> Tuple[jax.Array, jax.Array]:
        """The normalizing direction ``x -> (z, log|det dz/dx|)``, given the context if any."""
        return self.bijector(context).inverse_and_log_det(x)


@register_layer("maf", event_rank=1, identity_at_init=True)
def _maf(event_shape: Tuple[int, ...], index: int, hidden: Sequence[int] = (32, 32),
         max_log_scale: float = 3.0, context_dim: int = 0) -> FlowLayer:
    dim = event_shape[0]
    return AffineAutoregressive(dim=dim, order=autoregressive_order(dim, index),
                                hidden=tuple(hidden), max_log_scale=max_log_scale,
                                context_dim=context_dim)


@register_layer("iaf", event_rank=1, identity_at_init=True)
def _iaf(event_shape: Tuple[int, ...], index: int, hidden: Sequence[int] = (32, 32),
         max_log_scale: float = 3.0, context_dim: int = 0) -> FlowLayer:
    dim = event_shape[0]
    return AffineAutoregressive(dim=dim, order=autoregressive_order(dim, index),
                                hidden=tuple(hidden), max_log_scale=max_log_scale,
                                inverse_autoregressive=True, context_dim=context_dim)
