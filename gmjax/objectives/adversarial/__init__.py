"""Adversarial objectives: GAN losses, penalties, stabilizers and the game that combines them.

  ``losses``       ``AdversarialLoss``, ``GAN_LOSSES``: minimax, non_saturating,
                   wgan, wgan_gp, lsgan, dragan, hinge, began, mmd (pure
                   functions of critic outputs);
  ``fgan``         f-GAN (``fgan_kl``, ``fgan_reverse_kl``, ``fgan_js``,
                   ``fgan_pearson``, ``fgan_hellinger``) and ``F_DIVERGENCES``;
  ``penalties``    ``PENALTIES``: gp, dragan, r1, r2 (and none);
  ``remedies``     feature matching and the unrolled GAN (minibatch
                   discrimination and PacGAN are critic layers, ``gmjax.nets.gan_mlp``);
  ``stabilizers``  weight clipping (an optax transformation), instance noise,
                   consensus optimization (a game-loss transformation);
  ``game``         ``GanConfig`` / ``make_gan_game`` (config strings -> the two
                   game losses of ``make_minmax_step``), ``make_gan_losses``
                   (the stateless subset, as plain 4-argument game losses).
"""

from gmjax.objectives.adversarial.fgan import (F_DIVERGENCES, FDivergence, f_divergence,
                                               fgan_loss)
from gmjax.objectives.adversarial.game import (SPECTRAL_COLLECTION, GameLoss, GanConfig,
                                               GanGame, make_gan_game, make_gan_losses,
                                               sample_latent)
from gmjax.objectives.adversarial.losses import (
    GAN_LOSSES, MMD_BANDWIDTHS, OUTPUTS, AdversarialLoss, began_balance, began_convergence,
    began_critic_loss, began_generator_loss, began_loss, discriminator_loss,
    hinge_critic_loss, hinge_generator_loss, least_squares_critic_loss,
    least_squares_generator_loss, minimax_generator_loss, mmd2_rbf_mixture, mmd_loss,
    non_saturating_generator_loss, wasserstein_critic_loss, wasserstein_generator_loss)
from gmjax.objectives.adversarial.penalties import (PENALTIES, Penalty, dragan_penalty,
                                                    gradient_penalty, input_gradients,
                                                    make_penalty, r1_penalty, r2_penalty)
from gmjax.objectives.adversarial.remedies import feature_matching_loss, unrolled_gen_loss
from gmjax.objectives.adversarial.stabilizers import (add_instance_noise, clip_weights,
                                                      consensus_losses, instance_noise_scale)

__all__ = [
    "AdversarialLoss", "F_DIVERGENCES", "FDivergence", "GAN_LOSSES", "GameLoss", "GanConfig",
    "GanGame", "MMD_BANDWIDTHS", "OUTPUTS", "PENALTIES", "Penalty", "SPECTRAL_COLLECTION",
    "add_instance_noise", "began_balance", "began_convergence", "began_critic_loss",
    "began_generator_loss", "began_loss", "clip_weights", "consensus_losses",
    "discriminator_loss", "dragan_penalty", "f_divergence", "feature_matching_loss",
    "fgan_loss", "gradient_penalty",
    "hinge_critic_loss", "hinge_generator_loss", "input_gradients", "instance_noise_scale",
    "least_squares_critic_loss", "least_squares_generator_loss", "make_gan_game",
    "make_gan_losses", "make_penalty", "minimax_generator_loss", "mmd2_rbf_mixture",
    "mmd_loss", "non_saturating_generator_loss", "r1_penalty", "r2_penalty", "sample_latent",
    "unrolled_gen_loss", "wasserstein_critic_loss", "wasserstein_generator_loss",
]
