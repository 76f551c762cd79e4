"""TemperFlow on the latent energy of a DCGAN trained on Fashion-MNIST (Qiu and Wang, 2024).

E(z) = -log N(z; 0, I) - D(G(z)). Train the GAN first:

    python experiments/gan.py --config experiments/configs/gan_fashion_mnist.py \
        --workdir runs/gan_fashion_z2 --config.model.latent_dim=2
    python experiments/temperflow.py --config experiments/configs/temperflow_latent.py \
        --workdir runs/temperflow_latent_z2 --config.data.gan_workdir=runs/gan_fashion_z2
"""

import ml_collections

from experiments.configs import temperflow_2d


def get_config() -> ml_collections.ConfigDict:
    config = temperflow_2d.get_config()
    config.data.name = "latent_ebm"
    config.data.gan_workdir = "runs/gan_fashion_z2"
    config.model.bound = 6.0
    # The schedule the latent results were measured with (docs/temperflow.md).
    config.sampler.kl_decay = 0.8
    config.sampler.steps_init = 1000
    config.sampler.steps_final = 500
    return config
