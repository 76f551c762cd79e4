"""TemperFlow on an energy-based model learned from 8gaussians: p(x) ∝ exp(-E_theta(x)).

Train the energy first (experiments/scripts/ebm_temperflow.sh does both):

    python experiments/ebm.py --config experiments/configs/ebm_toy.py \
        --workdir runs/ebm_8gaussians
    python experiments/temperflow.py --config experiments/configs/temperflow_ebm.py \
        --workdir runs/temperflow_ebm --config.data.options.workdir=runs/ebm_8gaussians

The target has no exact sampler, so metrics.json holds the mode metrics against the
data's eight components (the learned modes sit near them) and no adjusted W1 / MMD;
samples.png draws the sampler's points over the contours of exp(-E).
``--config.method=mh`` / ``hmc`` / ``pt`` runs the MCMC baselines on the same energy.
"""

import ml_collections

from experiments.configs import temperflow_2d


def get_config() -> ml_collections.ConfigDict:
    config = temperflow_2d.get_config()
    config.data.name = "learned_ebm"
    config.data.options = ml_collections.ConfigDict()
    config.data.options.workdir = "runs/ebm_8gaussians"  # an experiments/ebm.py workdir
    return config
