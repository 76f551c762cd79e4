"""``run_mcmc``: many chains of one sampler, burn-in and thinning, in one jitted call.

The sampler ``name`` (a key of `MCMC_SAMPLERS`) runs ``num_chains``
independent chains (``jax.vmap`` of its ``step``) through ``jax.lax.scan``
inside one ``jax.jit``: first ``burn_in`` iterations whose states are not
stored, then ``num_draws * thin`` iterations of which every ``thin``-th state
is kept, so `MCMCResult.samples` is [num_chains, num_draws, d]. The only
randomness is the ``key`` passed to `run_mcmc`, split once per iteration and
then once per chain.
"""

from __future__ import annotations

import collections
from typing import Any, Dict, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from gmjax.samplers.mcmc.base import MCMC_SAMPLERS, LogProb, SamplingAlgorithm
from gmjax.samplers.mcmc.options import positive_int


class MCMCResult(NamedTuple):
    """What `run_mcmc` returns."""

    samples: jax.Array  # [num_chains, num_draws, d], after burn-in and thinning
    acceptance_rate: jax.Array  # [] mean acceptance probability of the within-chain moves
    swap_rate: Optional[jax.Array]  # [] pt only: mean acceptance probability of replica swaps


class _Carry(NamedTuple):
    key: jax.Array
    states: Any  # per-chain states, leading axis num_chains
    count: jax.Array  # [] iterations recorded in the running means
    acceptance: jax.Array  # [num_chains] running mean of the move acceptance
    swaps_accepted: jax.Array  # [num_chains] running sum
    swaps_proposed: jax.Array  # [num_chains] running sum


def _run(algorithm: SamplingAlgorithm, key: jax.Array, init: jax.Array, num_draws: int,
         burn_in: int, thin: int) -> Tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """Burn-in, then num_draws * thin iterations keeping every thin-th; un-jitted body.

    The burn-in is a ``lax.scan`` that collects nothing; its acceptance
    statistics are then reset, so the reported rates cover the sampling
    iterations only. Sampling is a ``lax.scan`` over draws whose body scans
    ``thin`` iterations and emits the last state's position.
    """
    num_chains = init.shape[0]
    chain_step = jax.vmap(algorithm.step)

    def iterate(carry: _Carry, _: Any) -> Tuple[_Carry, None]:
        key, key_iter = jax.random.split(carry.key)
        keys = jax.random.split(key_iter, num_chains)
        states, info = chain_step(keys, carry.states)
        count = carry.count + 1
        acceptance = carry.acceptance + (info.acceptance_rate - carry.acceptance) / count
        if algorithm.has_swaps:
            swaps = (carry.swaps_accepted + info.swaps_accepted,
                     carry.swaps_proposed + info.swaps_proposed)
        else:
            swaps = (carry.swaps_accepted, carry.swaps_proposed)
        return _Carry(key, states, count, acceptance, *swaps), None

    def draw(carry: _Carry, _: Any) -> Tuple[_Carry, jax.Array]:
        carry, _ = jax.lax.scan(iterate, carry, None, length=thin)
        return carry, jax.vmap(algorithm.position)(carry.states)  # [num_chains, d]

    zeros = jnp.zeros((num_chains,), init.dtype)
    fresh = dict(count=jnp.zeros((), init.dtype), acceptance=zeros, swaps_accepted=zeros,
                 swaps_proposed=zeros)
    carry = _Carry(key=key, states=jax.vmap(algorithm.init)(init), **fresh)
    carry, _ = jax.lax.scan(iterate, carry, None, length=burn_in)  # nothing stored
    carry = carry._replace(**fresh)
    carry, samples = jax.lax.scan(draw, carry, None, length=num_draws)  # [num_draws, chains, d]
    return (jnp.swapaxes(samples, 0, 1), jnp.mean(carry.acceptance),
            jnp.sum(carry.swaps_accepted), jnp.sum(carry.swaps_proposed))


_run_jit = jax.jit(_run, static_argnames=("algorithm", "num_draws", "burn_in", "thin"))


def _freeze(value: Any) -> Any:
    """A hashable stand-in for an option value (arrays become nested tuples)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    array = np.asarray(value)  # raises for tracers and other non-arrays
    return ("array", array.dtype.str, array.shape, tuple(array.ravel().tolist()))


# Recently built samplers, keyed by (name, log_prob, frozen options); least recent first.
_ALGORITHMS: "collections.OrderedDict[Any, SamplingAlgorithm]" = collections.OrderedDict()
_MAX_CACHED_ALGORITHMS = 32


def build_sampler(name: str, log_prob: LogProb, options: Dict[str, Any]) -> SamplingAlgorithm:
    """``MCMC_SAMPLERS.get(name)(log_prob, **options)``, reusing an earlier identical build.

    Reusing the very same `SamplingAlgorithm` (a static argument of the jitted
    run) lets ``jax.jit`` reuse its compiled run, e.g. across the seeds of an
    experiment: compiling a parallel-tempering run takes seconds on CPU.
    ``log_prob`` matches by identity. Options that cannot be frozen into a
    hashable key (traced arrays, say) skip the cache.
    """
    try:
        cache_key = (name, log_prob,
                     tuple(sorted((key, _freeze(value)) for key, value in options.items())))
        hash(cache_key)
    except (TypeError, ValueError):
        return MCMC_SAMPLERS.get(name)(log_prob, **options)
    if cache_key in _ALGORITHMS:
        _ALGORITHMS.move_to_end(cache_key)
        return _ALGORITHMS[cache_key]
    algorithm = MCMC_SAMPLERS.get(name)(log_prob, **options)
    _ALGORITHMS[cache_key] = algorithm
    if len(_ALGORITHMS) > _MAX_CACHED_ALGORITHMS:
        _ALGORITHMS.popitem(last=False)
    return algorithm


def run_mcmc(
    name: str,
    log_prob: LogProb,
    key: jax.Array,
    init: jax.Array,
    *,
    num_draws: int,
    burn_in: int = 1000,
    thin: int = 1,
    **options: Any,
) -> MCMCResult:
    """Runs the MCMC sampler ``name`` ("mh", "hmc" or "pt") from ``init``.

    The whole run is one jitted function; calls with the same ``name``,
    ``log_prob`` (the same Python object), options, counts and init shape
    reuse its compilation.

    Args:
        name: a key of `MCMC_SAMPLERS`.
        log_prob: unnormalized log density of one point, [d] -> []; a
            ``gmjax.targets`` target's ``target.log_prob`` qualifies.
        key: PRNG key, the only source of randomness.
        init: [num_chains, d] starting points, one per chain.
        num_draws: draws kept per chain (>= 1).
        burn_in: iterations run first and discarded, not stored (>= 0).
        thin: keep every thin-th state after burn-in (>= 1); the run makes
            burn_in + num_draws * thin iterations.
        **options: the sampler's options (see `random_walk_metropolis`,
            `hamiltonian_monte_carlo`, `parallel_tempering`).

    Returns:
        MCMCResult with samples [num_chains, num_draws, d]; acceptance_rate
        and swap_rate are means over the post-burn-in iterations and chains.
    """
    algorithm = build_sampler(name, log_prob, options)
    num_draws = positive_int(num_draws, "num_draws")
    burn_in = positive_int(burn_in, "burn_in", minimum=0)
    thin = positive_int(thin, "thin")
    init = jnp.asarray(init, dtype=jnp.result_type(float))
    if init.ndim != 2:
        raise ValueError(f"init must be [num_chains, d], got shape {init.shape}")
    samples, acceptance, swaps_accepted, swaps_proposed = _run_jit(
        algorithm, key, init, num_draws=num_draws, burn_in=burn_in, thin=thin
    )
    swap_rate = swaps_accepted / swaps_proposed if algorithm.has_swaps else None
    return MCMCResult(samples=samples, acceptance_rate=acceptance, swap_rate=swap_rate)
