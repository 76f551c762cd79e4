"""Glow on Fashion-MNIST (60,000 training / 10,000 test images), bits/dim on the test set.

    python experiments/flow_images.py --config experiments/configs/flow_fashion_mnist.py \
        --workdir runs/flow_fashion_mnist
"""

import ml_collections

from experiments.configs.flow_mnist import image_flow_config


def get_config() -> ml_collections.ConfigDict:
    config = image_flow_config()
    config.data.name = "fashion_mnist"
    config.data.train_split = "train"
    config.data.test_split = "test"
    return config
