"""ESS and split R-hat on chains with known answers."""

import math

import numpy as np
import pytest

from gmjax import metrics


def _ar1(rng, rho, chains, draws, dim):
    """Stationary AR(1) chains x_t = rho x_{t-1} + sqrt(1 - rho^2) e_t."""
    x = np.empty((chains, draws, dim))
    x[:, 0] = rng.normal(size=(chains, dim))
    noise = rng.normal(size=(chains, draws, dim)) * math.sqrt(1 - rho**2)
    for t in range(1, draws):
        x[:, t] = rho * x[:, t - 1] + noise[:, t]
    return x.astype(np.float32)


def test_iid_chains_have_ess_near_total_draws_and_rhat_near_one():
    rng = np.random.default_rng(0)
    samples = rng.normal(size=(4, 1000, 3)).astype(np.float32)
    ess = metrics.effective_sample_size(samples)
    assert ess.shape == (3,)
    np.testing.assert_allclose(ess / 4000, 1.0, atol=0.15)
    rhat = metrics.split_rhat(samples)
    assert rhat.shape == (3,)
    assert np.all(np.abs(rhat - 1.0) < 0.01)


def test_ar1_ess_matches_integrated_autocorrelation():
    # tau = (1 + rho) / (1 - rho) for AR(1), so ESS = M N (1 - rho) / (1 + rho).
    rho = 0.8
    samples = _ar1(np.random.default_rng(1), rho, 4, 5000, 2)
    expected = 4 * 5000 * (1 - rho) / (1 + rho)
    np.testing.assert_allclose(metrics.effective_sample_size(samples), expected, rtol=0.2)
    np.testing.assert_allclose(
        metrics.effective_sample_size(samples, split=False), expected, rtol=0.2
    )


def test_rhat_for_chains_at_different_means():
    # Chain c ~ N(c, 1): after splitting, B / n is the variance of the means
    # (0, 0, 1, 1, 2, 2, 3, 3), 10/7, and W is 1, so R-hat = sqrt((n-1)/n + 10/7).
    rng = np.random.default_rng(2)
    samples = (rng.normal(size=(4, 2000, 1)) + np.arange(4)[:, None, None]).astype(np.float32)
    rhat = metrics.split_rhat(samples)
    assert rhat.shape == (1,)
    assert float(rhat[0]) == pytest.approx(math.sqrt(999 / 1000 + 10 / 7), rel=0.03)


def test_split_rhat_sees_drift_within_chains():
    # Every chain moves from N(0, 1) to N(2, 1) halfway: the chains agree with
    # each other, but their halves do not. Split means (0 x4, 2 x4) have
    # variance 8/7, so R-hat = sqrt((n-1)/n + 8/7).
    rng = np.random.default_rng(3)
    samples = rng.normal(size=(4, 2000, 1))
    samples[:, 1000:] += 2.0
    rhat = float(metrics.split_rhat(samples.astype(np.float32))[0])
    assert rhat == pytest.approx(math.sqrt(999 / 1000 + 8 / 7), rel=0.03)


def test_split_chains_layout():
    samples = np.arange(2 * 5 * 1).reshape(2, 5, 1)
    np.testing.assert_array_equal(
        metrics.split_chains(samples)[..., 0], [[0, 1], [5, 6], [2, 3], [7, 8]]
    )


def test_too_few_draws_raise():
    with pytest.raises(ValueError, match="at least 4 draws"):
        metrics.split_rhat(np.zeros((2, 3, 1), np.float32))
