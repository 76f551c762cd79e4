"""Random-walk Metropolis (Metropolis et al., 1953; Hastings, 1970), on BlackJAX.

The proposal is y = x + s z, z ~ N(0, I), accepted with probability
min(1, p(y) / p(x)) (``blackjax.additive_step_random_walk`` with a normal
increment). ``step_size`` = s is a scalar or a [d] vector of per-coordinate
scales.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Tuple

import blackjax
import jax
from blackjax.mcmc.random_walk import RWState
from blackjax.mcmc.random_walk import normal as normal_random_step

from gmjax.samplers.mcmc.base import (MCMC_SAMPLERS, LogProb, SamplingAlgorithm, TemperedMove,
                                      single_chain, tempered)
from gmjax.samplers.mcmc.options import positive_array

DEFAULT_MH_STEP_SIZE = 0.5

MHState = RWState  # (position [d], logdensity []): beta * log p(position)


class MHInfo(NamedTuple):
    """What one random-walk step reports."""

    acceptance_rate: jax.Array  # [] min(1, p(y)^beta / p(x)^beta)
    is_accepted: jax.Array  # [] bool


def random_walk_move(log_prob: LogProb) -> TemperedMove:
    """Random-walk Metropolis on p^beta: y = x + s z, z ~ N(0, I)."""
    kernel = blackjax.additive_step_random_walk.build_kernel()

    def init(position: jax.Array, beta: jax.Array) -> MHState:
        return blackjax.additive_step_random_walk.init(position, tempered(log_prob, beta))

    def step(key: jax.Array, state: MHState, beta: jax.Array, step_size: jax.Array
             ) -> Tuple[MHState, MHInfo]:
        state, info = kernel(key, state, tempered(log_prob, beta), normal_random_step(step_size))
        return state, MHInfo(info.acceptance_rate, info.is_accepted)

    return TemperedMove(init, step)


@MCMC_SAMPLERS.register("mh")
def random_walk_metropolis(log_prob: LogProb, *, step_size: Any = DEFAULT_MH_STEP_SIZE
                           ) -> SamplingAlgorithm:
    """Random-walk Metropolis with a N(0, step_size^2 I) increment.

    ``step_size`` is a scalar, or a [d] vector of per-coordinate scales.
    """
    step_size = positive_array(step_size, "step_size")
    if step_size.ndim > 1:
        raise ValueError(f"mh step_size must be a scalar or [d], got shape {step_size.shape}")
    return single_chain(random_walk_move(log_prob), step_size)
