"""A VAE (or IWAE) on dynamically binarized Fashion-MNIST (60,000 train / 10,000 test).

    python experiments/vae.py --config experiments/configs/vae_fashion_mnist.py \
        --workdir runs/vae_fashion_mnist
    python experiments/vae.py --config experiments/configs/vae_fashion_mnist.py \
        --workdir runs/iwae5_fashion_mnist --config.objective.name=iwae \
        --config.objective.num_samples=5
"""

import ml_collections

from experiments.configs.vae_mnist import vae_image_config


def get_config() -> ml_collections.ConfigDict:
    config = vae_image_config()
    config.data.name = "fashion_mnist"
    config.data.train_split = "train"
    config.data.test_split = "test"
    return config
