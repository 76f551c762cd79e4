"""MCMC baselines of TemperFlow: random-walk Metropolis, HMC and parallel tempering.

Qiu and Wang (2024, "Efficient multimodal sampling via tempered distribution
flow", JASA; Table S1 of the supplement) compare TemperFlow with three MCMC
samplers on multimodal targets, all run here on BlackJAX kernels:

* ``"mh"``: random-walk Metropolis (`random_walk`; step size 0.5 by default);
* ``"hmc"``: Hamiltonian Monte Carlo (`hmc`; 10 leapfrog steps of 0.1);
* ``"pt"``: parallel tempering / replica exchange (`parallel_tempering`, on a
  `ladder` of inverse temperatures, swapping by `replica_exchange`), which
  BlackJAX does not have.

Each sampler is ``init(position) -> State`` and a pure ``step(key, state) ->
(state, info)`` (`base.SamplingAlgorithm`); `run_mcmc` (`runner`) drives many
chains of one in a single jitted call, and `effective_sample_size_summary`
(`diagnostics`) summarises the draws::

    result = run_mcmc("pt", target.log_prob, key, init [num_chains, d],
                      num_draws=1000, burn_in=1000, thin=1, betas=geometric_ladder(0.05, 10))
    result.samples  # [num_chains, num_draws, d]
"""

from gmjax.samplers.mcmc.base import (MCMC_SAMPLERS, LogProb, SamplingAlgorithm, TemperedMove,
                                      single_chain, tempered)
from gmjax.samplers.mcmc.diagnostics import effective_sample_size_summary
from gmjax.samplers.mcmc.hmc import (DEFAULT_HMC_STEP_SIZE, DEFAULT_NUM_INTEGRATION_STEPS,
                                     HMCInfo, HMCState, hamiltonian_monte_carlo, hmc_move)
from gmjax.samplers.mcmc.ladder import (DEFAULT_BETA_MIN, DEFAULT_NUM_BETAS, check_ladder,
                                        geometric_ladder)
from gmjax.samplers.mcmc.parallel_tempering import PTInfo, PTState, parallel_tempering
from gmjax.samplers.mcmc.random_walk import (DEFAULT_MH_STEP_SIZE, MHInfo, MHState,
                                             random_walk_metropolis, random_walk_move)
from gmjax.samplers.mcmc.replica_exchange import replica_exchange, retemper, swap_log_acceptance
from gmjax.samplers.mcmc.runner import MCMCResult, build_sampler, run_mcmc

__all__ = [
    "DEFAULT_BETA_MIN",
    "DEFAULT_HMC_STEP_SIZE",
    "DEFAULT_MH_STEP_SIZE",
    "DEFAULT_NUM_BETAS",
    "DEFAULT_NUM_INTEGRATION_STEPS",
    "HMCInfo",
    "HMCState",
    "LogProb",
    "MCMCResult",
    "MCMC_SAMPLERS",
    "MHInfo",
    "MHState",
    "PTInfo",
    "PTState",
    "SamplingAlgorithm",
    "TemperedMove",
    "build_sampler",
    "check_ladder",
    "effective_sample_size_summary",
    "geometric_ladder",
    "hamiltonian_monte_carlo",
    "hmc_move",
    "parallel_tempering",
    "random_walk_metropolis",
    "random_walk_move",
    "replica_exchange",
    "retemper",
    "run_mcmc",
    "single_chain",
    "swap_log_acceptance",
    "tempered",
]
