"""TemperFlow (or a baseline) on the Clayton-copula target with 256 modes (p = 8 ... 64).

    python experiments/temperflow.py --config experiments/configs/temperflow_clayton.py \
        --workdir runs/temperflow_clayton8 --config.data.dim=8
"""

import ml_collections

from experiments.configs import temperflow_2d


def get_config() -> ml_collections.ConfigDict:
    config = temperflow_2d.get_config()
    config.data.name = "clayton"
    config.data.dim = 8
    config.model.name = "spline_autoregressive"
    config.model.num_layers = 4
    config.model.hidden = (64, 64)
    config.model.bound = 6.0
    config.mcmc.step_size = 0.0
    config.mcmc.beta_min = 0.1
    config.eval.num_samples = 20_000  # the 256 sign patterns are counted in 20,000 draws
    return config
