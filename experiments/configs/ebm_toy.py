"""An energy-based model on a toy 2-D density (default: 8gaussians), by contrastive divergence.

    python experiments/ebm.py --config experiments/configs/ebm_toy.py \
        --workdir runs/ebm_8gaussians
    python experiments/ebm.py --config experiments/configs/ebm_toy.py \
        --workdir runs/ebm_rings --config.data.name=rings

Negatives: 20 Langevin steps (unadjusted: noise_scale = sqrt(step_size)) from a replay
buffer of 10,000 points with 5% fresh starts (Du and Mordatch, 2019).
"""

import ml_collections

from experiments.configs.common import base_config


def get_config() -> ml_collections.ConfigDict:
    config = base_config()
    config.data.name = "8gaussians"
    config.data.batch_size = 256
    config.data.num_train = 20_000
    config.data.num_test = 5_000
    config.train.steps = 3_000
    config.train.log_every = 100
    config.train.eval_every = 500
    config.train.checkpoint_every = 500
    config.optim.lr = 1e-3

    config.model = ml_collections.ConfigDict()
    config.model.net = "mlp"            # or "conv" (images)
    config.model.hidden = (128, 128)    # mlp
    config.model.channels = (16, 32, 64)  # conv
    config.model.activation = "swish"
    # E(x) = f(x) + |x|^2 / (2 base_scale^2): exp(-E) integrable for every theta (0: off).
    config.model.base_scale = 4.0

    config.objective = ml_collections.ConfigDict()
    config.objective.alpha = 0.1        # alpha (E(x)^2 + E(x~)^2), Du and Mordatch Sec. 3.3

    config.langevin = ml_collections.ConfigDict()
    config.langevin.steps = 20          # K per training step
    config.langevin.step_size = 0.01    # eps in x - (eps / 2) grad E + sigma z
    config.langevin.noise_scale = 0.1   # sigma; sqrt(eps) is the unadjusted Langevin algorithm
    config.langevin.grad_clip = 0.0     # per-coordinate bound on grad E; 0: none

    config.buffer = ml_collections.ConfigDict()
    config.buffer.size = 10_000
    config.buffer.reinit_prob = 0.05    # a chain starts from noise with this probability
    config.buffer.low = -4.0            # the noise box [low, high)^2
    config.buffer.high = 4.0

    config.eval = ml_collections.ConfigDict()
    config.eval.num_samples = 5_000     # fresh Langevin chains from the noise box ...
    config.eval.langevin_steps = 500    # ... run this many steps
    config.eval.grid_resolution = 400   # log Z: a Riemann sum on this many points a side
    return config
