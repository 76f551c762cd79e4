"""Bits per dimension, nats and bits, and the importance-sampled log-likelihood."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from gmjax import metrics


def test_uniform_model_on_uniform_dequantized_data_is_8_bits():
    # Dequantized 8-bit data scaled to [0, 1): the uniform density there is 1,
    # so the NLL over [0, 1)^D is 0 and bits/dim is log2(256) exactly.
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(16, 784))
    y = (pixels + rng.uniform(size=pixels.shape)) / 256.0
    nll = -np.sum(np.log(np.ones_like(y)), axis=1)  # log density of U[0, 1)^D
    np.testing.assert_array_equal(metrics.bits_per_dim(nll, 784), np.full(16, 8.0))
    assert float(metrics.bits_per_dim(0.0, 3, num_bins=2)) == 1.0


def test_histogram_model_gives_the_discrete_code_length():
    # A model that is piecewise constant on the dequantization cells has density
    # 256 * P(x) on [0, 1)-scaled data; its bits/dim must equal -log2 P(x) / D.
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(256))
    pixels = rng.choice(256, p=probs, size=(10, 64))
    nll_unit_scale = -np.sum(np.log(256 * probs[pixels]), axis=1)
    expected = -np.sum(np.log2(probs[pixels]), axis=1) / 64
    np.testing.assert_allclose(metrics.bits_per_dim(nll_unit_scale, 64), expected, rtol=1e-5)


def test_nats_and_bits():
    assert float(metrics.nats_to_bits(math.log(2))) == pytest.approx(1.0)
    assert float(metrics.bits_to_nats(8.0)) == pytest.approx(8 * math.log(2))
    assert float(metrics.bits_to_nats(metrics.nats_to_bits(3.7))) == pytest.approx(3.7)


def test_nll_excess_estimates_kl():
    # Data N(0, 1), model N(0, s^2): the excess over the entropy is KL(p || q).
    s = 1.7
    x = np.random.default_rng(2).normal(size=200_000)
    test_nll = -np.mean(stats.norm.logpdf(x, scale=s))
    entropy = 0.5 * math.log(2 * math.pi * math.e)
    kl = math.log(s) + 1 / (2 * s**2) - 0.5
    assert float(metrics.nll_excess(test_nll, entropy)) == pytest.approx(kl, abs=0.005)


@functools.partial(jax.jit, static_argnames=("k", "proposal_sd"))
def _gaussian_model_log_w(key, x, k, proposal_sd):
    """log w for z ~ N(0, 1), x | z ~ N(z, 1), proposal q(z | x) = N(x / 2, proposal_sd^2).

    The exact posterior is N(x / 2, 1/2), and p(x) = N(x; 0, 2).
    """
    z = x[:, None] / 2 + proposal_sd * jax.random.normal(key, (x.shape[0], k))
    log_joint = jax.scipy.stats.norm.logpdf(z) + jax.scipy.stats.norm.logpdf(x[:, None], z)
    return log_joint - jax.scipy.stats.norm.logpdf(z, x[:, None] / 2, proposal_sd)


def test_exact_proposal_gives_exact_log_likelihood_and_zero_stderr():
    x = jnp.linspace(-3.0, 3.0, 7)
    log_w = _gaussian_model_log_w(jax.random.key(0), x, k=16, proposal_sd=math.sqrt(0.5))
    exact = stats.norm.logpdf(np.asarray(x), scale=math.sqrt(2))
    log_p, stderr = metrics.is_log_likelihood_per_example(log_w)
    np.testing.assert_allclose(log_p, exact, atol=1e-5)
    np.testing.assert_allclose(stderr, 0.0, atol=1e-3)
    mean, mean_stderr = metrics.is_log_likelihood(jnp.zeros((5, 10)) + exact[:5, None])
    assert float(mean) == pytest.approx(np.mean(exact[:5]), rel=1e-6)
    assert float(mean_stderr) == 0.0


def test_stderr_matches_spread_over_repeated_estimates():
    # A too-wide proposal: the estimate varies; its delta-method stderr should
    # match the spread over independent repetitions.
    x = jnp.array([-1.0, 0.5, 2.0])
    keys = jax.random.split(jax.random.key(1), 400)
    estimate = jax.jit(
        jax.vmap(
            lambda key: metrics.is_log_likelihood_per_example(
                _gaussian_model_log_w(key, x, k=200, proposal_sd=2.0)
            )
        )
    )
    log_p, stderr = estimate(keys)  # [400, 3] each
    exact = stats.norm.logpdf(np.asarray(x), scale=math.sqrt(2))
    spread = np.std(np.asarray(log_p), axis=0)
    np.testing.assert_allclose(np.mean(np.asarray(stderr), axis=0), spread, rtol=0.15)
    # The mean over 400 repetitions has sd spread / 20 and a Jensen bias near -spread^2 / 2.
    tolerance = 4 * spread.max() / 20 + spread.max() ** 2 / 2
    np.testing.assert_allclose(np.mean(np.asarray(log_p), axis=0), exact, atol=tolerance)
    log_w = _gaussian_model_log_w(keys[0], x, k=200, proposal_sd=2.0)
    mean, mean_stderr = metrics.is_log_likelihood(log_w)
    assert abs(float(mean) - np.mean(exact)) < 4 * float(mean_stderr)


def test_is_log_likelihood_single_dominant_weight():
    # One weight carries everything: p_hat = w_max / k and relative variance 1.
    log_w = jnp.array([[0.0, -1e4, -1e4, -1e4]])
    log_p, stderr = metrics.is_log_likelihood_per_example(log_w)
    assert float(log_p[0]) == pytest.approx(-math.log(4))
    assert float(stderr[0]) == pytest.approx(1.0, rel=1e-6)


def test_is_log_likelihood_needs_two_samples():
    with pytest.raises(ValueError, match="k >= 2"):
        metrics.is_log_likelihood(jnp.zeros((3, 1)))
