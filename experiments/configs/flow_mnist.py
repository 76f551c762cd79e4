"""Glow on MNIST, bits/dim on held-out images (a few CPU minutes at the defaults).

    python experiments/flow_images.py --config experiments/configs/flow_mnist.py \
        --workdir runs/flow_mnist

Only the real MNIST *test* set (10,000 images) is on this machine, so the
model trains on ``test[:8000]`` and reports bits/dim on ``test[8000:]``; the
number is therefore not comparable with published MNIST results (trained on
the 60,000 training images). Pass ``--config.data.data_dir`` holding the full
IDX files and ``--config.data.train_split=train --config.data.test_split=test``
for the standard protocol.
"""

import ml_collections

from experiments.configs.common import base_config


def image_flow_config() -> ml_collections.ConfigDict:
    """Fields shared by the image-flow configs (see ``experiments/flow_images.py``)."""
    config = base_config()
    del config.data["num_train"], config.data["num_test"]  # toy-density fields
    config.data.batch_size = 64
    config.data.train_split = "train"
    config.data.test_split = "test"
    config.data.preprocess = "logit"  # "logit" (log-det counted) or "none" (u - 1/2)
    config.data.logit_alpha = 0.05

    config.train.steps = 2_000
    config.train.log_every = 100
    config.train.eval_every = 2_000
    config.train.checkpoint_every = 1_000

    config.optim.lr = 1e-3
    config.optim.schedule = "warmup_cosine"
    config.optim.warmup_steps = 100
    config.optim.grad_clip = 100.0

    config.model = ml_collections.ConfigDict()
    config.model.name = "glow"        # or "realnvp_image"
    config.model.levels = 2
    config.model.steps_per_level = 4
    config.model.width = 32
    config.model.actnorm = True       # realnvp_image: ActNorm before every coupling (Glow: always)
    config.model.init_batch = 256     # images ActNorm's data-dependent init sees

    config.eval = ml_collections.ConfigDict()
    config.eval.batch_size = 500
    config.eval.temperature = 0.7     # of the sample grid (Glow's T); 1.0 is the model itself
    return config


def get_config() -> ml_collections.ConfigDict:
    config = image_flow_config()
    config.data.name = "mnist"
    config.data.train_split = "test[:8000]"
    config.data.test_split = "test[8000:]"
    return config
