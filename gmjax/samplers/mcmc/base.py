"""The shape of every MCMC sampler here, and the registry that names them.

A sampler follows BlackJAX's shape: ``init(position [d]) -> State`` and a pure
``step(key, state) -> (state, info)`` with typed ``State`` / ``Info`` named
tuples, driven by `gmjax.samplers.mcmc.runner.run_mcmc` rather than by a loop
of its own. Every ``Info`` has an ``acceptance_rate`` field (the acceptance
probability of the within-chain move); samplers that propose replica swaps
also report ``swaps_accepted`` and ``swaps_proposed``.

Parallel tempering runs the random-walk and HMC kernels on tempered densities
p^beta, so both are also built as a `TemperedMove`, whose ``beta`` and step
size are arguments rather than constants.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from gmjax.registry import Registry

LogProb = Callable[[jax.Array], jax.Array]  # [d] -> [], unnormalized


class SamplingAlgorithm(NamedTuple):
    """One chain's Markov transition, as ``run_mcmc`` drives it.

    Attributes:
      init: ``position [d] -> state``.
      step: ``(key, state) -> (state, info)``, pure; not jitted here (the
        runner jits the whole run).
      position: ``state -> [d]``, the sample the state stands for.
      has_swaps: whether ``info`` carries ``swaps_accepted`` and
        ``swaps_proposed`` (then ``MCMCResult.swap_rate`` is set).
    """

    init: Callable[[jax.Array], Any]
    step: Callable[[jax.Array, Any], Tuple[Any, Any]]
    position: Callable[[Any], jax.Array]
    has_swaps: bool = False


class TemperedMove(NamedTuple):
    """A BlackJAX kernel on p^beta, i.e. on the log density ``beta * log_prob``.

    Attributes:
      init: ``(position [d], beta []) -> state``.
      step: ``(key, state, beta [], step_size) -> (state, info)``.

    The state is a BlackJAX ``RWState(position, logdensity)`` or
    ``HMCState(position, logdensity, logdensity_grad)`` whose non-position
    fields are beta * log p(x) and its gradient: linear in beta, which
    `gmjax.samplers.mcmc.replica_exchange.retemper` relies on.
    """

    init: Callable[[jax.Array, jax.Array], Any]
    step: Callable[[jax.Array, Any, jax.Array, jax.Array], Tuple[Any, Any]]


# Factories (log_prob, **options) -> SamplingAlgorithm.
MCMC_SAMPLERS: Registry[Callable[..., SamplingAlgorithm]] = Registry("MCMC sampler")


def tempered(log_prob: LogProb, beta: jax.Array) -> LogProb:
    """``x -> beta * log_prob(x)``, the unnormalized log density of p^beta."""
    return lambda x: beta * log_prob(x)


def single_chain(move: TemperedMove, step_size: np.ndarray) -> SamplingAlgorithm:
    """A plain chain (beta = 1) of one tempered move with a fixed step size."""
    one = jnp.ones(())
    step_size = jnp.asarray(step_size, dtype=jnp.result_type(float))

    def init(position: jax.Array) -> Any:
        return move.init(position, one)

    def step(key: jax.Array, state: Any) -> Tuple[Any, Any]:
        return move.step(key, state, one, step_size)

    return SamplingAlgorithm(init, step, lambda state: state.position)
