"""Hamiltonian Monte Carlo (Duane et al., 1987; Neal, 2011), on BlackJAX.

Momentum r ~ N(0, M), ``num_integration_steps`` leapfrog steps of size
``step_size`` on H(x, r) = -log p(x) + r^T M^{-1} r / 2, accepted with
probability min(1, exp(H(x, r) - H(x', r'))) (``blackjax.hmc``). The step size
and path length are fixed (no adaptation); ``inverse_mass_matrix`` M^{-1} is
[d] (diagonal) or [d, d], the identity by default.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional, Tuple

import blackjax
import jax
import jax.numpy as jnp
from blackjax.mcmc.hmc import HMCState

from gmjax.samplers.mcmc.base import (MCMC_SAMPLERS, LogProb, SamplingAlgorithm, TemperedMove,
                                      single_chain, tempered)
from gmjax.samplers.mcmc.options import positive_array, positive_int

DEFAULT_HMC_STEP_SIZE = 0.1
DEFAULT_NUM_INTEGRATION_STEPS = 10


class HMCInfo(NamedTuple):
    """What one HMC step reports."""

    acceptance_rate: jax.Array  # [] min(1, exp(H(x, r) - H(x', r')))
    is_accepted: jax.Array  # [] bool
    is_divergent: jax.Array  # [] bool: the energy error exceeded BlackJAX's divergence threshold


def check_hmc_options(num_integration_steps: Any, inverse_mass_matrix: Any
                      ) -> Tuple[int, Optional[jax.Array]]:
    """``(num_integration_steps, inverse_mass_matrix)`` checked; the matrix as a float array."""
    num_integration_steps = positive_int(num_integration_steps, "num_integration_steps")
    if inverse_mass_matrix is not None:
        inverse_mass_matrix = jnp.asarray(inverse_mass_matrix, dtype=jnp.result_type(float))
        if inverse_mass_matrix.ndim == 1:
            positive_array(inverse_mass_matrix, "inverse_mass_matrix")
        elif inverse_mass_matrix.ndim != 2:
            raise ValueError(
                "inverse_mass_matrix must be [d] (diagonal) or [d, d], got shape "
                f"{inverse_mass_matrix.shape}"
            )
    return num_integration_steps, inverse_mass_matrix


def hmc_move(log_prob: LogProb, num_integration_steps: int,
             inverse_mass_matrix: Optional[jax.Array]) -> TemperedMove:
    """HMC on p^beta with the velocity Verlet (leapfrog) integrator."""
    kernel = blackjax.hmc.build_kernel()

    def init(position: jax.Array, beta: jax.Array) -> HMCState:
        return blackjax.hmc.init(position, tempered(log_prob, beta))

    def step(key: jax.Array, state: HMCState, beta: jax.Array, step_size: jax.Array
             ) -> Tuple[HMCState, HMCInfo]:
        metric = (jnp.ones_like(state.position) if inverse_mass_matrix is None
                  else inverse_mass_matrix)
        state, info = kernel(key, state, tempered(log_prob, beta), step_size, metric,
                             num_integration_steps)
        return state, HMCInfo(info.acceptance_rate, info.is_accepted, info.is_divergent)

    return TemperedMove(init, step)


@MCMC_SAMPLERS.register("hmc")
def hamiltonian_monte_carlo(
    log_prob: LogProb,
    *,
    step_size: float = DEFAULT_HMC_STEP_SIZE,
    num_integration_steps: int = DEFAULT_NUM_INTEGRATION_STEPS,
    inverse_mass_matrix: Optional[Any] = None,
) -> SamplingAlgorithm:
    """HMC with a fixed step size and number of leapfrog steps (no adaptation).

    ``inverse_mass_matrix`` is [d] (diagonal) or [d, d]; identity by default.
    """
    step_size = positive_array(step_size, "step_size")
    if step_size.ndim != 0:
        raise ValueError(f"hmc step_size must be a scalar, got shape {step_size.shape}")
    move = hmc_move(log_prob, *check_hmc_options(num_integration_steps, inverse_mass_matrix))
    return single_chain(move, step_size)
