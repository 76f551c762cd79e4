"""MCMC baselines of TemperFlow: random-walk Metropolis, HMC and parallel tempering.

Qiu and Wang (2024, "Efficient multimodal sampling via tempered distribution
flow", JASA; Table S1 of the supplement) compare TemperFlow with three MCMC
samplers on multimodal targets. All three are run here on the BlackJAX kernels:

* ``"mh"``: random-walk Metropolis (Metropolis et al., 1953; Hastings, 1970).
  The proposal is y = x + s z, z ~ N(0, I), accepted with probability
  min(1, p(y) / p(x)) (``blackjax.additive_step_random_walk`` with a normal
  step; ``step_size`` = s, default 0.5).
* ``"hmc"``: Hamiltonian Monte Carlo (Duane et al., 1987; Neal, 2011) with
  momentum r ~ N(0, M), ``num_integration_steps`` leapfrog steps of size
  ``step_size`` (defaults 10 and 0.1) on H(x, r) = -log p(x) + r^T M^{-1} r / 2,
  accepted with probability min(1, exp(H(x, r) - H(x', r'))) (``blackjax.hmc``;
  ``inverse_mass_matrix`` defaults to the identity).
* ``"pt"``: parallel tempering / replica exchange (Swendsen and Wang, 1986,
  "Replica Monte Carlo simulation of spin-glasses", PRL 57; Geyer, 1991,
  "Markov chain Monte Carlo maximum likelihood"; Earl and Deem, 2005,
  "Parallel tempering: theory, applications, and new perspectives", PCCP 7).
  BlackJAX has no replica exchange, so it is built here on the two kernels
  above; see `parallel_tempering` and `replica_exchange`.

Every sampler runs ``num_chains`` independent chains (``jax.vmap``) through
``jax.lax.scan`` inside one ``jax.jit``: first ``burn_in`` iterations whose
states are not stored, then ``num_draws * thin`` iterations of which every
``thin``-th state is kept, so `MCMCResult.samples` is [num_chains, num_draws, d].
The only randomness is the ``key`` passed to `run_mcmc`, split once per
iteration and then once per chain.

``log_prob`` is the target's unnormalized log density of one point, [d] -> [];
a ``gmjax.targets`` target's ``target.log_prob`` qualifies.
"""

from __future__ import annotations

import collections
from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
from blackjax.mcmc.random_walk import normal as normal_random_step

from gmjax.metrics.mcmc import effective_sample_size, split_rhat
from gmjax.registry import Registry

LogProb = Callable[[jax.Array], jax.Array]  # [d] -> []

DEFAULT_MH_STEP_SIZE = 0.5
DEFAULT_HMC_STEP_SIZE = 0.1
DEFAULT_NUM_INTEGRATION_STEPS = 10
DEFAULT_BETA_MIN = 0.05
DEFAULT_NUM_BETAS = 10


class MCMCResult(NamedTuple):
    """What `run_mcmc` returns."""

    samples: jax.Array  # [num_chains, num_draws, d], after burn-in and thinning
    acceptance_rate: jax.Array  # [] mean acceptance probability of the within-chain moves
    swap_rate: Optional[jax.Array]  # [] pt only: mean acceptance probability of replica swaps


class StepStats(NamedTuple):
    """Per-iteration statistics of one chain, accumulated by the driver."""

    acceptance: jax.Array  # [] acceptance probability of the within-chain move
    swaps_accepted: jax.Array  # [] sum of the acceptance probabilities of the swaps proposed
    swaps_proposed: jax.Array  # [] number of swaps proposed


class Transition(NamedTuple):
    """One chain's Markov transition, as the driver `run_mcmc` uses it.

    ``init(position [d]) -> state``; ``step(key, state, t) -> (state, StepStats)``
    with ``t`` the global iteration index (burn-in included; parallel tempering
    uses it to time and alternate its swap rounds); ``position(state) -> [d]``
    the sample the state stands for; ``has_swaps`` whether the sampler proposes
    replica swaps (then `MCMCResult.swap_rate` is set).
    """

    init: Callable[[jax.Array], Any]
    step: Callable[[jax.Array, Any, jax.Array], Tuple[Any, StepStats]]
    position: Callable[[Any], jax.Array]
    has_swaps: bool = False


# Factories (log_prob, **options) -> Transition.
MCMC_SAMPLERS: Registry[Callable[..., Transition]] = Registry("MCMC sampler")


# ----------------------------------------------------------------------------
# Option checks
# ----------------------------------------------------------------------------


def _positive_array(value: Any, name: str) -> np.ndarray:
    """``value`` as a float array whose entries are all finite and > 0, else ValueError."""
    array = np.asarray(value, dtype=np.float64)
    if array.size == 0 or not np.all(np.isfinite(array)) or not np.all(array > 0):
        raise ValueError(f"{name} must be finite and positive, got {value!r}")
    return array


def _positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_betas(betas: Any) -> np.ndarray:
    """The inverse-temperature ladder: 1-D, >= 2 levels, 0 < b_0 < ... < b_{K-1} = 1."""
    betas = np.asarray(betas, dtype=np.float64)
    if betas.ndim != 1 or betas.shape[0] < 2:
        raise ValueError(
            f"betas must be a 1-D ladder of at least 2 levels, got shape {betas.shape}"
        )
    if not np.all(np.isfinite(betas)) or betas[0] <= 0:
        raise ValueError(f"betas must be finite and positive, got {betas}")
    if not np.all(np.diff(betas) > 0):
        raise ValueError(f"betas must be strictly increasing, got {betas}")
    if not np.isclose(betas[-1], 1.0, rtol=0.0, atol=1e-6):
        raise ValueError(f"the last beta must be 1 (the target itself), got {betas[-1]}")
    betas = betas.copy()
    betas[-1] = 1.0
    return betas


# ----------------------------------------------------------------------------
# Base moves on a tempered density beta * log p, shared by mh, hmc and pt
# ----------------------------------------------------------------------------


class _Move(NamedTuple):
    """A BlackJAX kernel targeting p^beta, with beta and the step size as arguments.

    ``init(position [d], beta) -> state`` and
    ``move(key, state, beta, step_size) -> (state, acceptance probability [])``.
    The state is a BlackJAX ``RWState(position, logdensity)`` or
    ``HMCState(position, logdensity, logdensity_grad)`` whose non-position
    fields are beta * log p(x) and its gradient: linear in beta, which
    `_retemper` relies on.
    """

    init: Callable[[jax.Array, jax.Array], Any]
    move: Callable[[jax.Array, Any, jax.Array, jax.Array], Tuple[Any, jax.Array]]


def _tempered(log_prob: LogProb, beta: jax.Array) -> LogProb:
    return lambda x: beta * log_prob(x)


def _random_walk_move(log_prob: LogProb) -> _Move:
    """Random-walk Metropolis on p^beta: y = x + s z, z ~ N(0, I)."""
    kernel = blackjax.additive_step_random_walk.build_kernel()

    def init(position: jax.Array, beta: jax.Array) -> Any:
        return blackjax.additive_step_random_walk.init(position, _tempered(log_prob, beta))

    def move(key: jax.Array, state: Any, beta: jax.Array, step_size: jax.Array):
        state, info = kernel(key, state, _tempered(log_prob, beta), normal_random_step(step_size))
        return state, info.acceptance_rate

    return _Move(init, move)


def _hmc_move(
    log_prob: LogProb,
    num_integration_steps: int,
    inverse_mass_matrix: Optional[jax.Array],
) -> _Move:
    """HMC on p^beta with the velocity Verlet (leapfrog) integrator."""
    kernel = blackjax.hmc.build_kernel()

    def init(position: jax.Array, beta: jax.Array) -> Any:
        return blackjax.hmc.init(position, _tempered(log_prob, beta))

    def move(key: jax.Array, state: Any, beta: jax.Array, step_size: jax.Array):
        metric = (
            jnp.ones_like(state.position) if inverse_mass_matrix is None else inverse_mass_matrix
        )
        state, info = kernel(
            key, state, _tempered(log_prob, beta), step_size, metric, num_integration_steps
        )
        return state, info.acceptance_rate

    return _Move(init, move)


def _hmc_options(num_integration_steps: int, inverse_mass_matrix: Any) -> Tuple[int, Any]:
    num_integration_steps = _positive_int(num_integration_steps, "num_integration_steps")
    if inverse_mass_matrix is not None:
        inverse_mass_matrix = jnp.asarray(inverse_mass_matrix, dtype=jnp.result_type(float))
        if inverse_mass_matrix.ndim == 1:
            _positive_array(inverse_mass_matrix, "inverse_mass_matrix")
        elif inverse_mass_matrix.ndim != 2:
            raise ValueError(
                "inverse_mass_matrix must be [d] (diagonal) or [d, d], got shape "
                f"{inverse_mass_matrix.shape}"
            )
    return num_integration_steps, inverse_mass_matrix


def _single_chain(base: _Move, step_size: np.ndarray) -> Transition:
    """A plain (beta = 1) chain of one base move."""
    one = jnp.ones(())
    step_size = jnp.asarray(step_size, dtype=jnp.result_type(float))

    def init(position: jax.Array) -> Any:
        return base.init(position, one)

    def step(key: jax.Array, state: Any, t: jax.Array) -> Tuple[Any, StepStats]:
        del t
        state, acceptance = base.move(key, state, one, step_size)
        zero = jnp.zeros_like(acceptance)
        return state, StepStats(acceptance, zero, zero)

    return Transition(init, step, lambda state: state.position)


@MCMC_SAMPLERS.register("mh")
def random_walk_metropolis(
    log_prob: LogProb, *, step_size: Any = DEFAULT_MH_STEP_SIZE
) -> Transition:
    """Random-walk Metropolis with a N(0, step_size^2 I) increment.

    ``step_size`` is a scalar, or a [d] vector of per-coordinate scales.
    """
    step_size = _positive_array(step_size, "step_size")
    if step_size.ndim > 1:
        raise ValueError(f"mh step_size must be a scalar or [d], got shape {step_size.shape}")
    return _single_chain(_random_walk_move(log_prob), step_size)


@MCMC_SAMPLERS.register("hmc")
def hamiltonian_monte_carlo(
    log_prob: LogProb,
    *,
    step_size: float = DEFAULT_HMC_STEP_SIZE,
    num_integration_steps: int = DEFAULT_NUM_INTEGRATION_STEPS,
    inverse_mass_matrix: Optional[Any] = None,
) -> Transition:
    """HMC with a fixed step size and number of leapfrog steps (no adaptation).

    ``inverse_mass_matrix`` is [d] (diagonal) or [d, d]; identity by default.
    """
    step_size = _positive_array(step_size, "step_size")
    if step_size.ndim != 0:
        raise ValueError(f"hmc step_size must be a scalar, got shape {step_size.shape}")
    num_integration_steps, inverse_mass_matrix = _hmc_options(
        num_integration_steps, inverse_mass_matrix
    )
    return _single_chain(_hmc_move(log_prob, num_integration_steps, inverse_mass_matrix), step_size)


# ----------------------------------------------------------------------------
# Parallel tempering
# ----------------------------------------------------------------------------


def geometric_ladder(beta_min: float = DEFAULT_BETA_MIN, num: int = DEFAULT_NUM_BETAS) -> jax.Array:
    """Geometrically spaced inverse temperatures from ``beta_min`` to 1.

        beta_k = beta_min^{(num - 1 - k) / (num - 1)},   k = 0, ..., num - 1,

    so beta_0 = beta_min, beta_{num-1} = 1 and beta_{k+1} / beta_k is constant,
    the usual default ladder (Earl and Deem, 2005, sec. 4.1).

    Returns:
        [num] increasing betas ending at exactly 1.
    """
    num = _positive_int(num, "num", minimum=2)
    if not 0.0 < beta_min < 1.0:
        raise ValueError(f"beta_min must lie in (0, 1), got {beta_min}")
    exponents = np.arange(num - 1, -1, -1, dtype=np.float64) / (num - 1)
    betas = np.power(beta_min, exponents)
    betas[-1] = 1.0
    return jnp.asarray(betas, dtype=jnp.result_type(float))


def swap_log_acceptance(betas: jax.Array, log_probs: jax.Array) -> jax.Array:
    """Log acceptance ratio of swapping the replicas of neighbouring levels.

    The replicas x_0, ..., x_{K-1} of one chain jointly target

        pi(x_0, ..., x_{K-1}) ∝ prod_k p(x_k)^{beta_k}.

    Exchanging x_i and x_j is a symmetric proposal, so Metropolis accepts it
    with probability min(1, r), where

        r = p(x_j)^{beta_i} p(x_i)^{beta_j} / (p(x_i)^{beta_i} p(x_j)^{beta_j})
          = exp((beta_i - beta_j) (log p(x_j) - log p(x_i)))

    (Geyer, 1991; Earl and Deem, 2005, eq. 2). The normalizing constant of p
    cancels. With beta_i < beta_j the swap is always accepted when it hands the
    colder level j the more probable point (log p(x_i) > log p(x_j)), and is
    accepted with probability exp(-(beta_j - beta_i) * gap) when it hands it a
    point that is worse by ``gap`` nats.

    Args:
        betas: [K] inverse temperatures.
        log_probs: [K] untempered log p(x_k) of the replica at level k.

    Returns:
        [K - 1] log r for the pairs (k, k + 1); NaN (both log p = -inf) becomes -inf.
    """
    log_ratio = (betas[:-1] - betas[1:]) * (log_probs[1:] - log_probs[:-1])
    return jnp.where(jnp.isnan(log_ratio), -jnp.inf, log_ratio)


def replica_exchange(
    key: jax.Array, betas: jax.Array, log_probs: jax.Array, parity: jax.Array
) -> Tuple[jax.Array, jax.Array, jax.Array]:
    """One round of the deterministic even-odd swap scheme.

    With ``parity`` 0 the disjoint pairs (0, 1), (2, 3), ... are proposed, with
    parity 1 the pairs (1, 2), (3, 4), ...; alternating the two makes a full
    sweep every two rounds (the "DEO" scheme; Okabe et al., 2001; Syed et al.,
    2022, JRSS-B 84). Each proposed pair is swapped independently with
    probability min(1, r), r from `swap_log_acceptance`.

    Args:
        key: PRNG key.
        betas: [K] inverse temperatures.
        log_probs: [K] untempered log p of the replica at every level.
        parity: [] int, 0 or 1.

    Returns:
        perm: [K] int, the new replica at level k is the old one at level perm[k].
        accept_prob: [K - 1] min(1, r) of pair (k, k + 1) (also for unproposed pairs).
        proposed: [K - 1] bool, whether pair (k, k + 1) was proposed this round.
    """
    num_levels = betas.shape[0]
    lower = jnp.arange(num_levels - 1)
    proposed = (lower % 2) == parity
    log_ratio = swap_log_acceptance(betas, log_probs)
    accept_prob = jnp.exp(jnp.minimum(log_ratio, 0.0))
    log_u = jnp.log(jax.random.uniform(key, (num_levels - 1,)))
    swapped = proposed & (log_u < log_ratio)
    # Pairs of one round are disjoint, so level k takes its upper neighbour's
    # replica when pair (k, k + 1) swaps and its lower one's when (k - 1, k) does.
    up = jnp.concatenate([swapped, jnp.zeros((1,), bool)])
    down = jnp.concatenate([jnp.zeros((1,), bool), swapped])
    levels = jnp.arange(num_levels)
    perm = jnp.where(up, levels + 1, jnp.where(down, levels - 1, levels))
    return perm, accept_prob, proposed


def _retemper(states: Any, betas: jax.Array, perm: jax.Array) -> Any:
    """Moves the level states by ``perm`` and re-tempers them to their new level.

    A state carries beta_old * log p(x) (and, for HMC, its gradient). Both are
    linear in beta, so a replica moved from level perm[k] to level k is
    re-tempered by multiplying by beta_k / beta_{perm[k]}, which saves a
    log_prob (and gradient) evaluation per swap.
    """
    ratio = betas / betas[perm]  # [K]
    moved = jax.tree.map(lambda leaf: leaf[perm], states)

    def scale(leaf: jax.Array) -> jax.Array:
        return leaf * jnp.reshape(ratio, ratio.shape + (1,) * (leaf.ndim - 1))

    return moved._replace(
        **{field: jax.tree.map(scale, getattr(moved, field))
           for field in moved._fields if field != "position"}
    )


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
) -> Transition:
    """Parallel tempering (replica exchange) on BlackJAX kernels.

    Every chain carries K replicas x_0, ..., x_{K-1}, state [K, d] (so
    [num_chains, K, d] over chains), one per inverse temperature of the
    increasing ladder ``betas`` (beta_{K-1} = 1; default
    `geometric_ladder`(0.05, 10)). One iteration:

    1. every replica makes one move of the base ``kernel`` ("mh" or "hmc")
       targeting p^{beta_k}, i.e. log density beta_k log p (the kernel is
       vmapped over levels with per-level beta and step size);
    2. every ``swap_every``-th iteration, one round of swaps between
       neighbouring levels (`replica_exchange`): the even pairs on even
       rounds and the odd pairs on odd rounds, accepted with probability
       min(1, exp((beta_i - beta_j)(log p(x_j) - log p(x_i)))).

    Both steps leave prod_k p^{beta_k}(x_k) invariant, so the beta = 1
    replica, the only one kept as a sample, targets p. The hot levels cross
    between modes and swaps carry those crossings down to beta = 1.

    ``step_size``: a scalar s is scaled per level as s / sqrt(beta_k) (p^beta
    is about 1/sqrt(beta) wider than p near a Gaussian mode); a [K] array is
    used as is; by default s is the base kernel's default (0.5 for mh, 0.1
    for hmc). ``num_integration_steps`` and ``inverse_mass_matrix`` are for
    ``kernel="hmc"`` and shared by all levels.

    Reported by `run_mcmc`: ``acceptance_rate`` of the beta = 1 level's moves,
    ``swap_rate`` = accepted / proposed swaps over all levels (as the mean of
    the acceptance probabilities min(1, r) of the proposed swaps).
    """
    betas_np = _check_betas(geometric_ladder() if betas is None else betas)
    num_levels = betas_np.shape[0]
    swap_every = _positive_int(swap_every, "swap_every")
    if kernel == "mh":
        if inverse_mass_matrix is not None:
            raise ValueError("inverse_mass_matrix is an option of kernel='hmc', not 'mh'")
        default_step = DEFAULT_MH_STEP_SIZE
        base = _random_walk_move(log_prob)
    elif kernel == "hmc":
        default_step = DEFAULT_HMC_STEP_SIZE
        base = _hmc_move(log_prob, *_hmc_options(num_integration_steps, inverse_mass_matrix))
    else:
        raise ValueError(f"unknown pt base kernel {kernel!r}; valid choices: hmc, mh")
    step_np = _positive_array(default_step if step_size is None else step_size, "step_size")
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

    def init(position: jax.Array) -> Any:  # [d] -> level states [K, ...]
        positions = jnp.broadcast_to(position, (num_levels,) + position.shape)
        return jax.vmap(base.init)(positions, betas_arr)

    def step(key: jax.Array, states: Any, t: jax.Array) -> Tuple[Any, StepStats]:
        key_move, key_swap = jax.random.split(key)
        keys = jax.random.split(key_move, num_levels)
        states, acceptance = jax.vmap(base.move)(keys, states, betas_arr, steps_arr)
        # Swap rounds happen after iterations t = swap_every - 1, 2 swap_every - 1, ...
        do_swap = (t + 1) % swap_every == 0
        swap_round = (t + 1) // swap_every - 1
        log_probs = states.logdensity / betas_arr  # [K] untempered log p
        perm, accept_prob, proposed = replica_exchange(
            key_swap, betas_arr, log_probs, swap_round % 2
        )
        perm = jnp.where(do_swap, perm, jnp.arange(num_levels))
        proposed = proposed & do_swap
        states = _retemper(states, betas_arr, perm)
        stats = StepStats(
            acceptance=acceptance[-1],
            swaps_accepted=jnp.sum(jnp.where(proposed, accept_prob, 0.0)),
            swaps_proposed=jnp.sum(proposed).astype(accept_prob.dtype),
        )
        return states, stats

    return Transition(init, step, lambda states: states.position[-1], has_swaps=True)


# ----------------------------------------------------------------------------
# Driver
# ----------------------------------------------------------------------------


class _Carry(NamedTuple):
    key: jax.Array
    states: Any  # per-chain states, leading axis num_chains
    t: jax.Array  # [] int, global iteration index
    count: jax.Array  # [] iterations recorded in the running means
    acceptance: jax.Array  # [num_chains] running mean of the move acceptance
    swaps_accepted: jax.Array  # [num_chains] running sum
    swaps_proposed: jax.Array  # [num_chains] running sum


def _run(transition: Transition, key: jax.Array, init: jax.Array, num_draws: int, burn_in: int,
         thin: int) -> Tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """Burn-in, then num_draws * thin iterations keeping every thin-th; un-jitted body.

    The burn-in is a ``lax.scan`` that collects nothing; its acceptance
    statistics are then reset, so the reported rates cover the sampling
    iterations only. Sampling is a ``lax.scan`` over draws whose body scans
    ``thin`` iterations and emits the last state's position.
    """
    num_chains = init.shape[0]
    chain_step = jax.vmap(transition.step, in_axes=(0, 0, None))

    def iterate(carry: _Carry, _: Any) -> Tuple[_Carry, None]:
        key, key_iter = jax.random.split(carry.key)
        keys = jax.random.split(key_iter, num_chains)
        states, stats = chain_step(keys, carry.states, carry.t)
        count = carry.count + 1
        carry = _Carry(
            key=key,
            states=states,
            t=carry.t + 1,
            count=count,
            acceptance=carry.acceptance + (stats.acceptance - carry.acceptance) / count,
            swaps_accepted=carry.swaps_accepted + stats.swaps_accepted,
            swaps_proposed=carry.swaps_proposed + stats.swaps_proposed,
        )
        return carry, None

    def draw(carry: _Carry, _: Any) -> Tuple[_Carry, jax.Array]:
        carry, _ = jax.lax.scan(iterate, carry, None, length=thin)
        return carry, jax.vmap(transition.position)(carry.states)  # [num_chains, d]

    zeros = jnp.zeros((num_chains,), init.dtype)
    fresh = dict(count=jnp.zeros((), init.dtype), acceptance=zeros, swaps_accepted=zeros,
                 swaps_proposed=zeros)
    carry = _Carry(key=key, states=jax.vmap(transition.init)(init), t=jnp.zeros((), jnp.int32),
                   **fresh)
    carry, _ = jax.lax.scan(iterate, carry, None, length=burn_in)  # nothing stored
    carry = carry._replace(**fresh)
    carry, samples = jax.lax.scan(draw, carry, None, length=num_draws)  # [num_draws, chains, d]
    return (jnp.swapaxes(samples, 0, 1), jnp.mean(carry.acceptance),
            jnp.sum(carry.swaps_accepted), jnp.sum(carry.swaps_proposed))


_run_jit = jax.jit(_run, static_argnames=("transition", "num_draws", "burn_in", "thin"))


def _freeze(value: Any) -> Any:
    """A hashable stand-in for an option value (arrays become nested tuples)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    array = np.asarray(value)  # raises for tracers and other non-arrays
    return ("array", array.dtype.str, array.shape, tuple(array.ravel().tolist()))


# Recently built transitions, keyed by (name, log_prob, frozen options); least recent first.
_TRANSITIONS: "collections.OrderedDict[Any, Transition]" = collections.OrderedDict()
_MAX_CACHED_TRANSITIONS = 32


def _transition(name: str, log_prob: LogProb, options: Dict[str, Any]) -> Transition:
    """Builds the sampler, reusing an earlier build for the same name, log_prob and options.

    Reusing the very same `Transition` (a static argument of the jitted run)
    lets ``jax.jit`` reuse its compiled run, e.g. across the seeds of an
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
    if cache_key in _TRANSITIONS:
        _TRANSITIONS.move_to_end(cache_key)
        return _TRANSITIONS[cache_key]
    transition = MCMC_SAMPLERS.get(name)(log_prob, **options)
    _TRANSITIONS[cache_key] = transition
    if len(_TRANSITIONS) > _MAX_CACHED_TRANSITIONS:
        _TRANSITIONS.popitem(last=False)
    return transition


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
        log_prob: unnormalized log density of one point, [d] -> [].
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
    transition = _transition(name, log_prob, options)
    num_draws = _positive_int(num_draws, "num_draws")
    burn_in = _positive_int(burn_in, "burn_in", minimum=0)
    thin = _positive_int(thin, "thin")
    init = jnp.asarray(init, dtype=jnp.result_type(float))
    if init.ndim != 2:
        raise ValueError(f"init must be [num_chains, d], got shape {init.shape}")
    samples, acceptance, swaps_accepted, swaps_proposed = _run_jit(
        transition, key, init, num_draws=num_draws, burn_in=burn_in, thin=thin
    )
    swap_rate = swaps_accepted / swaps_proposed if transition.has_swaps else None
    return MCMCResult(samples=samples, acceptance_rate=acceptance, swap_rate=swap_rate)


def effective_sample_size_summary(samples: jax.Array) -> Dict[str, float]:
    """ESS and split R-hat of [chains, draws, d] draws, summarised over dimensions.

    Returns:
        ``ess_min`` and ``ess_mean`` of the per-dimension (split, multi-chain)
        effective sample size of `gmjax.metrics.mcmc.effective_sample_size`,
        and ``rhat_max``, the largest per-dimension split R-hat of
        `gmjax.metrics.mcmc.split_rhat`.
    """
    ess = effective_sample_size(samples)
    rhat = split_rhat(samples)
    return dict(ess_min=float(jnp.min(ess)), ess_mean=float(jnp.mean(ess)),
                rhat_max=float(jnp.max(rhat)))
