"""Stabilizers that are not losses: weight clipping, instance noise, consensus optimization.

(Gradient penalties live in ``penalties.py``, one-sided label smoothing in
``losses.discriminator_loss``, spectral normalization in
``gmjax.nets.spectral`` with its state threaded by the game, ``game.py``.)

* **Weight clipping** (Arjovsky et al., "Wasserstein GAN", ICML 2017,
  Algorithm 1) is a projection of the critic's parameters onto the box
  ``[-c, c]`` after every update. It is written as an optax transformation,
  ``clip_weights(c)``, chained *after* the critic's optimizer: it rewrites
  the update ``u`` as ``clip(w + u, -c, c) - w``, so ``apply_updates`` lands
  in the box. The optimizer's moments still see the raw gradients, as in the
  paper's RMSProp-then-clip loop, and nothing in the train step changes.
* **Instance noise** (Sonderby et al., "Amortised MAP inference for image
  super-resolution", ICLR 2017, Sec. 4; Arjovsky and Bottou, "Towards
  principled methods for training GANs", ICLR 2017, Sec. 3.1): both players'
  losses show the critic ``x + sigma_t eps`` instead of ``x``, real and fake
  alike, ``eps ~ N(0, I)``; the noise makes the two distributions overlap and
  is annealed linearly to 0, ``sigma_t = sigma_0 max(0, 1 - t / T)`` over the
  first ``T`` critic updates (constant when ``T = 0``).
* **Consensus optimization** (Mescheder, Nowozin and Geiger, "The numerics of
  GANs", NeurIPS 2017, Sec. 3): with the game's vector field
  ``v = (grad_phi L_C, grad_theta L_G)`` and ``L = 1/2 ||v||^2``, each player
  descends its own loss plus ``gamma L``. It needs both players' gradients
  at once, so it is a transformation of the two game losses
  (``consensus_losses``): each returned loss evaluates both gradients at its
  arguments, with the same key (the same latent draw), and adds
  ``gamma L``; the train step is unchanged. In the paper the players update
  simultaneously; in an alternating step the generator's ``L`` is evaluated
  at the critic's updated parameters. On several devices ``v`` is each
  device's own (unaveraged) gradient.
"""

from __future__ import annotations

from typing import Any, Callable, Tuple

import jax
import jax.numpy as jnp
import optax

PyTree = Any


def clip_weights(bound: float) -> optax.GradientTransformation:
    """Projects the parameters onto ``[-bound, bound]`` after the update (WGAN's clipping).

    Chain it last: ``optax.chain(optimizer, clip_weights(0.01))``. Its update
    is ``clip(w + u, -bound, bound) - w``, so every parameter of ``w + u`` is
    in the box.
    """
    if not bound > 0:
        raise ValueError(f"the weight-clipping bound must be > 0, got {bound}")

    def init(params: PyTree) -> optax.EmptyState:
        return optax.EmptyState()

    def update(updates: PyTree, state: optax.EmptyState, params: PyTree = None):
        if params is None:
            raise ValueError("clip_weights needs the parameters: call update(g, state, params)")
        projected = jax.tree.map(
            lambda w, u: jnp.clip(w + u, -bound, bound) - w, params, updates)
        return projected, state

    return optax.GradientTransformation(init, update)


def instance_noise_scale(sigma0: float, anneal_updates: int, t: Any) -> jax.Array:
    """``sigma_t = sigma0 max(0, 1 - t / T)``, ``T = anneal_updates`` (``sigma0`` if ``T = 0``)."""
    if anneal_updates <= 0:
        return jnp.asarray(sigma0, jnp.float32)
    fraction = jnp.asarray(t, jnp.float32) / float(anneal_updates)
    return sigma0 * jnp.maximum(0.0, 1.0 - fraction)


def add_instance_noise(key: jax.Array, x: jax.Array, sigma: Any) -> jax.Array:
    """``x + sigma eps``, ``eps ~ N(0, I)`` of ``x``'s shape."""
    return x + sigma * jax.random.normal(key, x.shape, x.dtype)


def _squared_norm(tree: PyTree) -> jax.Array:
    return sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree.leaves(tree))


def consensus_losses(critic_loss: Callable, gen_loss: Callable, weight: float,
                     stateful: bool = False) -> Tuple[Callable, Callable]:
    """Game losses with the consensus term ``weight * 1/2 ||v||^2`` added to both.

    ``v = (grad_c L_C(c, g), grad_g L_G(g, c))`` at the loss's arguments,
    both evaluated with the same ``batch`` and ``key`` (Mescheder et al., 2017,
    Algorithm 2, in minimization form). Works on the game losses of
    ``make_minmax_step``: ``loss(params, other, batch, key)`` or, with
    ``stateful``, ``loss(params, other, batch, key, game)`` where the critic's
    aux is ``(metrics, game)``. Both losses report
    ``consensus = 1/2 ||v||^2`` in their metrics.
    """
    if weight < 0:
        raise ValueError(f"the consensus weight must be >= 0, got {weight}")

    def half_squared_field(c, g, batch, key, *game):
        critic_grad = jax.grad(lambda cc: critic_loss(cc, g, batch, key, *game)[0])(c)
        gen_grad = jax.grad(lambda gg: gen_loss(gg, c, batch, key, *game)[0])(g)
        return 0.5 * (_squared_norm(critic_grad) + _squared_norm(gen_grad))

    def with_metric(aux, reg, is_critic):
        if stateful and is_critic:
            metrics, game = aux
            return dict(metrics, consensus=reg), game
        return dict(aux, consensus=reg)

    def new_critic_loss(c, g, batch, key, *game):
        value, aux = critic_loss(c, g, batch, key, *game)
        reg = half_squared_field(c, g, batch, key, *game)
        return value + weight * reg, with_metric(aux, reg, True)

    def new_gen_loss(g, c, batch, key, *game):
        value, aux = gen_loss(g, c, batch, key, *game)
        reg = half_squared_field(c, g, batch, key, *game)
        return value + weight * reg, with_metric(aux, reg, False)

    return new_critic_loss, new_gen_loss
