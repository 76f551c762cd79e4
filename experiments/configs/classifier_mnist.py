"""The MNIST feature network: a LeNet for FID-style metrics on MNIST samples.

    python experiments/classifier.py --config experiments/configs/classifier_mnist.py \
        --workdir runs/classifier_mnist

Only the real MNIST *test* set (10,000 images) is on this machine, so the
classifier trains on its first 8,000 images (``test[:8000]``) and reports
accuracy on the other 2,000 (``test[8000:]``), which it never sees. The
test set's first 5,000 images come from NIST's original training set and are
cleaner and easier than the last 5,000 (from NIST's test set), so the
held-out part is of the harder kind.
Pass ``--config.data.train_split=train --config.data.test_split=test`` with
``--config.data.data_dir`` pointing at the full MNIST to train the usual way.
"""

import ml_collections

from experiments.configs.common import base_config


def get_config() -> ml_collections.ConfigDict:
    config = base_config()
    config.data.name = "mnist"
    config.data.train_split = "test[:8000]"
    config.data.test_split = "test[8000:]"
    config.data.batch_size = 128
    config.train.steps = 1_200
    config.train.log_every = 100
    config.train.eval_every = 400
    config.train.checkpoint_every = 400
    config.optim.lr = 2e-3
    config.optim.schedule = "cosine"

    config.model = ml_collections.ConfigDict()
    config.model.name = "lenet"
    config.model.num_classes = 10
    config.model.channels = (16, 32)
    config.model.kernel_size = 5
    config.model.feature_dim = 128
    config.model.dropout_rate = 0.0

    config.augment = ml_collections.ConfigDict()
    config.augment.max_shift = 2  # random translations of up to 2 pixels (0: none)
    return config
