"""Maximum-likelihood RealNVP on a toy 2-D density (default: 8 gaussians).

    python experiments/flow.py --config experiments/configs/flow_toy.py \
        --workdir runs/flow_8gaussians --config.data.name=checkerboard
"""

import ml_collections

from experiments.configs.common import base_config


def get_config() -> ml_collections.ConfigDict:
    config = base_config()
    config.data.name = "8gaussians"
    config.data.batch_size = 512
    # Keyword options of the data set's loader (load_dataset(data.name, **data.options)), for
    # data sets registered with options; the built-in ones take none.
    config.data.options = ml_collections.ConfigDict()
    config.train.steps = 5_000
    config.optim.lr = 1e-3
    config.optim.schedule = "cosine"

    config.model = ml_collections.ConfigDict()
    config.model.name = "realnvp"
    config.model.num_layers = 8
    config.model.hidden = (64, 64)
    config.model.num_bins = 8         # spline flows only
    config.model.bound = 5.0          # spline flows: the spline acts on [-bound, bound]
    config.model.standardize = True   # spline flows: a data-initialized ActNorm before each spline
    config.model.num_components = 8   # model.name=gmm only

    config.eval = ml_collections.ConfigDict()
    config.eval.num_samples = 5_000   # model samples for the two-sample metrics
    return config
