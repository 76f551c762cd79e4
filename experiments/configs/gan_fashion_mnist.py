"""A small DCGAN on the 60,000 Fashion-MNIST training images.

    python experiments/gan.py --config experiments/configs/gan_fashion_mnist.py \
        --config.model.latent_dim=2 --workdir runs/gan_fashion_z2
    python experiments/gan.py --config experiments/configs/gan_fashion_mnist.py \
        --config.model.latent_dim=32 --workdir runs/gan_fashion_z32

These two runs are the GANs whose latent energy
``E(z) = -log N(z; 0, I) - d(G(z))`` TemperFlow samples
(``gmjax.models.gan.latent_ebm_target(workdir)``; Qiu and Wang, JASA 2024).
Adam with b1 = 0.5 for both players is the DCGAN recipe (Radford et al.,
2016), here at lr 5e-4 rather than 2e-4 to get further in the 5,000 steps a
2-core CPU trains in about 12 minutes. ``optim.critic_lr`` sets the
discriminator's own rate (two timescales, Heusel et al., 2017) and
``train.critic_steps`` the number of discriminator updates per generator
update. Without batch norm (see ``gmjax/nets/dcgan.py``), the generator
trains best here with pixel norm and resize-convolutions: in 1,500-step
trials at latent_dim 2, plain transposed convolutions (with or without
LayerNorm) gave checkerboard textures and blobs, ``norm="pixel"`` with
``upsample="resize"`` recognizable garments.

``--config.eval.feature_network=runs/classifier_fashion_mnist`` (the LeNet of
``experiments/configs/classifier_fashion_mnist.py``) adds the Fréchet
distance and the other feature metrics of ``eval.num_test`` draws against as
many test images, and with ``--config.model.conditional=True`` the share of
draws the classifier puts in their requested class (``class_accuracy``).
"""

import ml_collections

from experiments.configs.gan_ring import gan_config


def get_config() -> ml_collections.ConfigDict:
    config = gan_config("fashion_mnist")
    config.data.train_split = "train"
    config.data.test_split = "test"
    config.data.batch_size = 64

    config.model.name = "dcgan"
    config.model.latent_dim = 2
    config.model.loss = "non_saturating"
    config.model.channels = 32      # c: 2c channels at 7x7, c at 14x14
    config.model.norm = "pixel"     # "pixel" | "layer" | "none" (stateless; no batch norm)
    config.model.upsample = "resize"  # "resize" (nearest x2 + 3x3 conv) | "transpose" (DCGAN)

    config.train.steps = 5_000  # outer steps: critic_steps discriminator + 1 generator update
    config.train.critic_steps = 1
    config.train.ema_decay = 0.0  # the latent EBM reads the trained (not averaged) generator
    config.train.log_every = 100
    config.train.eval_every = 1_000
    config.train.checkpoint_every = 500

    config.optim.lr = 5e-4         # generator
    config.optim.critic_lr = 5e-4  # discriminator
    config.optim.b1 = 0.5

    config.eval.num_test = 2_000   # held-out images the final D(x) / losses are averaged over
    config.eval.batch_size = 500
    config.eval.feature_network = ""  # a classifier workdir on this data; "": no feature metrics
    return config
