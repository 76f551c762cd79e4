"""The fields every experiment config shares (see DESIGN.md, the experiment contract).

A family config starts from ``base_config()`` and adds its ``model`` block and
anything else it needs; every field can be overridden from the command line
with ``--config.<field>=<value>``. A script that has no use for one of these
fields declares it unread, and refuses a change to it
(``gmjax.experiment.contract``).
"""

import ml_collections


def base_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.seed = 0

    config.data = ml_collections.ConfigDict()
    config.data.name = "8gaussians"
    config.data.batch_size = 256
    config.data.data_dir = ""        # IDX / tfds directory for image data sets
    config.data.num_train = 50_000   # toy densities: training points drawn once
    config.data.num_test = 10_000    # toy densities: fixed test points

    config.train = ml_collections.ConfigDict()
    config.train.steps = 5_000
    config.train.log_every = 100
    config.train.eval_every = 1_000
    config.train.checkpoint_every = 1_000
    config.train.keep_checkpoints = 3
    config.train.steps_per_call = 1  # updates scanned inside one compiled call
    config.train.num_devices = 0     # 0: every local device

    config.optim = ml_collections.ConfigDict()
    config.optim.name = "adam"
    config.optim.lr = 1e-3
    config.optim.schedule = "constant"
    config.optim.warmup_steps = 0
    config.optim.grad_clip = 0.0      # global-norm clipping; 0 turns it off
    config.optim.weight_decay = 0.0
    config.optim.b1 = 0.9
    config.optim.b2 = 0.999
    config.optim.eps = 1e-8
    config.optim.momentum = 0.0
    config.optim.accumulate_steps = 1  # gradient accumulation (optax.MultiSteps)
    return config
