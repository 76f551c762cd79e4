"""Maximum-likelihood objectives for explicit-density models (flows, autoregressive models)."""

from __future__ import annotations

from typing import Any, Callable, Dict, Tuple

import jax
import jax.numpy as jnp

PyTree = Any


def nll_loss(log_prob_fn: Callable[[PyTree, jax.Array], jax.Array]
             ) -> Callable[[PyTree, jax.Array, jax.Array], Tuple[jax.Array, Dict[str, jax.Array]]]:
    """The negative log-likelihood ``-(1/n) sum_i log p_theta(x_i)`` as a train-step loss.

    Args:
      log_prob_fn: ``log_prob_fn(params, x) -> [n]`` log-densities in nats.

    Returns:
      ``loss(params, x, key) -> (nll, {"nll": nll})``; ``key`` is unused (the
      objective is deterministic) but kept for the common loss signature.
    """

    def loss(params: PyTree, x: jax.Array, key: jax.Array):
        del key
        nll = -jnp.mean(log_prob_fn(params, x))
        return nll, {"nll": nll}

    return loss
