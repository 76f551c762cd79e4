"""Gradient penalties on the critic: WGAN-GP, DRAGAN, R1 and R2.

Each penalty is ``penalty(critic_fn, real, fake, key) -> scalar``, where
``critic_fn: x [n, ...] -> [n]`` is the critic's scalar output (the logit,
before any sigmoid) with its parameters closed over, so that differentiating
the penalty differentiates through the input gradient (double backprop).
The game adds ``weight * penalty`` to the critic's loss.

Input gradients are taken as ``grad_x sum_i critic_fn(x)_i``, which is the
per-example gradient because every critic here treats examples independently
(no batch normalization).

  ``gp``     (Gulrajani et al., "Improved training of Wasserstein GANs",
             NeurIPS 2017, Eq. 3): ``E_xhat[(||grad f(xhat)|| - 1)^2]`` on
             ``xhat = e x + (1 - e) G(z)``, ``e ~ U[0, 1]`` per example; weight 10.
  ``dragan`` (Kodali et al., "On convergence and stability of GANs", 2017):
             ``E[(||grad D(x + delta)|| - 1)^2]`` around the real data,
             ``delta ~ N(0, c I)``; weight 10. The noise scale is given
             relative to the batch's standard deviation (``scale * std(x)``,
             default 0.5), so it does not depend on the data's units.
  ``r1``     (Mescheder, Geiger and Nowozin, "Which training methods for GANs
             do actually converge?", ICML 2018, Eq. 9):
             ``1/2 E_{p_data}[||grad D(x)||^2]``; weight gamma (10 here).
  ``r2``     (ibid.): ``1/2 E_{p_g}[||grad D(x)||^2]`` on the fakes.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from gmjax.registry import Registry

CriticFn = Callable[[jax.Array], jax.Array]
PenaltyFn = Callable[[CriticFn, jax.Array, jax.Array, jax.Array], jax.Array]


def input_gradients(critic_fn: CriticFn, x: jax.Array) -> jax.Array:  # [n, ...] -> [n, ...]
    """``grad_x critic_fn(x)_i`` for every example ``i`` (examples independent)."""
    return jax.grad(lambda inputs: jnp.sum(critic_fn(inputs)))(x)


def squared_norms(g: jax.Array) -> jax.Array:  # [n, ...] -> [n]
    """``||g_i||^2`` over all axes but the first."""
    return jnp.sum(jnp.square(g).reshape(g.shape[0], -1), axis=-1)


def safe_norms(g: jax.Array) -> jax.Array:  # [n, ...] -> [n]
    """``||g_i||``, with gradient 0 (not NaN) where ``g_i = 0``."""
    s = squared_norms(g)
    positive = s > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, s, 1.0)), 0.0)


def gradient_penalty(critic_fn: CriticFn, real: jax.Array, fake: jax.Array, key: jax.Array,
                     target: float = 1.0) -> jax.Array:
    """``E_xhat[(||grad f(xhat)|| - target)^2]`` on random interpolates (WGAN-GP, Eq. 3).

    ``xhat = e x + (1 - e) x_fake`` with one ``e ~ U[0, 1]`` per example; real
    and fake batches must have the same shape.
    """
    if real.shape != fake.shape:
        raise ValueError(f"the gradient penalty pairs real and fake examples: shapes "
                         f"{real.shape} and {fake.shape} differ")
    e = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1), real.dtype)
    interpolates = e * real + (1.0 - e) * fake
    return jnp.mean((safe_norms(input_gradients(critic_fn, interpolates)) - target) ** 2)


def dragan_penalty(critic_fn: CriticFn, real: jax.Array, fake: jax.Array, key: jax.Array,
                   scale: float = 0.5, target: float = 1.0) -> jax.Array:
    """``E[(||grad D(x + delta)|| - target)^2]``, ``delta ~ N(0, (scale std(x))^2 I)`` (DRAGAN)."""
    std = jax.lax.stop_gradient(jnp.std(real))
    perturbed = real + scale * std * jax.random.normal(key, real.shape, real.dtype)
    return jnp.mean((safe_norms(input_gradients(critic_fn, perturbed)) - target) ** 2)


def r1_penalty(critic_fn: CriticFn, real: jax.Array, fake: jax.Array,
               key: jax.Array) -> jax.Array:
    """``R1 = 1/2 E_{p_data}[||grad D(x)||^2]`` (Mescheder et al., 2018, Eq. 9, without gamma)."""
    return 0.5 * jnp.mean(squared_norms(input_gradients(critic_fn, real)))


def r2_penalty(critic_fn: CriticFn, real: jax.Array, fake: jax.Array,
               key: jax.Array) -> jax.Array:
    """``R2 = 1/2 E_{p_g}[||grad D(x)||^2]``, R1 on the fakes (Mescheder et al., 2018)."""
    return 0.5 * jnp.mean(squared_norms(input_gradients(critic_fn, fake)))


def no_penalty(critic_fn: CriticFn, real: jax.Array, fake: jax.Array,
               key: jax.Array) -> jax.Array:
    """Zero."""
    return jnp.zeros((), real.dtype)


class Penalty(NamedTuple):
    """A penalty function and its default weight (the paper's lambda / gamma)."""

    fn: PenaltyFn
    weight: float


PENALTIES: Registry[Penalty] = Registry("GAN penalty")
PENALTIES.register("none")(Penalty(no_penalty, 0.0))
PENALTIES.register("gp")(Penalty(gradient_penalty, 10.0))
PENALTIES.register("dragan")(Penalty(dragan_penalty, 10.0))
PENALTIES.register("r1")(Penalty(r1_penalty, 10.0))
PENALTIES.register("r2")(Penalty(r2_penalty, 10.0))


def make_penalty(name: str, dragan_scale: float = 0.5) -> PenaltyFn:
    """The penalty ``name`` (in ``PENALTIES``), with DRAGAN's noise scale bound."""
    fn = PENALTIES.get(name).fn
    return functools.partial(fn, scale=dragan_scale) if name == "dragan" else fn
