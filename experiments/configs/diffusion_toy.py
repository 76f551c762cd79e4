"""A DDPM (or NCSN, or score SDE) on a toy 2-D density (default: 8 gaussians).

    python experiments/diffusion.py --config experiments/configs/diffusion_toy.py \
        --workdir runs/ddpm_8gaussians
    python experiments/diffusion.py --config experiments/configs/diffusion_toy.py \
        --workdir runs/sde_checkerboard --config.model.family=sde \
        --config.data.name=checkerboard

``model.family`` is ddpm, ncsn or sde; each reads its own block of ``model``
(and of ``eval``) below. The network is a time-conditioned MLP.
"""

import ml_collections

from experiments.configs.common import base_config


def get_config() -> ml_collections.ConfigDict:
    config = base_config()
    config.data.name = "8gaussians"
    config.data.batch_size = 512
    config.data.num_train = 50_000
    config.data.num_test = 10_000
    config.train.steps = 10_000
    config.train.log_every = 100
    config.train.eval_every = 2_000
    config.train.checkpoint_every = 2_000
    config.train.steps_per_call = 50
    config.optim.lr = 2e-3
    config.optim.schedule = "warmup_cosine"
    config.optim.warmup_steps = 200

    config.model = ml_collections.ConfigDict()
    config.model.family = "ddpm"           # ddpm, ncsn or sde
    config.model.parameterization = "eps"  # the net predicts the noise (eps) or the score
    config.model.hidden = (256, 256, 256)  # the time-conditioned MLP
    config.model.embed_dim = 64
    config.model.schedule = "linear"       # ddpm: linear or cosine
    config.model.num_steps = 1_000         # ddpm: T
    config.model.num_levels = 20           # ncsn: geometric noise levels
    config.model.sigma_min = 0.02          # ncsn and the VE SDE
    config.model.sigma_max = 10.0
    config.model.sde = "vp"                # sde: vp or ve
    config.model.beta_min = 0.1            # the VP SDE
    config.model.beta_max = 20.0
    config.model.weighting = "sigma2"      # sde: sigma2 or likelihood
    config.model.t_min = 1e-5              # sde: the smallest training time

    config.eval = ml_collections.ConfigDict()
    config.eval.sampler = "default"        # ddpm: ancestral; ncsn: langevin;
                                           # sde: predictor_corrector (or euler_maruyama, ode)
    config.eval.variance = "beta"          # ancestral sampling (and the bound): beta, beta_tilde
    config.eval.ddim_steps = 50
    config.eval.eta = 0.0
    config.eval.clip_x0 = 0.0              # ddpm samplers: clip x0_hat to [-c, c] (0: never)
    config.eval.langevin_steps = 100       # ncsn: steps per noise level
    config.eval.step_size = 2e-4           # ncsn: Langevin step at the smallest level
    config.eval.sample_steps = 1_000       # sde: reverse-SDE steps
    config.eval.snr = 0.16                 # predictor_corrector
    config.eval.corrector_steps = 1
    config.eval.t_min = 1e-3               # sde: where sampling and likelihood stop
    config.eval.ode_solver = "dopri5"      # the probability-flow ODE (gmjax.flows.ode)
    config.eval.rtol = 1e-5
    config.eval.atol = 1e-5
    config.eval.ode_steps = 100            # fixed-step solvers
    config.eval.num_samples = 5_000        # samples scored against the test points
    config.eval.nll_examples = 5_000       # test points of the likelihood
    config.eval.panels = 6                 # reverse.png: states along the reverse process
    return config
