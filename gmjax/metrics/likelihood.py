"""Likelihood-based metrics: bits per dimension, nats and bits, importance-sampled log p(x).

All negative log-likelihoods here are in nats unless a name says bits.
"""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp

from gmjax.metrics.checks import as_float

LOG2 = math.log(2.0)


def nats_to_bits(nats: chex.Numeric) -> chex.Array:
    """bits = nats / log 2."""
    return jnp.asarray(nats) / LOG2


def bits_to_nats(bits: chex.Numeric) -> chex.Array:
    """nats = bits * log 2."""
    return jnp.asarray(bits) * LOG2


def bits_per_dim(
    nll_nats_per_example: chex.Numeric, num_dims: int, num_bins: int = 256
) -> chex.Array:
    """Bits per dimension of dequantized discrete data from an NLL over [0, 1)-scaled data.

    Discrete data x in {0, ..., num_bins - 1}^D is dequantized as y = x + u,
    u ~ U[0, 1)^D, and the model density p_1 is fitted to y / num_bins in
    [0, 1)^D. The density of y itself is p(y) = p_1(y / num_bins) num_bins^(-D),
    so

        nll over [0, num_bins)^D = nll over [0, 1)^D + D log(num_bins),

    and E[-log p(y)] bounds the discrete NLL -log P(x) from above (Uria, Murray
    and Larochelle, 2013, "RNADE"; Theis, van den Oord and Bethge, 2016, "A note
    on the evaluation of generative models"). Bits per dimension is that NLL
    over D log 2:

        bpd = (nll_[0,1) + D log(num_bins)) / (D log 2).

    A uniform model on [0, 1)^D has nll_[0,1) = 0 and scores log2(256) = 8
    bits/dim for 8-bit data. Data scaled to another range [a, b) first needs
    nll_[0,1) = nll_[a,b) + D log(b - a) (e.g. D log 2 for [-1, 1)).

    Args:
        nll_nats_per_example: -log p_1(y / num_bins) in nats, a scalar or [n].
        num_dims: D, the number of dimensions of one example (e.g. 28 * 28).
        num_bins: number of discrete levels per dimension (256 for 8-bit).

    Returns:
        Bits per dimension, with the shape of `nll_nats_per_example`.
    """
    nll = as_float(nll_nats_per_example)
    return (nll + num_dims * math.log(num_bins)) / (num_dims * LOG2)


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
