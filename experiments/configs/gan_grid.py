"""A GAN on the 25-mode grid ({-4, -2, 0, 2, 4}^2, sd 0.05) of PacGAN, scored by mode coverage.

    python experiments/gan.py --config experiments/configs/gan_grid.py --workdir runs/gan_grid

The ring's GAN (``gan_ring.gan_config``) on the grid, trained longer. PacGAN
reports 17.3 modes / 94.8% high-quality samples for the plain GAN and 24.8 /
93.6% for PacGAN4 on this grid (Lin et al., 2018, Table 1):
``--config.model.remedy=pacgan --config.model.pack=4``.
"""

import ml_collections

from experiments.configs.gan_ring import gan_config


def get_config() -> ml_collections.ConfigDict:
    config = gan_config("grid")
    config.train.steps = 6_000
    config.train.eval_every = 1_000
    config.train.checkpoint_every = 1_000
    return config
