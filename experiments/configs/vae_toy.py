"""A VAE with a 2-D latent and a Gaussian decoder on a toy 2-D density (default: moons).

    python experiments/vae.py --config experiments/configs/vae_toy.py \
        --workdir runs/vae_moons

The decoder's variance is learned (one standard deviation per coordinate).
"""

import ml_collections

from experiments.configs.vae_mnist import vae_image_config


def get_config() -> ml_collections.ConfigDict:
    config = vae_image_config()
    config.data.name = "moons"
    config.data.num_train = 20_000
    config.data.num_test = 5_000
    config.data.batch_size = 256
    config.train.steps = 5_000
    config.train.log_every = 100
    config.train.eval_every = 1_000
    config.train.checkpoint_every = 1_000
    config.model.hidden = (64, 64)
    config.model.activation = "relu"
    config.model.latent_dim = 2
    config.model.context_dim = 8
    config.model.likelihood = "gaussian"
    config.model.variance = "learned"
    config.model.scale = 0.1
    config.objective.binarize = "none"
    config.eval.is_samples = 1_000
    return config
