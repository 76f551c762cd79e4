"""Continuous normalizing flows: a learned velocity field integrated over [0, 1].

A CNF (Chen, Rubanova, Bettencourt and Duvenaud, 2018; FFJORD, Grathwohl et al.,
2019) moves a latent z = y(0) to the data x = y(1) along ``dy/dt = v(y, t)``. By
the instantaneous change of variables the sampling map's log-determinant is the
integrated divergence,

    log|det dx/dz| = int_0^1 tr(dv/dy (y(t), t)) dt,
    log p(x) = log N(z; 0, I) - int_0^1 tr(dv/dy (y(t), t)) dt,   z = y(0).

``CNFBijector`` is that map as a ``distrax.Bijector`` (distrax's direction:
forward z -> x integrates from t=0 to t=1, inverse x -> z from t=1 back to
t=0); both solves go through ``gmjax.flows.ode.integrate`` with an
``ODEOptions`` (solver, exact or Hutchinson trace, adjoint). Forward and inverse
are inverse maps only up to the solver's tolerance, and the log-det is the
integral of the trace along the computed trajectory, not the log-determinant of
the discretized map: both agree with the exact flow to the solver's accuracy.

``CNF`` is the Flax layer that owns a time-conditioned velocity net
(``gmjax.nets.time_mlp.TimeMLP``) and hands out the bijector; wrapped in a
``Flow`` it is a density over a standard normal base. The same velocity, trained
by flow matching (``gmjax.objectives.flow_matching``), gets its likelihood the
same way.

Hutchinson's trace needs random probes. The bijector takes them from its ``key``
attribute; the ``CNF`` layer's ``bijector(key)`` passes an explicit key, or, when
none is given, draws one from the Flax RNG stream ``"probe"`` (so
``flow.apply(params, x, method=Flow.log_prob, rngs={"probe": key})`` works).
A Hutchinson solve without either fails with a message saying so. With the
exact trace no key is needed.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp

from gmjax.flows.base import Flow, FlowLayer
from gmjax.flows.ode import ODEOptions, ODEResult, Velocity, integrate
from gmjax.flows.registry import register_layer
from gmjax.nets.time_mlp import TimeMLP

PROBE_RNG = "probe"  # the Flax RNG stream a CNF layer draws Hutchinson probes from


class CNFBijector(distrax.Bijector):
    """The time-1 map of ``dy/dt = velocity(y, t, args)`` on ``[n, *event]``.

    Args:
      velocity: ``velocity(y [n, *event], t, args) -> [n, *event]``, row-wise.
      args: the velocity's parameters (gradients reach them under either adjoint).
      event_ndims: rank of one example (1 for vectors).
      options: the solve (``ODEOptions``); checked here, so a bad option fails at
        construction.
      key: draws the Hutchinson probes; required when ``options.trace == "hutchinson"``.
        The forward and inverse solves use the same key.
      t0, t1: the latent and data ends of the time interval (t0 > t1 runs the sampling
        direction backwards in time, as OT-Flow does).
      divergence, running_cost: a model's own exact divergence and running costs
        (``gmjax.flows.ode.integrate``; OT-Flow's Hessian trace, transport cost and HJB
        penalty).
    """

    def __init__(self, velocity: Velocity, args=None, *, event_ndims: int = 1,
                 options: ODEOptions = ODEOptions(), key: Optional[jax.Array] = None,
                 t0: float = 0.0, t1: float = 1.0, divergence=None, running_cost=None):
        super().__init__(event_ndims_in=event_ndims)
        options.check()
        if options.trace == "hutchinson" and key is None and divergence is None:
            raise ValueError("a CNF with trace='hutchinson' needs a key for its probes: pass "
                             "key=..., or rngs={'probe': key} to the Flax apply")
        self.velocity = velocity
        self.args = args
        self.options = options
        self.key = key
        self.t0, self.t1 = t0, t1
        self.divergence, self.running_cost = divergence, running_cost

    def _solve(self, y: jax.Array, t0: float, t1: float, regularize: bool = False,
               costs: bool = False) -> ODEResult:
        return integrate(self.velocity, y, t0, t1, args=self.args, options=self.options,
                         key=self.key, regularize=regularize, divergence=self.divergence,
                         running_cost=self.running_cost if costs else None)

    def forward_and_log_det(self, z: jax.Array) -> Tuple[jax.Array, jax.Array]:
        """``z -> (x, int_{t0}^{t1} tr(dv/dy) dt)``."""
        result = self._solve(z, self.t0, self.t1)
        return result.y, result.log_det

    def inverse_and_log_det(self, x: jax.Array) -> Tuple[jax.Array, jax.Array]:
        """``x -> (z, int_{t1}^{t0} tr(dv/dy) dt)``, the backward solve."""
        result = self._solve(x, self.t1, self.t0)
        return result.y, result.log_det

    def forward_with_stats(self, z: jax.Array, regularize: bool = False,
                           costs: bool = False) -> ODEResult:
        """The forward solve with its function-evaluation count (``ODEResult.nfe``); with
        ``regularize`` the RNODE terms, with ``costs`` the model's running costs."""
        return self._solve(z, self.t0, self.t1, regularize, costs)

    def inverse_with_stats(self, x: jax.Array, regularize: bool = False,
                           costs: bool = False) -> ODEResult:
        """The inverse (density) solve with its function-evaluation count, RNODE terms
        (``regularize``) and running costs (``costs``)."""
        return self._solve(x, self.t1, self.t0, regularize, costs)


class CNF(FlowLayer):
    """A continuous normalizing flow on vectors ``[n, dim]`` with a ``TimeMLP`` velocity.

    Attributes:
      dim: event size d.
      hidden: hidden widths of the velocity net (its output width is ``dim``).
      embed_dim: width of the net's sinusoidal time embedding.
      options: the ODE solve (``ODEOptions``): solver, trace estimator, adjoint.
      max_time: the ``TimeMLP``'s time scale: it embeds ``t * 1000 / max_time``. The default
        keeps the embedding's fastest frequency at 10 radians per unit of t, so the field is
        smooth in t and adaptive solves take few steps (with ``max_time=1`` the embedding
        holds sin(1000 t), and an untrained field needs thousands of evaluations).
    """

    dim: int
    hidden: Sequence[int] = (64, 64)
    embed_dim: int = 32
    options: ODEOptions = ODEOptions()
    max_time: float = 100.0

    def setup(self):
        self.options.check()
        self.net = TimeMLP(features=(*self.hidden, self.dim), embed_dim=self.embed_dim,
                           max_time=self.max_time)

    def velocity(self, y: jax.Array, t: jax.Array) -> jax.Array:
        """``v(y [n, dim], t) -> [n, dim]``, t a scalar or ``[n]``: the net, as flow matching
        regresses it."""
        return self.net(y, t)

    def velocity_fn(self) -> Tuple[Velocity, dict]:
        """``(velocity(y, t, params), params)``: the net as a pure function of its parameters,
        as ``integrate`` takes it (parameters through ``args``, so either adjoint reaches them).
        """
        if self.is_initializing():  # create the net's parameters
            self.net(jnp.zeros((1, self.dim), jnp.float32), jnp.zeros((1,)))
        net = self.net.clone(parent=None)

        def velocity(y, t, params):
            return net.apply({"params": params}, y, jnp.broadcast_to(t, (y.shape[0],)))

        return velocity, self.net.variables["params"]

    def bijector(self, key: Optional[jax.Array] = None) -> CNFBijector:
        """The time-1 map. ``key`` draws Hutchinson probes; without it a Hutchinson layer
        draws one from the ``"probe"`` RNG stream of the Flax apply."""
        if key is None and self.options.trace == "hutchinson" and self.has_rng(PROBE_RNG):
            key = self.make_rng(PROBE_RNG)
        velocity, params = self.velocity_fn()
        return CNFBijector(velocity, params, event_ndims=1, options=self.options, key=key)


def cnf_flow(event_shape: Tuple[int], hidden: Sequence[int] = (64, 64), embed_dim: int = 32,
             options: ODEOptions = ODEOptions(), max_time: float = 100.0) -> Flow:
    """A CNF density (FFJORD, Grathwohl et al., 2019): one ``CNF`` layer over N(0, I)."""
    if len(event_shape) != 1:
        raise ValueError(f"cnf takes vector events [d], got shape {tuple(event_shape)}")
    layer = CNF(dim=event_shape[0], hidden=tuple(hidden), embed_dim=embed_dim, options=options,
                max_time=max_time)
    return Flow(layers=[layer], event_shape=tuple(event_shape))


@register_layer("cnf", event_rank=1, approximate=True)
def cnf_layer(event_shape: Tuple[int], index: int = 0, hidden: Sequence[int] = (16,),
              embed_dim: int = 8, solver: str = "rk4", num_steps: int = 8,
              trace: str = "exact") -> CNF:
    """Continuous normalizing flow (FFJORD): a TimeMLP velocity over [0, 1], fixed-step RK4 by
    default (inverse and log-det hold to the solver's accuracy)."""
    del index  # every CNF layer is alike
    return CNF(dim=event_shape[0], hidden=tuple(hidden), embed_dim=embed_dim,
               options=ODEOptions(solver=solver, num_steps=num_steps, trace=trace))


__all__ = ["CNF", "CNFBijector", "PROBE_RNG", "cnf_flow", "cnf_layer"]
