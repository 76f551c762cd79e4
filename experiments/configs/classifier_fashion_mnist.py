"""The Fashion-MNIST feature network: a LeNet trained on the 60,000 training images.

    python experiments/classifier.py --config experiments/configs/classifier_fashion_mnist.py \
        --workdir runs/classifier_fashion_mnist

Accuracy is reported on the 10,000 test images. Fashion-MNIST items are
centred and their position carries little noise, so no shift augmentation
is used.
"""

import ml_collections

from experiments.configs import classifier_mnist


def get_config() -> ml_collections.ConfigDict:
    config = classifier_mnist.get_config()
    config.data.name = "fashion_mnist"
    config.data.train_split = "train"
    config.data.test_split = "test"
    config.train.steps = 2_000
    config.train.eval_every = 500
    config.train.checkpoint_every = 500
    config.augment.max_shift = 0
    return config
