"""Continuous-time flows on a toy 2-D density (default: flow matching on 8 gaussians).

    python experiments/cnf.py --config experiments/configs/cnf_toy.py --workdir runs/cnf_fm
    python experiments/cnf.py --config experiments/configs/cnf_toy.py --workdir runs/ffjord \
        --config.model.name=ffjord --config.model.kinetic=0.01 --config.model.jacobian=0.01
    python experiments/cnf.py --config experiments/configs/cnf_toy.py --workdir runs/otflow \
        --config.model.name=otflow
"""

import ml_collections

from experiments.configs.common import base_config


def get_config() -> ml_collections.ConfigDict:
    config = base_config()
    config.data.name = "8gaussians"
    config.data.batch_size = 512
    config.data.num_train = 50_000
    config.data.num_test = 10_000
    config.train.steps = 4_000
    config.train.eval_every = 1_000
    config.optim.lr = 2e-3
    config.optim.schedule = "cosine"

    config.model = ml_collections.ConfigDict()
    config.model.name = "flow_matching"  # ffjord | otflow | flow_matching
    # ffjord and flow_matching: the TimeMLP velocity field v(x, t).
    config.model.hidden = (128, 128, 128)
    config.model.embed_dim = 32
    # ffjord: the training solve (fixed-step solvers take num_steps steps; otflow's RK4 too).
    config.model.solver = "rk4"
    config.model.num_steps = 10
    config.model.rtol = 1e-4          # adaptive training solvers (rtol = atol)
    config.model.trace = "exact"      # ffjord: exact | hutchinson
    config.model.kinetic = 0.0        # ffjord: RNODE weight of int ||v||^2 dt
    config.model.jacobian = 0.0       # ffjord: RNODE weight of int ||dv/dx||_F^2 dt
    # otflow: potential ResNet width and depth, quadratic rank (0: min(10, d + 1)), cost weights.
    config.model.width = 64
    config.model.num_layers = 1
    config.model.rank = 0
    config.model.transport = 0.01     # weight of the transport cost L
    config.model.hjb = 0.05           # weight of the HJB penalty R
    # flow_matching: probability path and coupling (gmjax.objectives.flow_matching).
    config.model.path = "ot"
    config.model.coupling = "independent"
    config.model.sigma_min = 0.0

    config.eval = ml_collections.ConfigDict()
    # ffjord and flow_matching are evaluated (NLL, samples) with this solve; otflow with its
    # own RK4 (model.num_steps).
    config.eval.solver = "dopri5"
    config.eval.tol = 1e-5            # rtol = atol of an adaptive evaluation solver
    config.eval.num_steps = 100       # a fixed-step evaluation solver
    config.eval.trace = "exact"       # exact | hutchinson (the test NLL's divergence)
    config.eval.num_samples = 5_000   # model samples: two-sample metrics, timing
    config.eval.panels = 5            # trajectories.png: times from base (t=0) to data
    config.eval.density = True        # 2-D: density.png and the density's grid integral
    return config
