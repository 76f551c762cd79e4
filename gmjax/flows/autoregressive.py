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
from typing import Any, Callable, List, Optional, Sequence, Tuple

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gmjax.flows.base import FlowLayer
from gmjax.flows.registry import register_layer
from gmjax.nets.made import MADE, take_indices


def autoregressive_order(dim: int, index: int) -> Tuple[int, ...]:
    """``0, 1, ..., D-1`` on even stack indices, reversed on odd ones."""
    order = np.arange(dim) if index % 2 == 0 else np.arange(dim)[::-1]
    return tuple(int(i) for i in order)


class MaskedAutoregressive(distrax.Bijector):
    """``y_i = tau(x_i; theta_i(x_{<i}, h))`` on ``[..., D]``, the conditioner reading x.

    ``conditioner`` is an unbound Flax module (a MADE) whose
    ``apply(variables, x, batch_last=True, outputs=rows)`` (with a
    ``context`` h: ``apply(variables, x, context, batch_last=True,
    outputs=rows)``) takes x as ``[D, ...]`` and returns the parameters of
    the variables ``rows`` (all D if None), ``[k, len(rows), ...]``,
    autoregressively; ``transformer(theta)`` takes them, parameters first,
    and returns an elementwise bijector (``event_ndims_in=0``). Both must be
    hashable (Flax modules compare by their attributes; use frozen
    dataclasses for transformers). Inside, arrays hold the variables (and
    parameters) ahead of the batch axes, so that one variable's values are a
    contiguous slab of the batch.

    The forward map is one conditioner pass. The inverse fixes the
    variables rank by rank of the conditioner's ``order`` (D passes for a
    permutation, R when ranks tie): pass r runs the conditioner on the
    variables of rank < r, already exact, for the parameters of the
    variables of rank r alone, and inverts the transformer on those
    variables, log-determinant included. The parameters of rank 0 read no
    variable, so pass 0 runs the conditioner on one zero row, broadcast over
    the batch; passes 1 to R - 1 are one loop, compiled once for any R.
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
               context: Optional[jax.Array], rows: Any = None
               ) -> jax.Array:  # [D, ...], [..., C] -> [k, len(rows), ...]
    if context is None:
        return conditioner.apply(variables, x, batch_last=True, outputs=rows)
    return conditioner.apply(variables, x, context, batch_last=True, outputs=rows)


def _ranks(conditioner: nn.Module, dim: int) -> List[Tuple[int, ...]]:
    """The variables of each rank of the conditioner's order, rank 0 first."""
    order = np.asarray(getattr(conditioner, "order", range(dim)))
    return [tuple(int(i) for i in np.flatnonzero(order == r)) for r in range(order.max() + 1)]


# Both directions are jitted with the conditioner and transformer static, so
# that un-jitted callers reuse one compilation (per shape and dtype) instead
# of compiling every small op, and every pass, on every call. Under an outer
# jit they are inlined.
@functools.partial(jax.jit, static_argnums=(0, 1))
def _one_pass(conditioner, transformer, variables, x, context):  # [..., D] -> [..., D], [...]
    x = jnp.moveaxis(x, -1, 0)  # [D, ...]
    theta = _condition(conditioner, variables, x, context)  # [k, D, ...]
    y, log_det = transformer(theta).forward_and_log_det(x)
    return jnp.moveaxis(y, 0, -1), jnp.sum(log_det, axis=0)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _invert_by_passes(conditioner, transformer, variables, y, context
                      ):  # [..., D] -> [..., D], [...]
    dim = y.shape[-1]
    y = jnp.moveaxis(y, -1, 0)  # [D, ...]
    first, *later = _ranks(conditioner, dim)
    # Pass 0: the parameters of rank 0 read no variable; one zero row stands for the batch.
    zero = jnp.zeros((dim,) + (1,) * (y.ndim - 1), y.dtype)
    theta = _condition(conditioner, variables, zero, context, first)  # [k, len(first), ...]
    x_first, log_det = transformer(theta).inverse_and_log_det(take_indices(y, first))
    # zeros_like: the loop's carry keeps y's varying axes under shard_map (the data-parallel
    # train step), also where the rank-0 log-dets depend on the parameters alone.
    log_det = jnp.zeros_like(x_first[0]) + jnp.sum(log_det, axis=0)
    if not later:
        return jnp.moveaxis(x_first, 0, -1), log_det
    # Passes 1..R-1, one loop: pass r solves the rows of rank r. A rank of fewer rows than
    # the largest is padded with spare rows D, D + 1, ... appended to x and y; their
    # parameters are those of row D - 1, their values never read, their log-dets masked.
    width = max(len(rows) for rows in later)
    rows = np.array([list(r) + list(range(dim, dim + width - len(r))) for r in later])
    real = jnp.asarray(rows < dim, y.dtype).reshape(rows.shape + (1,) * (y.ndim - 1))
    batch = x_first.shape[1:]  # y's batch axes, broadcast against the context's
    x = jnp.zeros((dim + width,) + batch, y.dtype).at[np.asarray(first)].set(x_first)
    y = jnp.concatenate([jnp.broadcast_to(y, (dim,) + batch),
                         jnp.zeros((width,) + batch, y.dtype)])
    rows, outputs = jnp.asarray(rows), jnp.asarray(np.minimum(rows, dim - 1))

    def solve(i, carry):  # pass i + 1; the rows of rank <= i are exact
        x, log_det = carry
        theta = _condition(conditioner, variables, x[:dim], context, outputs[i])
        x_rows, log_det_rows = transformer(theta).inverse_and_log_det(
            take_indices(y, rows[i]))
        x = x.at[rows[i]].set(x_rows, unique_indices=True, mode="promise_in_bounds")
        return x, log_det + jnp.sum(log_det_rows * real[i], axis=0)

    x, log_det = jax.lax.fori_loop(0, len(later), solve, (x, log_det))
    return jnp.moveaxis(x[:dim], 0, -1), log_det


@dataclasses.dataclass(frozen=True)
class BoundedAffine:
    """``theta [2, ...] -> ScalarAffine(shift, c * tanh(raw / c))``, parameters first."""

    max_log_scale: float = 3.0

    def __call__(self, theta: jax.Array) -> distrax.Bijector:
        shift, raw = theta[0], theta[1]
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
