"""Adversarial losses: the two players' objectives of a GAN, as pure functions.

Goodfellow et al., "Generative adversarial nets", NeurIPS 2014, Eq. (1):

    min_G max_D V(D, G) = E_{x ~ p_data}[log D(x)] + E_{z ~ p_z}[log(1 - D(G(z)))],

with D(x) = sigmoid(d(x)) for a discriminator logit d. Writing everything with
logits and ``softplus(t) = log(1 + e^t)`` (so ``log sigmoid(t) = -softplus(-t)``
and ``log(1 - sigmoid(t)) = -softplus(t)``, both stable for large |t|):

  discriminator (minimizes -V, the binary cross-entropy of real vs. fake):
      L_D = E_x[softplus(-d(x))] + E_z[softplus(d(G(z)))]
  generator, ``minimax`` (minimizes V's second term; gradients vanish when
  D rejects fakes confidently, i.e. early in training):
      L_G = E_z[log(1 - D(G(z)))] = -E_z[softplus(d(G(z)))]
  generator, ``non_saturating`` (Goodfellow et al., Sec. 3: maximize
  log D(G(z)) instead; same fixed point, strong gradients early):
      L_G = -E_z[log D(G(z))] = E_z[softplus(-d(G(z)))]

The latent prior is p_z = N(0, I_d).

A loss is registered in ``GAN_LOSSES`` as an ``AdversarialLoss`` of two
functions on logits; ``make_gan_losses`` turns one into the pair of game
losses ``make_minmax_step`` takes:

    critic_loss(critic_params, gen_params, batch, key) -> (L_D, metrics)
    gen_loss(gen_params, critic_params, batch, key)    -> (L_G, metrics)

Both draw ``z ~ N(0, I)`` from ``key``, as many as the batch has rows; the
critic sees the generated images with ``stop_gradient``. Metrics are the mean
``d_real = D(x)`` and ``d_fake = D(G(z))`` (1/2 each at the game's
equilibrium p_g = p_data, Goodfellow et al., Prop. 1).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from gmjax.registry import Registry

PyTree = Any
Metrics = Dict[str, jax.Array]
GameLoss = Callable[[PyTree, PyTree, PyTree, jax.Array], Tuple[jax.Array, Metrics]]


class AdversarialLoss(NamedTuple):
    """The two players' losses on discriminator logits, both to be minimized.

    Attributes:
      critic: ``(real_logits [n], fake_logits [m]) -> scalar``.
      generator: ``(fake_logits [m]) -> scalar``.
    """

    critic: Callable[[jax.Array, jax.Array], jax.Array]
    generator: Callable[[jax.Array], jax.Array]


GAN_LOSSES: Registry[AdversarialLoss] = Registry("GAN loss")


def discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """``L_D = mean softplus(-d(x)) + mean softplus(d(G(z)))`` = -V(D, G) (Goodfellow et al., Eq. 1)."""
    return jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))


def minimax_generator_loss(fake_logits: jax.Array) -> jax.Array:
    """``L_G = mean log(1 - D(G(z))) = -mean softplus(d(G(z)))`` (Goodfellow et al., Eq. 1)."""
    return -jnp.mean(jax.nn.softplus(fake_logits))


def non_saturating_generator_loss(fake_logits: jax.Array) -> jax.Array:
    """``L_G = -mean log D(G(z)) = mean softplus(-d(G(z)))`` (Goodfellow et al., Sec. 3)."""
    return jnp.mean(jax.nn.softplus(-fake_logits))


GAN_LOSSES.register("minimax")(AdversarialLoss(discriminator_loss, minimax_generator_loss))
GAN_LOSSES.register("non_saturating")(
    AdversarialLoss(discriminator_loss, non_saturating_generator_loss))


def sample_latent(key: jax.Array, n: int, latent_dim: int) -> jax.Array:  # -> [n, latent_dim]
    """``z ~ p_z = N(0, I_d)``, the latent prior of every GAN here."""
    return jax.random.normal(key, (n, latent_dim))


def make_gan_losses(generator: nn.Module, discriminator: nn.Module, latent_dim: int,
                    loss: str = "non_saturating",
                    preprocess: Optional[Callable[[jax.Array], jax.Array]] = None
                    ) -> Tuple[GameLoss, GameLoss]:
    """The game losses of GAN loss ``loss`` for ``make_minmax_step``.

    Args:
      generator: ``G``, a Flax module ``z [n, latent_dim] -> images [n, ...]``.
      discriminator: ``d``, a Flax module ``images [n, ...] -> logits [n]``.
      latent_dim: ``d`` of the prior N(0, I_d).
      loss: a name in ``GAN_LOSSES`` (``minimax``, ``non_saturating``).
      preprocess: maps a data batch into the generator's output space (e.g.
        uint8 pixels to [-1, 1]); identity when ``None``.

    Returns:
      ``(critic_loss, gen_loss)``, pure and jit / grad / shard_map friendly.
    """
    game = GAN_LOSSES.get(loss)
    to_images = preprocess if preprocess is not None else (lambda x: x)

    def critic_loss(critic_params: PyTree, gen_params: PyTree, batch: jax.Array,
                    key: jax.Array) -> Tuple[jax.Array, Metrics]:
        real = to_images(batch)                                    # [n, H, W, C]
        z = sample_latent(key, real.shape[0], latent_dim)          # [n, d]
        fake = jax.lax.stop_gradient(generator.apply(gen_params, z))
        real_logits = discriminator.apply(critic_params, real)     # [n]
        fake_logits = discriminator.apply(critic_params, fake)     # [n]
        value = game.critic(real_logits, fake_logits)
        return value, {"d_real": jnp.mean(jax.nn.sigmoid(real_logits)),
                       "d_fake": jnp.mean(jax.nn.sigmoid(fake_logits))}

    def gen_loss(gen_params: PyTree, critic_params: PyTree, batch: jax.Array,
                 key: jax.Array) -> Tuple[jax.Array, Metrics]:
        z = sample_latent(key, batch.shape[0], latent_dim)         # [n, d]
        fake_logits = discriminator.apply(critic_params, generator.apply(gen_params, z))
        return game.generator(fake_logits), {"d_fake": jnp.mean(jax.nn.sigmoid(fake_logits))}

    return critic_loss, gen_loss
