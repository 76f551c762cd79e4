"""A DDPM with a U-Net on MNIST, bits/dim (bound) on held-out images.

    python experiments/diffusion.py --config experiments/configs/diffusion_mnist.py \
        --workdir runs/ddpm_mnist

Only the real MNIST *test* set (10,000 images) is on this machine, so the
model trains on ``test[:8000]`` and is evaluated on ``test[8000:]``; the
numbers are therefore not comparable with published MNIST results. Pass
``--config.data.data_dir`` holding the full IDX files and
``--config.data.train_split=train --config.data.test_split=test`` for the
standard protocol, and ``--config.eval.feature_network=runs/classifier_mnist``
(``experiments/configs/classifier_mnist.py``) for the Fréchet distance.
"""

import ml_collections

from experiments.configs.diffusion_fashion_mnist import diffusion_image_config


def get_config() -> ml_collections.ConfigDict:
    config = diffusion_image_config()
    config.data.name = "mnist"
    config.data.train_split = "test[:8000]"
    config.data.test_split = "test[8000:]"
    config.train.steps = 20_000
    return config
