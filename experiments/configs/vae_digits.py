"""A small VAE on sklearn's 8x8 digits, dynamically binarized: a minute on a CPU.

    python experiments/vae.py --config experiments/configs/vae_digits.py \
        --workdir runs/vae_digits
    python experiments/vae.py --config experiments/configs/vae_digits.py \
        --workdir runs/iwae_digits --config.objective.name=iwae \
        --config.objective.num_samples=50 --config.objective.estimator=dreg
    python experiments/vae.py --config experiments/configs/vae_digits.py \
        --workdir runs/vae_digits_2d --config.model.latent_dim=2 --config.eval.manifold=True

Trains on the 1,437 ``train`` images and evaluates on the 360 ``test`` images
(see ``gmjax.data.digits`` for the split).
"""

import ml_collections

from experiments.configs.vae_mnist import vae_image_config


def get_config() -> ml_collections.ConfigDict:
    config = vae_image_config()
    config.data.name = "digits"
    config.data.train_split = "train"
    config.data.test_split = "test"
    config.data.batch_size = 100
    config.train.steps = 5_000
    config.train.log_every = 100
    config.train.eval_every = 1_000
    config.train.checkpoint_every = 1_000
    config.model.hidden = (128, 128)
    config.model.latent_dim = 8
    config.model.context_dim = 8
    config.model.channels = 16
    config.eval.is_samples = 5_000
    return config
