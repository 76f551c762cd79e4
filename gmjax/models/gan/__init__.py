"""GANs: the model (``model``), reading a trained run (``loading``) and its latent EBM.

``build_gan(config.model, data_shape)`` makes the networks (``dcgan`` for
images, ``mlp`` for the 2-D mixtures of ``mixtures``) and ``GAN.game`` their
game; ``track_ema`` averages the generator's weights; ``load_gan(workdir)``
reads a trained run back; and ``latent_ebm_target(workdir)`` turns it into the
latent energy-based target p(z) ∝ N(z; 0, I) exp(d(G(z))) that TemperFlow
samples.
"""

from gmjax.models.gan.ema import ema_params, track_ema
from gmjax.models.gan.latent_ebm import latent_ebm_from_gan, latent_ebm_target
from gmjax.models.gan.loading import GANWorkdirError, TrainedGAN, load_gan, train_hint
from gmjax.models.gan.mixtures import MODE_MIXTURES, sample_mixture, sample_mixture_modes
from gmjax.models.gan.model import (DATA_CLASSES, DATA_SHAPES, GAN, GAN_NETS, IMAGE_SHAPES,
                                    REMEDIES, build_gan, game_options, to_model_space,
                                    to_unit_range)

__all__ = ["DATA_CLASSES", "DATA_SHAPES", "GAN", "GAN_NETS", "GANWorkdirError", "IMAGE_SHAPES",
           "MODE_MIXTURES", "REMEDIES", "TrainedGAN", "build_gan", "ema_params", "game_options",
           "latent_ebm_from_gan", "latent_ebm_target", "load_gan", "sample_mixture",
           "sample_mixture_modes", "to_model_space", "to_unit_range", "track_ema", "train_hint"]
