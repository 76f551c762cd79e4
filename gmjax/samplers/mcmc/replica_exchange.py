"""Replica exchange: swapping the states of neighbouring temperature levels.

The replicas x_0, ..., x_{K-1} of one parallel-tempering chain jointly target

    pi(x_0, ..., x_{K-1}) ∝ prod_k p(x_k)^{beta_k},

and a swap of two levels is a Metropolis move on pi (Swendsen and Wang, 1986;
Geyer, 1991; Earl and Deem, 2005). BlackJAX has no replica exchange; these
are the pieces `gmjax.samplers.mcmc.parallel_tempering` builds it from.
"""

from __future__ import annotations

from typing import Any, Tuple

import jax
import jax.numpy as jnp


def swap_log_acceptance(betas: jax.Array, log_probs: jax.Array) -> jax.Array:
    """Log acceptance ratio of swapping the replicas of neighbouring levels.

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


def retemper(states: Any, betas: jax.Array, perm: jax.Array) -> Any:
    """Moves the level states by ``perm`` and re-tempers them to their new level.

    A state (``RWState`` or ``HMCState`` with a leading level axis [K, ...])
    carries beta_old * log p(x) and, for HMC, its gradient. Both are linear in
    beta, so a replica moved from level perm[k] to level k is re-tempered by
    multiplying by beta_k / beta_{perm[k]}, which saves a log_prob (and
    gradient) evaluation per swap.
    """
    ratio = betas / betas[perm]  # [K]
    moved = jax.tree.map(lambda leaf: leaf[perm], states)

    def scale(leaf: jax.Array) -> jax.Array:
        return leaf * jnp.reshape(ratio, ratio.shape + (1,) * (leaf.ndim - 1))

    return moved._replace(
        **{field: jax.tree.map(scale, getattr(moved, field))
           for field in moved._fields if field != "position"}
    )
