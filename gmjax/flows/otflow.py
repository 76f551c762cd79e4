"""OT-Flow: a continuous flow whose velocity is the gradient of a learned potential.

OT-Flow (Onken, Wu Fung, Li and Ruthotto, 2021, "OT-Flow: fast and accurate
continuous normalizing flows via optimal transport") moves data x = z(0) to
the latent z(1) along ``dz/dt = -grad_x Phi(z, t)`` with the potential, on
s = (x, t) in R^{d+1},

    Phi(s) = w^T N(s) + 1/2 s^T (A^T A) s + b^T s + c,
    N(s): u_0 = sigma(K_0 s + b_0),  u_i = u_{i-1} + h sigma(K_i u_{i-1} + b_i),  i = 1..L,
    N(s) = u_L,  h = 1 / L,  sigma(a) = log(exp(a) + exp(-a)),

A of rank r = min(10, d + 1). Its density is
``log p(x) = log N(z(1); 0, I) - int_0^1 tr(grad_x^2 Phi) dt`` and it is
trained on the negative log-likelihood plus two running costs along the
density solve (``otflow_costs``):

* transport cost ``L = int_0^1 1/2 ||grad_x Phi||^2 dt`` (the kinetic energy
  of the map, whose minimizer over maps pushing the data to N(0, I) is the
  optimal transport map);
* HJB penalty ``R = int_0^1 |d_t Phi - 1/2 ||grad_x Phi||^2| dt``, the residual
  of the Hamilton-Jacobi-Bellman equation the optimal potential satisfies.

The trace of the Hessian is exact and costs O(L m^2 d) per example, by the
paper's formula (``otflow_terms``): the Hessian of the composite potential is,
node by node, ``sum_i sum_j adj_ij sigma''(a_ij) ||grad_x a_ij||^2`` plus
``tr(E^T A^T A E)`` (E picks the x coordinates of s), where a_i are the
pre-activations, ``grad_x a_i = K_i J_{i-1}`` is carried forward with the
Jacobians ``J_i = grad_x u_i`` ([m, d] per example, so no d x d Jacobian is
formed) and ``adj_i`` is the gradient of Phi with respect to sigma(a_i) from
the backward pass. ``tests/test_cnf_experiment.py`` checks it against the
autodiff Hessian trace.

In the library's direction convention (forward = sampling, latent to data)
the bijector integrates the sampling map from t = 1 back to t = 0
(``CNFBijector(..., t0=1, t1=0)``), with the fixed-step classical RK4 of the
paper.
"""

from __future__ import annotations

from typing import Dict, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from gmjax.flows.base import Flow, FlowLayer
from gmjax.flows.continuous import CNFBijector
from gmjax.flows.ode import ODEOptions

Params = Dict[str, jax.Array]


def _sigma(a: jax.Array) -> jax.Array:
    """log(exp(a) + exp(-a)), the antiderivative of tanh, computed stably."""
    return jnp.abs(a) + jnp.log1p(jnp.exp(-2.0 * jnp.abs(a)))


def otflow_potential(params: Params, x: jax.Array, t: jax.Array) -> jax.Array:
    """``Phi(x, t)``: ``[n, d], t -> [n]`` (plain forward pass, for autodiff checks)."""
    s = jnp.concatenate([x, jnp.broadcast_to(t, (x.shape[0], 1)).astype(x.dtype)], axis=1)
    u = _sigma(s @ params["K0"].T + params["b0"])
    num_layers = params["K"].shape[0]
    for i in range(num_layers):
        u = u + _sigma(u @ params["K"][i].T + params["b"][i]) / num_layers
    quad = 0.5 * jnp.sum((s @ params["A"].T) ** 2, axis=1)
    return u @ params["w"] + quad + s @ params["bias"] + params["c"]


def otflow_terms(params: Params, x: jax.Array, t: jax.Array
                 ) -> Tuple[jax.Array, jax.Array]:
    """``(grad_s Phi [n, d + 1], tr(grad_x^2 Phi) [n])`` by the O(d) exact formula.

    The last column of the gradient is ``d_t Phi``; the velocity is ``-grad[:, :d]``.
    """
    n, d = x.shape
    s = jnp.concatenate([x, jnp.broadcast_to(t, (n, 1)).astype(x.dtype)], axis=1)
    num_layers = params["K"].shape[0]
    h = 1.0 / num_layers
    # Forward: pre-activations a_i and states u_i.
    a0 = s @ params["K0"].T + params["b0"]
    u = _sigma(a0)
    pre, states = [], [u]
    for i in range(num_layers):
        a = u @ params["K"][i].T + params["b"][i]
        u = u + h * _sigma(a)
        pre.append(a)
        states.append(u)
    # Backward: g_i = dPhi/du_i, from g_L = w.
    g = jnp.broadcast_to(params["w"], (n, params["w"].shape[0]))
    adjoints = [None] * num_layers
    for i in reversed(range(num_layers)):
        adjoints[i] = g
        g = g + h * (jnp.tanh(pre[i]) * g) @ params["K"][i]
    gram = params["A"].T @ params["A"]
    grad = (jnp.tanh(a0) * g) @ params["K0"] + s @ gram + params["bias"]
    # Trace: sum over nonlinear nodes of adjoint * sigma'' * ||grad_x a||^2, sigma'' = 1 - tanh^2.
    k0x = params["K0"][:, :d]                                            # [m, d]
    trace = ((1.0 - jnp.tanh(a0) ** 2) * g) @ jnp.sum(k0x ** 2, axis=1)
    jac = jnp.tanh(a0)[:, :, None] * k0x[None]                           # J_0 [n, m, d]
    for i in range(num_layers):
        kj = jnp.einsum("jk,nkd->njd", params["K"][i], jac)               # grad_x a_i
        trace = trace + h * jnp.sum((1.0 - jnp.tanh(pre[i]) ** 2) * adjoints[i]
                                    * jnp.sum(kj ** 2, axis=2), axis=1)
        jac = jac + h * jnp.tanh(pre[i])[:, :, None] * kj
    trace = trace + jnp.sum(params["A"][:, :d] ** 2)
    return grad, trace


def otflow_velocity(y: jax.Array, t: jax.Array, params: Params) -> jax.Array:
    """``v = -grad_x Phi(y, t)``: ``[n, d] -> [n, d]``."""
    grad, _ = otflow_terms(params, y, t)
    return -grad[:, :y.shape[1]]


def otflow_divergence(y: jax.Array, t: jax.Array, params: Params
                      ) -> Tuple[jax.Array, jax.Array]:
    """``(v, tr(dv/dy) = -tr(grad_x^2 Phi))``, exact."""
    grad, trace = otflow_terms(params, y, t)
    return -grad[:, :y.shape[1]], -trace


def otflow_costs(y: jax.Array, t: jax.Array, params: Params) -> jax.Array:
    """``[n, 2]``: the integrands of the transport cost, ``1/2 ||grad_x Phi||^2``, and of
    the HJB penalty, ``|d_t Phi - 1/2 ||grad_x Phi||^2|``."""
    grad, _ = otflow_terms(params, y, t)
    half_sq = 0.5 * jnp.sum(grad[:, :y.shape[1]] ** 2, axis=1)
    return jnp.stack([half_sq, jnp.abs(grad[:, -1] - half_sq)], axis=1)


class OTFlow(FlowLayer):
    """The OT-Flow potential on vectors ``[n, dim]`` and its flow map (``CNFBijector``).

    Attributes:
      dim: event size d.
      width: m, the ResNet's width.
      num_layers: L, the residual layers after the opening layer (the paper's two-layer
        ResNet is L = 1).
      rank: r of the quadratic term's A (0: min(10, d + 1)).
      num_steps: classical RK4 steps over [0, 1].
    """

    dim: int
    width: int = 32
    num_layers: int = 1
    rank: int = 0
    num_steps: int = 8

    def setup(self):
        if self.num_layers < 1 or self.width < 1 or self.num_steps < 1:
            raise ValueError(f"OT-Flow needs width, num_layers and num_steps >= 1, got "
                             f"{self.width}, {self.num_layers}, {self.num_steps}")
        d1, m = self.dim + 1, self.width
        rank = self.rank or min(10, d1)
        dense = nn.initializers.lecun_normal()
        self.K0 = self.param("K0", dense, (m, d1))
        self.b0 = self.param("b0", nn.initializers.zeros, (m,))
        self.K = self.param("K", lambda k, s: jax.vmap(lambda q: dense(q, s[1:]))(
            jax.random.split(k, s[0])), (self.num_layers, m, m))
        self.b = self.param("b", nn.initializers.zeros, (self.num_layers, m))
        self.w = self.param("w", nn.initializers.zeros, (m,))
        self.A = self.param("A", nn.initializers.normal(0.1), (rank, d1))
        self.bias = self.param("bias", nn.initializers.zeros, (d1,))
        self.c = self.param("c", nn.initializers.zeros, ())

    def options(self) -> ODEOptions:
        return ODEOptions(solver="rk4", num_steps=self.num_steps)

    def potential_params(self) -> Params:
        return {"K0": self.K0, "b0": self.b0, "K": self.K, "b": self.b, "w": self.w,
                "A": self.A, "bias": self.bias, "c": self.c}

    def bijector(self) -> CNFBijector:
        """The sampling map z -> x: the ODE from t = 1 back to t = 0."""
        return CNFBijector(otflow_velocity, self.potential_params(), event_ndims=1,
                           options=self.options(), t0=1.0, t1=0.0,
                           divergence=otflow_divergence, running_cost=otflow_costs)


def otflow_flow(event_shape: Tuple[int], width: int = 32, num_layers: int = 1, rank: int = 0,
                num_steps: int = 8) -> Flow:
    """An OT-Flow density: one ``OTFlow`` layer over N(0, I)."""
    if len(event_shape) != 1:
        raise ValueError(f"otflow takes vector events [d], got shape {tuple(event_shape)}")
    return Flow(layers=[OTFlow(dim=event_shape[0], width=width, num_layers=num_layers,
                               rank=rank, num_steps=num_steps)], event_shape=tuple(event_shape))


__all__ = ["OTFlow", "otflow_costs", "otflow_divergence", "otflow_flow", "otflow_potential",
           "otflow_terms", "otflow_velocity"]
