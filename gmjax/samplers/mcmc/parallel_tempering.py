"""Parallel tempering / replica exchange on BlackJAX kernels.

Swendsen and Wang, 1986, "Replica Monte Carlo simulation of spin-glasses",
PRL 57; Geyer, 1991, "Markov chain Monte Carlo maximum likelihood"; Earl and
Deem, 2005, "Parallel tempering: theory, applications, and new perspectives",
PCCP 7. Every chain carries one replica per level of an inverse-temperature
ladder; each replica moves under a random-walk or HMC kernel on p^{beta_k}
and neighbouring levels swap replicas (`replica_exchange`).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from gmjax.samplers.mcmc.base import MCMC_SAMPLERS, LogProb, SamplingAlgorithm
from gmjax.samplers.mcmc.hmc import (DEFAULT_HMC_STEP_SIZE, DEFAULT_NUM_INTEGRATION_STEPS,
                                     check_hmc_options, hmc_move)
from gmjax.samplers.mcmc.ladder import check_ladder, geometric_ladder
from gmjax.samplers.mcmc.options import positive_array, positive_int
from gmjax.samplers.mcmc.random_walk import DEFAULT_MH_STEP_SIZE, random_walk_move
from gmjax.samplers.mcmc.replica_exchange import replica_exchange, retemper


class PTState(NamedTuple):
    """One parallel-tempering chain.

    ``levels`` is the base kernel's state (``RWState`` or ``HMCState``) with a
    leading level axis: ``levels.position`` is [K, d], level K - 1 being
    beta = 1. ``iteration`` counts the steps taken, which times the swap rounds.
    """

    levels: Any
    iteration: jax.Array  # [] int32


class PTInfo(NamedTuple):
    """What one parallel-tempering step reports."""

    acceptance_rate: jax.Array  # [] acceptance probability of the beta = 1 level's move
    level_acceptance_rate: jax.Array  # [K] the same for every level
    swaps_accepted: jax.Array  # [] sum of min(1, r) over the swaps proposed this step
    swaps_proposed: jax.Array  # [] number of swaps proposed this step (0 between swap rounds)


@MCMC_SAMPLERS.register("pt")
def parallel_tempering(
    log_prob: LogProb,
    *,
    betas: Optional[Any] = None,
    step_size: Optional[Any] = None,
    swap_every: int = 1,
    kernel: str = "mh",
    num_integration_steps: int = DEFAULT_NUM_INTEGRATION_STEPS,
    inverse_mass_matrix: Optional[Any] = None,
) -> SamplingAlgorithm:
    """Parallel tempering (replica exchange) on BlackJAX kernels.

    Every chain carries K replicas x_0, ..., x_{K-1}, one per inverse
    temperature of the increasing ladder ``betas`` (beta_{K-1} = 1; default
    `geometric_ladder`(0.05, 10)). One step:

    1. every replica makes one move of the base ``kernel`` ("mh" or "hmc")
       targeting p^{beta_k}, i.e. log density beta_k log p (the kernel is
       vmapped over levels with per-level beta and step size);
    2. every ``swap_every``-th step, one round of swaps between neighbouring
       levels (`replica_exchange`): the even pairs on even rounds and the odd
       pairs on odd rounds, accepted with probability
       min(1, exp((beta_i - beta_j)(log p(x_j) - log p(x_i)))).

    Both moves leave prod_k p^{beta_k}(x_k) invariant, so the beta = 1
    replica, the only one kept as a sample, targets p. The hot levels cross
    between modes and swaps carry those crossings down to beta = 1.

    ``step_size``: a scalar s is scaled per level as s / sqrt(beta_k) (p^beta
    is about 1/sqrt(beta) wider than p near a Gaussian mode); a [K] array is
    used as is; by default s is the base kernel's default (0.5 for mh, 0.1
    for hmc). ``num_integration_steps`` and ``inverse_mass_matrix`` are for
    ``kernel="hmc"`` and shared by all levels.

    Returns:
      A `SamplingAlgorithm` with state `PTState` and info `PTInfo`; its
      position is the beta = 1 replica.
    """
    betas_np = check_ladder(geometric_ladder() if betas is None else betas)
    num_levels = betas_np.shape[0]
    swap_every = positive_int(swap_every, "swap_every")
    if kernel == "mh":
        if inverse_mass_matrix is not None:
            raise ValueError("inverse_mass_matrix is an option of kernel='hmc', not 'mh'")
        default_step = DEFAULT_MH_STEP_SIZE
        move = random_walk_move(log_prob)
    elif kernel == "hmc":
        default_step = DEFAULT_HMC_STEP_SIZE
        move = hmc_move(log_prob, *check_hmc_options(num_integration_steps, inverse_mass_matrix))
    else:
        raise ValueError(f"unknown pt base kernel {kernel!r}; valid choices: hmc, mh")
    step_np = positive_array(default_step if step_size is None else step_size, "step_size")
    if step_np.ndim == 0:
        step_np = step_np / np.sqrt(betas_np)
    elif step_np.shape != (num_levels,):
        raise ValueError(
            f"pt step_size must be a scalar or one per level ({num_levels}), got shape "
            f"{step_np.shape}"
        )
    dtype = jnp.result_type(float)
    betas_arr = jnp.asarray(betas_np, dtype=dtype)  # [K]
    steps_arr = jnp.asarray(step_np, dtype=dtype)  # [K]

    def init(position: jax.Array) -> PTState:  # [d] -> levels [K, ...]
        positions = jnp.broadcast_to(position, (num_levels,) + position.shape)
        return PTState(jax.vmap(move.init)(positions, betas_arr), jnp.zeros((), jnp.int32))

    def step(key: jax.Array, state: PTState) -> Tuple[PTState, PTInfo]:
        key_move, key_swap = jax.random.split(key)
        keys = jax.random.split(key_move, num_levels)
        levels, info = jax.vmap(move.step)(keys, state.levels, betas_arr, steps_arr)
        # Swap rounds follow steps t = swap_every - 1, 2 swap_every - 1, ... (0-based).
        t = state.iteration
        do_swap = (t + 1) % swap_every == 0
        swap_round = (t + 1) // swap_every - 1
        log_probs = levels.logdensity / betas_arr  # [K] untempered log p
        perm, accept_prob, proposed = replica_exchange(
            key_swap, betas_arr, log_probs, swap_round % 2
        )
        perm = jnp.where(do_swap, perm, jnp.arange(num_levels))
        proposed = proposed & do_swap
        levels = retemper(levels, betas_arr, perm)
        acceptance = info.acceptance_rate  # [K]
        return PTState(levels, t + 1), PTInfo(
            acceptance_rate=acceptance[-1],
            level_acceptance_rate=acceptance,
            swaps_accepted=jnp.sum(jnp.where(proposed, accept_prob, 0.0)),
            swaps_proposed=jnp.sum(proposed).astype(accept_prob.dtype),
        )

    return SamplingAlgorithm(init, step, lambda state: state.levels.position[-1], has_swaps=True)
