"""GANs: the model (``model``), reading a trained run (``loading``) and its latent EBM.

``build_gan(config.model, image_shape)`` makes the networks and their game
losses; ``load_gan(workdir)`` reads a trained run back; and
``latent_ebm_target(workdir)`` turns it into the latent energy-based target
p(z) ∝ N(z; 0, I) exp(d(G(z))) that TemperFlow samples.
"""

from gmjax.models.gan.latent_ebm import latent_ebm_from_gan, latent_ebm_target
from gmjax.models.gan.loading import GANWorkdirError, TrainedGAN, load_gan, train_hint
from gmjax.models.gan.model import (GAN, GAN_NETS, IMAGE_SHAPES, build_gan, to_model_space,
                                    to_unit_range)

__all__ = ["GAN", "GAN_NETS", "GANWorkdirError", "IMAGE_SHAPES", "TrainedGAN", "build_gan",
           "latent_ebm_from_gan", "latent_ebm_target", "load_gan", "to_model_space",
           "to_unit_range", "train_hint"]
