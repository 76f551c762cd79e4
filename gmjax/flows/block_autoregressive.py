"""Block neural autoregressive flow, BNAF (De Cao, Titov and Aziz, 2019).

One BNAF layer is a single monotone neural network f: R^D -> R^D whose
Jacobian is lower triangular in an autoregressive order. With the variables
in that order, every hidden layer has ``a * D`` units, ``a`` per variable
(``hidden_factor``), and the weight matrix of layer l is a D x D grid of
blocks ``B_ij`` of shape ``[b_out, b_in]`` (``b = 1`` at the input and the
output, ``a`` in between), block lower triangular (De Cao et al., 2019,
Sec. 3.1-3.2):

    W = exp(s) * W_hat / ||W_hat||_row,
    W_hat_ij = exp(V_ij)  (i = j),   V_ij  (i > j),   0  (i < j),

with the norm taken over every row of ``W_hat`` (weight normalization,
Salimans and Kingma, 2016) and ``s`` a learned log-scale per row. The
diagonal blocks are positive, the off-diagonal ones unconstrained, so with
strictly increasing activations (tanh) between the layers every output f_i
depends only on the inputs up to i and is strictly increasing in input i.

The derivative ``df_i / dz_i`` is the product of the diagonal blocks of the
layers' Jacobians, a ``[1, a] [a, a] ... [a, 1]`` chain. It is accumulated in
log space (Sec. 3.3): with ``G`` the log of the diagonal block of the
Jacobian of the layers so far (``[D, b]``, one input per variable),

    linear layer:  G_i <- logsumexp_k (log W_ii[:, k] + G_i[k]),
                   log W_ii = s + V_ii - (1/2) log ||W_hat||^2_row,
    tanh:          G_i <- G_i + log(1 - tanh^2(h_i)),
                   log(1 - tanh^2(h)) = 2 (log 2 - h - softplus(-2 h)),

so no product of small positive numbers underflows, and
``log|det df/dz| = sum_i G_i``.

The output layer is affine in bounded tanh units, so f alone maps R^D onto a
bounded set. As in the authors' reference implementation (``res='gated'``),
a gated residual connection makes each layer a bijection of R^D:

    g(z) = sigma(c) f(z) + (1 - sigma(c)) z,
    log dg_i/dz_i = softplus(G_i + c) - softplus(c),

with one learned scalar gate c; each coordinate then grows at least with
slope 1 - sigma(c) > 0. With ``residual=False`` the layer is f itself and its
inverse exists only on f's (bounded) image.

Direction: the bijector's *forward* map, latent z -> data x, is the network
evaluation with its exact log-det -- what a sampler such as TemperFlow needs,
samples and their densities in one pass. The inverse x -> z has no closed
form; since g_i is strictly increasing in z_i given z_{<i}, it is solved
coordinate by coordinate in the autoregressive order by bisection, all
examples at once: the bracket starts unbounded, its open end is pushed out by
doubling steps (..., -2, -1, 0, 1, 2, 4, ...) until the root is enclosed,
then it is halved until its width is a few ulps of max(1, |z|). That is about
``nmant + 2 + log2(1 + |z|)`` network passes per coordinate (measured: 25 in
float32, 54 in float64 for standard-normal z), ``D`` times that for the whole
inverse (plus D + 1 passes below): 25 D to 55 D times the cost of the forward
pass. Fine for evaluating densities of held-out data or for tests; train
through the forward direction (reverse KL, as TemperFlow does).

The bisection runs on gradient-stopped values. Its root z* is then put
through D + 1 Newton-Jacobi steps ``z <- z - (g(z) - x) / g'_diag(z)`` *with*
gradients: at the root each step changes z by rounding error only, but the
derivative follows ``dz <- (I - Dg^-1 J) dz + Dg^-1 (dx - dg/dtheta dtheta)``,
and since ``I - Dg^-1 J`` is strictly triangular (nilpotent), D steps give
exactly ``dz = J^-1 (dx - dg/dtheta dtheta)``, the implicit-function
derivative of the inverse, for forward- and reverse-mode autodiff alike. The
steps also polish the root to full precision. BNAF is not the identity at
initialization (nor at any finite parameters, the tanh stack being
nonlinear), so it is registered with ``identity_at_init=False``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Optional, Sequence, Tuple

import distrax
import jax
import jax.numpy as jnp
import numpy as np

from gmjax.flows.autoregressive import autoregressive_order
from gmjax.flows.base import FlowLayer
from gmjax.flows.registry import register_layer
from gmjax.nets.made import input_degrees

MAX_DOUBLINGS = 64  # the bracket may reach |z| = 2^64 before the search gives up on an example


@dataclasses.dataclass(frozen=True)
class BNAFSpec:
    """The static shape of one BNAF network (hashable: a static jit argument).

    The autoregressive order is not part of it: the layers work on the
    variables in position order, and the permutations in and out are traced
    arguments, so layers that differ only in their order share compilations.

    Attributes:
      dim: D, the number of variables.
      hidden_factor: a, hidden units per variable; hidden layers are ``a * D`` wide.
      num_hidden_layers: tanh hidden layers (weight layers: one more).
      residual: add the gated residual connection.
    """

    dim: int
    hidden_factor: int = 8
    num_hidden_layers: int = 1
    residual: bool = True

    def block_sizes(self) -> list[Tuple[int, int]]:
        """``(b_in, b_out)`` of every weight layer, input layer first."""
        sizes = [1] + [self.hidden_factor] * self.num_hidden_layers + [1]
        return list(zip(sizes[:-1], sizes[1:]))

    def num_units(self) -> int:
        """Output units of all weight layers together (the length of ``log_scale`` and ``bias``)."""
        return sum(self.dim * b_out for _, b_out in self.block_sizes())


def block_masks(dim: int, b_in: int, b_out: int) -> Tuple[np.ndarray, np.ndarray]:
    """0/1 masks ``[D * b_out, D * b_in]`` of the diagonal and the strictly lower blocks.

    Unit ``i * b + k`` is unit k of the variable at position i.
    """
    rows = np.repeat(np.arange(dim), b_out)[:, None]
    cols = np.repeat(np.arange(dim), b_in)[None, :]
    return (rows == cols).astype(np.float32), (rows > cols).astype(np.float32)


def masked_weight(dim: int, raw: jax.Array, log_scale: jax.Array
                  ) -> Tuple[jax.Array, jax.Array]:
    """The weight-normalized block matrix and the log of its diagonal blocks.

    Args:
      dim: D.
      raw: V, ``[D * b_out, D * b_in]``.
      log_scale: s, ``[D * b_out]``.

    Returns:
      ``W [D * b_out, D * b_in]`` and ``log W_ii [D, b_out, b_in]``.
    """
    b_out, b_in = raw.shape[0] // dim, raw.shape[1] // dim
    diag, lower = block_masks(dim, b_in, b_out)
    diag = jnp.asarray(diag, bool)
    # exp only where it is used, so a large masked-out entry cannot overflow into a NaN gradient.
    w_hat = jnp.where(diag, jnp.exp(jnp.where(diag, raw, 0.0)),
                      raw * jnp.asarray(lower, raw.dtype))  # [D b_out, D b_in]
    log_norm = 0.5 * jnp.log(jnp.sum(w_hat ** 2, axis=-1))  # [D b_out]
    log_factor = (log_scale - log_norm)[:, None]  # [D b_out, 1]
    weight = jnp.exp(log_factor) * w_hat
    blocks = (log_factor + raw).reshape(dim, b_out, dim, b_in)  # log W, valid on the diagonal
    return weight, jnp.moveaxis(jnp.diagonal(blocks, axis1=0, axis2=2), -1, 0)


def log_tanh_derivative(h: jax.Array) -> jax.Array:
    """``log(1 - tanh(h)^2) = 2 (log 2 - h - softplus(-2 h))``, finite for every h."""
    return 2.0 * (math.log(2.0) - h - jax.nn.softplus(-2.0 * h))


def prepare(spec: BNAFSpec, params: Any, dtype) -> Any:
    """Per weight layer ``(W, log W_ii, bias)`` in ``dtype``, and the gate.

    ``params`` is ``{"weights": (V_0, V_1, ...), "log_scale": [units],
    "bias": [units], "gate": []}`` (``units = spec.num_units()``, the layers'
    slices one after the other). None of it depends on the input, so the
    inverse computes it once, outside its loops.
    """
    log_scale, bias = params["log_scale"].astype(dtype), params["bias"].astype(dtype)
    layers, start = [], 0
    for raw, (_, b_out) in zip(params["weights"], spec.block_sizes()):
        stop = start + spec.dim * b_out
        weight, log_diag = masked_weight(spec.dim, raw.astype(dtype), log_scale[start:stop])
        layers.append((weight, log_diag, bias[start:stop]))
        start = stop
    return {"layers": tuple(layers), "gate": params["gate"].astype(dtype)}


def network(spec: BNAFSpec, prepared: Any, z: jax.Array, log_jacobian: bool = True
            ) -> Tuple[jax.Array, Optional[jax.Array]]:
    """The BNAF map on variables in *position* order, with its log-diagonal Jacobian.

    Args:
      spec: the network's static shape.
      prepared: ``prepare(spec, params, z.dtype)``.
      z: ``[..., D]``, entry p the variable at position p.
      log_jacobian: also compute the log-derivatives (the bisection needs values only).

    Returns:
      ``x [..., D]`` and ``log dx_p / dz_p [..., D]`` (their sum is log|det|), or None.
    """
    layers = prepared["layers"]
    h, log_jac = z, None  # log_jac: [..., D, b], the log diagonal Jacobian blocks so far
    for l, (weight, log_diag, bias) in enumerate(layers):  # [D b_out, D b_in], [D, b_out, b_in]
        h = h @ weight.T + bias  # [..., D b_out]
        if log_jacobian:
            if log_jac is None:  # input layer, b_in = 1
                log_jac = jnp.broadcast_to(log_diag[..., 0], (*h.shape[:-1], *log_diag.shape[:2]))
            else:  # [D, b_out, b_in] + [..., D, 1, b_in], logsumexp over b_in
                log_jac = jax.nn.logsumexp(log_diag + log_jac[..., None, :], axis=-1)
        if l + 1 < len(layers):
            if log_jacobian:
                log_jac = log_jac + log_tanh_derivative(h).reshape(log_jac.shape)
            h = jnp.tanh(h)
    if log_jacobian:
        log_jac = log_jac[..., 0]  # [..., D]
    if spec.residual:
        gate = prepared["gate"]
        h = jax.nn.sigmoid(gate) * h + jax.nn.sigmoid(-gate) * z
        if log_jacobian:
            log_jac = jax.nn.softplus(log_jac + gate) - jax.nn.softplus(gate)
    return h, log_jac


@functools.partial(jax.jit, static_argnums=0)
def bnaf_forward(spec: BNAFSpec, params: Any, to_positions: jax.Array, to_variables: jax.Array,
                 z: jax.Array) -> Tuple[jax.Array, jax.Array]:
    """``z [..., D] -> (x [..., D], log|det dx/dz| [...])``: one network pass.

    ``v[..., to_positions]`` lists v in the autoregressive order and
    ``u[..., to_variables]`` puts a list in that order back.
    """
    x, log_jac = network(spec, prepare(spec, params, z.dtype), z[..., to_positions])
    return x[..., to_variables], jnp.sum(log_jac, axis=-1)


def _solve_by_bisection(spec: BNAFSpec, prepared: Any, x: jax.Array) -> jax.Array:
    """``z [..., D]`` (positions) with ``network(z) = x``, to a few ulps of max(1, |z|).

    For p = 0, ..., D-1, with ``z_{<p}`` solved, ``t -> g_p(z_{<p}, t)`` is
    strictly increasing; the bracket ``(lo, hi)`` starts at ``(-inf, inf)``
    and each step evaluates g_p at one point t: 0 first, then
    ``hi - max(1, |hi|)`` or ``lo + max(1, |lo|)`` while one end is open
    (doubling), the midpoint once both are finite.
    """
    dtype = x.dtype
    eps = jnp.finfo(dtype).eps
    max_steps = MAX_DOUBLINGS + jnp.finfo(dtype).nmant + 8

    def next_point(lo, hi):  # [...]
        open_lo, open_hi = jnp.isinf(lo), jnp.isinf(hi)
        return jnp.where(open_lo & open_hi, 0.0,
                         jnp.where(open_lo, hi - jnp.maximum(1.0, jnp.abs(hi)),
                                   jnp.where(open_hi, lo + jnp.maximum(1.0, jnp.abs(lo)),
                                             0.5 * (lo + hi))))

    def converged(lo, hi):  # [...]
        width = jnp.maximum(1.0, jnp.maximum(jnp.abs(lo), jnp.abs(hi)))
        return jnp.isfinite(lo) & jnp.isfinite(hi) & (hi - lo <= 4.0 * eps * width)

    def solve_one(p, z):
        target = jax.lax.dynamic_index_in_dim(x, p, -1, keepdims=False)  # [...]

        def step(state):
            lo, hi, k = state
            t = next_point(lo, hi)
            y, _ = network(spec, prepared,
                           jax.lax.dynamic_update_index_in_dim(z, t[..., None], p, axis=-1),
                           log_jacobian=False)
            below = jax.lax.dynamic_index_in_dim(y, p, -1, keepdims=False) < target
            return jnp.where(below, t, lo), jnp.where(below, hi, t), k + 1

        def keep_going(state):
            lo, hi, k = state
            return (k < max_steps) & ~jnp.all(converged(lo, hi))

        # full_like keeps the varying axes of ``target`` under shard_map, as the loop's
        # carry must (the data-parallel train step maps over the batch).
        start = (jnp.full_like(target, -jnp.inf), jnp.full_like(target, jnp.inf), 0)
        lo, hi, _ = jax.lax.while_loop(keep_going, step, start)
        root = jnp.where(jnp.isfinite(lo) & jnp.isfinite(hi), 0.5 * (lo + hi),
                         jnp.where(jnp.isfinite(lo), lo, hi))  # a give-up keeps its best end
        return jax.lax.dynamic_update_index_in_dim(z, root[..., None], p, axis=-1)

    return jax.lax.fori_loop(0, spec.dim, solve_one, jnp.zeros_like(x))


@functools.partial(jax.jit, static_argnums=0)
def bnaf_inverse(spec: BNAFSpec, params: Any, to_positions: jax.Array, to_variables: jax.Array,
                 x: jax.Array) -> Tuple[jax.Array, jax.Array]:
    """``x [..., D] -> (z [..., D], log|det dz/dx| [...])`` by bisection (see the module doc)."""
    x_pos = x[..., to_positions]
    prepared = prepare(spec, params, x.dtype)
    z = _solve_by_bisection(spec, jax.lax.stop_gradient(prepared), jax.lax.stop_gradient(x_pos))

    def newton_jacobi(_, carry):  # exact derivatives after D steps (the Jacobian is triangular)
        z, _ = carry
        y, log_jac = network(spec, prepared, z)
        return z - (y - x_pos) * jnp.exp(-log_jac), log_jac

    # D + 1 steps: the last one's log-derivatives are taken at the D-th iterate.
    z, log_jac = jax.lax.fori_loop(0, spec.dim + 1, newton_jacobi,
                                   (jax.lax.stop_gradient(z), jnp.zeros_like(z)))
    return z[..., to_variables], -jnp.sum(log_jac, axis=-1)


class BlockAutoregressiveBijector(distrax.Bijector):
    """BNAF on ``[..., D]``: forward (z -> x) the network, inverse by bisection.

    ``order[i]`` is the position of variable i in the autoregressive order.
    """

    def __init__(self, spec: BNAFSpec, params: Any, order: Sequence[int]):
        super().__init__(event_ndims_in=1)
        order = input_degrees(order) - 1  # checks that it is a permutation
        self._spec, self._params = spec, params
        self._to_positions = jnp.asarray(np.argsort(order), jnp.int32)
        self._to_variables = jnp.asarray(order, jnp.int32)

    def forward_and_log_det(self, z: jax.Array) -> Tuple[jax.Array, jax.Array]:
        return bnaf_forward(self._spec, self._params, self._to_positions, self._to_variables, z)

    def inverse_and_log_det(self, x: jax.Array) -> Tuple[jax.Array, jax.Array]:
        return bnaf_inverse(self._spec, self._params, self._to_positions, self._to_variables, x)


def _uniform(limit: np.ndarray | float, log: bool = False):
    """An initializer ``U(-limit, limit)`` (rows scaled by ``limit [rows]``), or ``log U(0, 1)``.

    Drawn flat and reshaped: a flat draw compiles faster on jax's CPU backend.
    """

    def init(key: jax.Array, shape: Tuple[int, ...], dtype=jnp.float32) -> jax.Array:
        size = math.prod(shape)
        if log:  # s = log u, u ~ U(1e-3, 1), as the reference implementation's log U(0, 1)
            return jnp.log(jax.random.uniform(key, (size,), dtype, 1e-3, 1.0)).reshape(shape)
        u = jax.random.uniform(key, (size,), dtype, -1.0, 1.0).reshape(shape)
        scale = np.broadcast_to(np.asarray(limit, np.float64).reshape(-1, *[1] * (len(shape) - 1)),
                                shape)
        return jnp.asarray(scale, dtype) * u

    return init


class BlockAutoregressive(FlowLayer):
    """One BNAF layer on vectors ``[n, dim]`` (forward: z -> x, the network).

    Parameters: ``weight_l [D b_out, D b_in]`` per weight layer, ``log_scale``
    and ``bias`` (the layers' units one after the other) and ``gate``.

    Attributes:
      dim: D.
      order: autoregressive order, ``order[i]`` the position of variable i.
      hidden_factor: hidden units per variable (the paper's a; layers are a * D wide).
      num_hidden_layers: tanh hidden layers.
      residual: gated residual connection (needed for a bijection of R^D).
    """

    dim: int
    order: Sequence[int]
    hidden_factor: int = 8
    num_hidden_layers: int = 1
    residual: bool = True

    def spec(self) -> BNAFSpec:
        return BNAFSpec(dim=self.dim, hidden_factor=self.hidden_factor,
                        num_hidden_layers=self.num_hidden_layers, residual=self.residual)

    def setup(self):
        spec, d = self.spec(), self.dim
        weights, bias_limits = [], []
        for l, (b_in, b_out) in enumerate(spec.block_sizes()):
            # Glorot-uniform per block row: row block i uses (i + 1) b_in inputs.
            fan_in = (np.repeat(np.arange(d), b_out) + 1) * b_in  # [D b_out]
            weights.append(self.param(f"weight_{l}", _uniform(np.sqrt(6.0 / (fan_in + b_out))),
                                      (d * b_out, d * b_in)))
            bias_limits.append(np.full(d * b_out, 1.0 / math.sqrt(d * b_out)))
        self.weights = tuple(weights)
        self.log_scale = self.param("log_scale", _uniform(1.0, log=True), (spec.num_units(),))
        self.bias = self.param("bias", _uniform(np.concatenate(bias_limits)), (spec.num_units(),))
        if self.residual:
            self.gate = self.param("gate", jax.nn.initializers.zeros, (), jnp.float32)

    def bijector(self) -> distrax.Bijector:
        params = {"weights": self.weights, "log_scale": self.log_scale, "bias": self.bias,
                  "gate": self.gate if self.residual else jnp.zeros((), jnp.float32)}
        return BlockAutoregressiveBijector(self.spec(), params, self.order)


@register_layer("block_autoregressive", event_rank=1, identity_at_init=False)
def _block_autoregressive(event_shape: Tuple[int, ...], index: int, hidden_factor: int = 8,
                          num_hidden_layers: int = 1, residual: bool = True) -> FlowLayer:
    """Block neural autoregressive layer, BNAF (De Cao et al., 2019).

    The order is reversed on odd stack indices.
    """
    dim = event_shape[0]
    return BlockAutoregressive(dim=dim, order=autoregressive_order(dim, index),
                               hidden_factor=hidden_factor,
                               num_hidden_layers=num_hidden_layers, residual=residual)
