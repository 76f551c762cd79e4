"""Mode-collapse remedies that act on the game losses: feature matching and the unrolled GAN.

The remedies that change the critic's architecture, minibatch
discrimination and PacGAN packing, are layers of ``gmjax.nets.gan_mlp``.

**Feature matching** (Salimans et al., 2016, "Improved techniques for
training GANs", Sec. 3.1): the generator matches the mean of the critic's
last hidden features f instead of fooling its output,

    L_G = || E_x f(x) - E_z f(G(z)) ||_2^2,

with the critic trained by its usual loss. ``GanConfig(feature_matching=True)``
uses it; the critic must ``sow`` its features as ``("intermediates",
"features")`` (``gmjax.nets.MLPCritic`` does).

**Unrolled GAN** (Metz, Poole, Pfau and Sohl-Dickstein, 2017): the
generator's loss is evaluated against the critic after ``k`` further critic
updates from the current one,

    theta_C^0 = theta_C,   theta_C^{i+1} = theta_C^i + U(grad L_C(theta_C^i, theta_G)),
    L_G^unrolled(theta_G) = L_G(theta_G, theta_C^k(theta_G)),

and differentiated *through* the updates (the dependence of theta_C^k on
theta_G included), so the generator anticipates the critic's response. The
critic itself is still updated by its plain step. ``k = 0`` is the plain
generator loss. The unrolled updates start from a fresh state of the given
optimizer (an approximation of the paper's, which reuses the critic's Adam
moments).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Tuple

import jax
import jax.numpy as jnp
import optax

PyTree = Any
Metrics = Dict[str, jax.Array]


def feature_matching_loss(real_features: jax.Array, fake_features: jax.Array) -> jax.Array:
    """``|| mean_i f(x_i) - mean_j f(G(z_j)) ||^2`` for features ``[n, k]`` and ``[m, k]``."""
    diff = jnp.mean(real_features, axis=0) - jnp.mean(fake_features, axis=0)   # [k]
    return jnp.sum(diff ** 2)


def unrolled_gen_loss(critic_loss: Callable, gen_loss: Callable,
                      optimizer: optax.GradientTransformation, unroll_steps: int) -> Callable:
    """The unrolled generator loss of the stateful game protocol (module doc).

    Args:
      critic_loss: ``(critic_params, gen_params, batch, key, game) -> (L_C, (metrics, game'))``
        *without* a stop-gradient at the fakes (``GanGame.critic_loss_through``), so
        that the unrolled updates depend on ``gen_params``.
      gen_loss: ``(gen_params, critic_params, batch, key, game) -> (L_G, metrics)``.
      optimizer: the update rule ``U`` of the unrolled critic steps.
      unroll_steps: ``k >= 0``; 0 returns ``gen_loss`` itself.

    Returns:
      ``(gen_params, critic_params, batch, key, game) -> (L_G(theta_C^k), metrics)``;
      unrolled step ``i`` uses ``fold_in(key, 100 + i)`` and the same batch.
    """
    if isinstance(unroll_steps, bool) or int(unroll_steps) != unroll_steps or unroll_steps < 0:
        raise ValueError(f"unroll_steps must be an integer >= 0, got {unroll_steps!r}")
    if unroll_steps == 0:
        return gen_loss

    def loss(gen_params: PyTree, critic_params: PyTree, batch: Any, key: jax.Array,
             game: PyTree) -> Tuple[jax.Array, Metrics]:
        params, opt_state = critic_params, optimizer.init(critic_params)
        for i in range(unroll_steps):
            # The update is a function of gen_params through L_C's dependence on the fakes.
            grads, (_, game) = jax.grad(critic_loss, has_aux=True)(
                params, gen_params, batch, jax.random.fold_in(key, 100 + i), game)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
        value, metrics = gen_loss(gen_params, params, batch, key, game)
        return value, dict(metrics, unroll_steps=jnp.asarray(unroll_steps, jnp.float32))

    return loss

