"""Likelihood-based metrics: bits per dimension, nats and bits, importance-sampled log p(x).

All negative log-likelihoods here are in nats unless a name says bits. The
unit conversions (``bits_per_dim``, ``nats_to_bits``, ``bits_to_nats``) live
in `gmjax.units`, which the likelihood objectives share, and are re-exported.
"""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp

from gmjax.metrics.checks import as_float
from gmjax.units import LOG2, bits_per_dim, bits_to_nats, nats_to_bits

__all__ = ["LOG2", "bits_per_dim", "bits_to_nats", "is_log_likelihood",
           "is_log_likelihood_per_example", "nats_to_bits", "nll_excess"]


def nll_excess(test_nll: chex.Numeric, entropy: chex.Numeric) -> chex.Array:
    """test_nll - entropy, in nats.

    The expected test NLL of a model q on data from p is the cross-entropy
    H(p, q) = H(p) + KL(p || q), so when the true entropy H(p) is known the
    excess estimates KL(p || q) >= 0 (up to the Monte Carlo error of test_nll).
    """
    return as_float(test_nll) - as_float(entropy)


@jax.jit
def is_log_likelihood_per_example(log_w: chex.Array) -> tuple[chex.Array, chex.Array]:
    """Importance-sampled log p(x_i) and its delta-method standard error, per example.

    With k importance weights w_ij = p(x_i, z_ij) / q(z_ij | x_i), z_ij ~ q,

        log p_hat(x_i) = log (1/k) sum_j w_ij = logsumexp_j(log w_ij) - log k,

    the importance-sampling estimate used to evaluate VAEs (Burda, Grosse and
    Salakhutdinov, 2016, "Importance weighted autoencoders"). It is unbiased
    for p(x_i), so by Jensen its expectation, the IWAE bound, lies below
    log p(x_i). By
    the delta method, Var[log p_hat] ~ Var[p_hat] / p_hat^2 = s_w^2 / (k w_bar^2),
    with s_w^2 the sample variance (ddof 1) and w_bar the mean of the k weights.
    The ratio is scale free, so it is computed from the normalised weights
    w~ = softmax(log w), where it equals (k / ESS - 1) / (k - 1) with
    ESS = 1 / sum_j w~_j^2; equal weights give 0.

    Args:
        log_w: [n, k] log importance weights, k >= 2.

    Returns:
        (log_p [n], stderr [n]).
    """
    log_w = as_float(log_w)
    chex.assert_rank(log_w, 2)
    k = log_w.shape[1]
    if k < 2:
        raise ValueError(
            f"need k >= 2 importance samples per example for a standard error, got {k}"
        )
    log_p = jax.nn.logsumexp(log_w, axis=1) - math.log(k)  # [n]
    w = jax.nn.softmax(log_w, axis=1)  # [n, k], rows sum to 1, mean 1/k
    sample_var = jnp.sum(jnp.square(w - 1.0 / k), axis=1) / (k - 1)  # [n]
    rel_var = sample_var * k  # s_w^2 / (k w_bar^2) with w_bar = 1/k
    return log_p, jnp.sqrt(rel_var)


@jax.jit
def is_log_likelihood(log_w: chex.Array) -> tuple[chex.Array, chex.Array]:
    """Mean importance-sampled log-likelihood over n examples and its standard error.

        mean   = (1/n) sum_i log p_hat(x_i)
        stderr = sqrt(sum_i Var[log p_hat(x_i)]) / n

    where log p_hat and its delta-method variance are those of
    `is_log_likelihood_per_example`. The standard error is the Monte Carlo
    error of the importance sampling for this fixed test set; it does not
    include the spread of log p(x) over test examples (for that, use the
    standard deviation of the per-example values over sqrt(n)).

    Args:
        log_w: [n, k] log importance weights, k >= 2.

    Returns:
        (mean, stderr), two scalars in nats.
    """
    log_p, stderr = is_log_likelihood_per_example(log_w)
    n = log_p.shape[0]
    return jnp.mean(log_p), jnp.sqrt(jnp.sum(jnp.square(stderr))) / n
