"""Maximum-likelihood objectives for explicit-density models (flows, autoregressive models).

``nll_loss`` for continuous data; ``dequantized_log_prob`` and
``bits_per_dim_loss`` for discrete data (images) modelled through uniform
dequantization, reported in bits per dimension.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

import jax
import jax.numpy as jnp

from gmjax.data.transforms import dequantize_uniform
from gmjax.units import bits_per_dim

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


def dequantized_log_prob(
    log_prob_fn: Callable[[PyTree, jax.Array], jax.Array],
    num_levels: int,
    transform: Optional[Callable[[jax.Array], Tuple[jax.Array, jax.Array]]] = None,
) -> Callable[[PyTree, jax.Array, jax.Array], jax.Array]:
    """The log-density of uniformly dequantized discrete data, ``log p_U(u)``.

    Integer data x in {0, ..., L-1}^D (``L = num_levels``; any shape
    ``[n, ...]``) are dequantized with the key as ``u = (x + v) / L``,
    ``v ~ U[0, 1)^D`` (``gmjax.data.dequantize_uniform``; Uria et al., 2013,
    "RNADE"; Theis et al., 2016, "A note on the evaluation of generative
    models"). The model's density is over ``y = T(u)``, T a pre-processing
    bijection such as RealNVP's logit (``transform(u) -> (y, log|det dy/du|)``;
    none means y = u), so by the change of variables

        log p_U(u) = log p_Y(T(u)) + log|det dT/du|.

    Args:
      log_prob_fn: ``log_prob_fn(params, y) -> [n]``, ``log p_Y`` in nats.
      num_levels: L.
      transform: ``u [n, ...] -> (y [n, ...], log|det dy/du| [n])``, or None.

    Returns:
      ``fn(params, x, key) -> log p_U(u) [n]`` in nats over ``[0, 1)^D``.
    """

    def fn(params: PyTree, x: jax.Array, key: jax.Array) -> jax.Array:
        u = dequantize_uniform(key, x, num_levels)
        if transform is None:
            return log_prob_fn(params, u)
        y, log_det = transform(u)
        return log_prob_fn(params, y) + log_det

    return fn


def bits_per_dim_loss(
    log_prob_u: Callable[[PyTree, jax.Array, jax.Array], jax.Array], num_dims: int,
    num_levels: int,
) -> Callable[[PyTree, jax.Array, jax.Array], Tuple[jax.Array, Dict[str, jax.Array]]]:
    """Mean bits per dimension of dequantized data as a train-step loss.

    With ``log p_U(u)`` the model's log-density of the dequantized data over
    ``[0, 1)^D`` (``dequantized_log_prob``), the density of ``L u`` over
    ``[0, L)^D`` is ``p_U(u) L^{-D}``, so

        nll      = -(1/n) sum_i log p_U(u_i)                 (nats per example),
        bits/dim = (nll + D log L) / (D log 2),

    which bounds the discrete model's bits/dim from above in expectation over
    the dequantization noise (Theis et al., 2016); a uniform model scores
    ``log2 L``. (``gmjax.units.bits_per_dim`` is the conversion.)

    Args:
      log_prob_u: ``log_prob_u(params, x, key) -> [n]``, e.g. from ``dequantized_log_prob``.
      num_dims: D, the dimensions of one example (e.g. 28 * 28).
      num_levels: L.

    Returns:
      ``loss(params, x, key) -> (bits/dim, {"nll": nll, "bits_per_dim": bits/dim})``.
    """

    def loss(params: PyTree, x: jax.Array, key: jax.Array):
        nll = -jnp.mean(log_prob_u(params, x, key))  # nats per example, over [0, 1)^D
        bpd = bits_per_dim(nll, num_dims, num_levels)
        return bpd, {"nll": nll, "bits_per_dim": bpd}

    return loss
