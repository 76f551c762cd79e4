"""A feature network for sklearn's 8x8 digits: seconds to train, used by the tests.

    python experiments/classifier.py --config experiments/configs/classifier_digits.py \
        --workdir runs/classifier_digits

Trains on the 1,437 ``train`` images and reports accuracy on the 360 ``test``
images (see ``gmjax.data.digits`` for the split).
"""

import ml_collections

from experiments.configs import classifier_mnist


def get_config() -> ml_collections.ConfigDict:
    config = classifier_mnist.get_config()
    config.data.name = "digits"
    config.data.train_split = "train"
    config.data.test_split = "test"
    config.data.batch_size = 64
    config.train.steps = 600
    config.train.log_every = 100
    config.train.eval_every = 200
    config.train.checkpoint_every = 200
    config.optim.lr = 5e-3
    config.model.kernel_size = 3
    config.augment.max_shift = 1
    return config
