"""MCMC baselines: moments on a Gaussian, PT on a bimodal mixture, the swap rule."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from gmjax.samplers import mcmc

# 2-D correlated Gaussian with known moments.
MEAN = np.array([1.0, -2.0])
COV = np.array([[1.0, 0.8], [0.8, 1.0]])
_PREC = jnp.asarray(np.linalg.inv(COV), jnp.float32)


def gaussian_log_prob(x):  # [2] -> [], unnormalized
    z = x - jnp.asarray(MEAN, jnp.float32)
    return -0.5 * z @ _PREC @ z


# 0.3 N(-4, 0.5^2) + 0.7 N(4, 0.5^2): two modes 16 sd apart.
WEIGHTS, MEANS, SD = np.array([0.3, 0.7]), np.array([-4.0, 4.0]), 0.5


def bimodal_log_prob(x):  # [1] -> []
    z = (x[0] - jnp.asarray(MEANS, jnp.float32)) / SD
    return jax.scipy.special.logsumexp(jnp.log(jnp.asarray(WEIGHTS, jnp.float32)) - 0.5 * z**2)


def bimodal_cdf(x):
    return sum(w * stats.norm.cdf(x, m, SD) for w, m in zip(WEIGHTS, MEANS))


GAUSS_RUN = dict(num_draws=2000, burn_in=500, thin=2)
GAUSS_INIT = 3.0 * jax.random.normal(jax.random.key(1), (8, 2))  # over-dispersed starts
MH_OPTIONS = dict(step_size=1.0)


@pytest.fixture(scope="module")
def mh_gaussian():
    return mcmc.run_mcmc("mh", gaussian_log_prob, jax.random.key(0), GAUSS_INIT, **GAUSS_RUN,
                         **MH_OPTIONS)


@pytest.mark.parametrize(
    "name, options",
    [
        ("mh", MH_OPTIONS),
        ("hmc", dict(step_size=0.3)),
        ("hmc", dict(step_size=0.5, num_integration_steps=5, inverse_mass_matrix=COV)),
    ],
)
def test_gaussian_moments(name, options, mh_gaussian):
    if name == "mh":
        result = mh_gaussian
    else:
        result = mcmc.run_mcmc(name, gaussian_log_prob, jax.random.key(0), GAUSS_INIT, **GAUSS_RUN,
                               **options)
    assert result.samples.shape == (8, 2000, 2)
    assert result.swap_rate is None
    assert 0.0 < float(result.acceptance_rate) < 1.0
    draws = np.asarray(result.samples, np.float64).reshape(-1, 2)
    np.testing.assert_allclose(draws.mean(0), MEAN, atol=0.1)
    np.testing.assert_allclose(np.cov(draws.T), COV, atol=0.12)
    summary = mcmc.effective_sample_size_summary(result.samples)
    assert summary["rhat_max"] < 1.05
    assert 500 < summary["ess_min"] <= summary["ess_mean"]


def test_same_key_same_samples(mh_gaussian):
    again = mcmc.run_mcmc("mh", gaussian_log_prob, jax.random.key(0), GAUSS_INIT, **GAUSS_RUN,
                          **MH_OPTIONS)
    np.testing.assert_array_equal(again.samples, mh_gaussian.samples)
    assert float(again.acceptance_rate) == float(mh_gaussian.acceptance_rate)
    other = mcmc.run_mcmc("mh", gaussian_log_prob, jax.random.key(5), GAUSS_INIT, **GAUSS_RUN,
                          **MH_OPTIONS)
    assert not np.allclose(other.samples, mh_gaussian.samples)


def test_burn_in_and_thinning_pick_the_right_iterations(mh_gaussian):
    # The key is split once per iteration whatever the phase, so the run with
    # burn-in b = 500 and thinning t = 2 must keep exactly the iterations
    # b + t, b + 2t, ... (1-based) of one unthinned run without burn-in.
    burn_in, thin, num_draws = GAUSS_RUN["burn_in"], GAUSS_RUN["thin"], GAUSS_RUN["num_draws"]
    full = mcmc.run_mcmc("mh", gaussian_log_prob, jax.random.key(0), GAUSS_INIT, burn_in=0,
                         thin=1, num_draws=burn_in + thin * num_draws, **MH_OPTIONS)
    assert full.samples.shape == (8, burn_in + thin * num_draws, 2)
    expected = full.samples[:, burn_in + thin - 1 :: thin]
    assert expected.shape == mh_gaussian.samples.shape
    np.testing.assert_allclose(mh_gaussian.samples, expected, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------
# Parallel tempering on the bimodal mixture, against plain MH
# ------------------------------------------------------------------------------

BIMODAL_INIT = jnp.full((16, 1), -4.0)  # every chain starts in the light left mode
BIMODAL_RUN = dict(num_draws=250, burn_in=1000, thin=20)  # 4,000 pooled draws


def test_parallel_tempering_samples_the_bimodal_mixture():
    # 8 levels rather than the default 10: the same sampler, but XLA:CPU
    # compiles it in half the time (the default ladder is checked below).
    betas = mcmc.geometric_ladder(0.05, 8)
    result = mcmc.run_mcmc("pt", bimodal_log_prob, jax.random.key(0), BIMODAL_INIT, **BIMODAL_RUN,
                           betas=betas)
    assert result.samples.shape == (16, 250, 1)
    assert 0.0 < float(result.acceptance_rate) < 1.0
    assert 0.0 < float(result.swap_rate) < 1.0
    # Thinned by 20, the pooled draws are nearly independent (ESS ~ 2,500-3,000
    # of 4,000), which the KS test assumes.
    assert mcmc.effective_sample_size_summary(result.samples)["ess_min"] > 1500
    draws = np.asarray(result.samples, np.float64).ravel()
    assert stats.kstest(draws, bimodal_cdf).pvalue > 0.01
    assert abs(np.mean(draws > 0) - 0.7) < 0.03


def test_plain_mh_misses_the_other_mode():
    # The contrast that gives the PT test its meaning: the same budget of plain
    # random-walk moves never leaves the left mode.
    result = mcmc.run_mcmc("mh", bimodal_log_prob, jax.random.key(0), BIMODAL_INIT, **BIMODAL_RUN,
                           step_size=0.5)
    draws = np.asarray(result.samples, np.float64).ravel()
    assert np.mean(draws > 0) < 0.05
    assert stats.kstest(draws, bimodal_cdf).pvalue < 1e-6


# ------------------------------------------------------------------------------
# The swap rule
# ------------------------------------------------------------------------------


def test_swap_log_acceptance_hand_computed():
    betas = jnp.array([0.5, 1.0])
    # Hot level holds the better point: handing it to beta = 1 is always accepted,
    # log r = (0.5 - 1)(-3 - (-1)) = 1.
    np.testing.assert_allclose(mcmc.swap_log_acceptance(betas, jnp.array([-1.0, -3.0])), [1.0])
    # Hot level holds the worse point: log r = (0.5 - 1)(-1 - (-3)) = -1.
    np.testing.assert_allclose(mcmc.swap_log_acceptance(betas, jnp.array([-3.0, -1.0])), [-1.0])
    # Three levels: (0.25 - 0.5)(-4 + 2) = 0.5 and (0.5 - 1)(-1 + 4) = -1.5.
    np.testing.assert_allclose(
        mcmc.swap_log_acceptance(jnp.array([0.25, 0.5, 1.0]), jnp.array([-2.0, -4.0, -1.0])),
        [0.5, -1.5],
    )


def test_replica_exchange_two_levels_swaps_with_hand_computed_probability():
    betas, log_probs = jnp.array([0.5, 1.0]), jnp.array([-3.0, -1.0])
    keys = jax.random.split(jax.random.key(3), 20000)
    exchange = jax.jit(jax.vmap(mcmc.replica_exchange, in_axes=(0, None, None, None)))
    perm, accept_prob, proposed = exchange(keys, betas, log_probs, 0)
    np.testing.assert_allclose(accept_prob[0], [math.exp(-1.0)], rtol=1e-6)
    assert bool(jnp.all(proposed[:, 0]))
    swapped = np.asarray(perm[:, 0] == 1)
    assert set(map(tuple, np.asarray(perm).tolist())) == {(0, 1), (1, 0)}
    # Binomial sd is sqrt(e^-1 (1 - e^-1) / 20000) ~ 0.0034.
    assert abs(swapped.mean() - math.exp(-1.0)) < 0.015
    # Odd rounds propose no pair on a 2-level ladder.
    perm_odd, _, proposed_odd = exchange(keys[:100], betas, log_probs, 1)
    assert not bool(jnp.any(proposed_odd))
    np.testing.assert_array_equal(perm_odd, np.tile([0, 1], (100, 1)))


def test_replica_exchange_even_odd_pairs():
    betas = jnp.array([0.2, 0.4, 0.7, 1.0])
    log_probs = jnp.zeros(4)  # every swap is accepted
    perm, _, proposed = mcmc.replica_exchange(jax.random.key(0), betas, log_probs, 0)
    np.testing.assert_array_equal(proposed, [True, False, True])
    np.testing.assert_array_equal(perm, [1, 0, 3, 2])
    perm, _, proposed = mcmc.replica_exchange(jax.random.key(0), betas, log_probs, 1)
    np.testing.assert_array_equal(proposed, [False, True, False])
    np.testing.assert_array_equal(perm, [0, 2, 1, 3])


def test_parallel_tempering_defaults():
    sampler = mcmc.parallel_tempering(gaussian_log_prob)
    state = sampler.init(jnp.zeros(2))
    assert isinstance(state, mcmc.PTState) and int(state.iteration) == 0
    levels = state.levels
    np.testing.assert_array_equal(levels.position, np.zeros((10, 2)))  # one replica per level
    betas = np.asarray(mcmc.geometric_ladder())
    np.testing.assert_allclose(levels.logdensity, betas * float(gaussian_log_prob(jnp.zeros(2))),
                               rtol=1e-6)
    np.testing.assert_array_equal(sampler.position(state), np.zeros(2))
    assert sampler.has_swaps
    state, info = jax.jit(sampler.step)(jax.random.key(0), state)
    assert isinstance(info, mcmc.PTInfo) and int(state.iteration) == 1
    assert info.level_acceptance_rate.shape == (10,)
    assert float(info.swaps_proposed) == 5  # the even pairs of 10 levels, swap_every=1


def test_geometric_ladder():
    betas = np.asarray(mcmc.geometric_ladder(0.05, 10))
    assert betas.shape == (10,)
    assert betas[0] == pytest.approx(0.05) and betas[-1] == 1.0
    ratios = betas[1:] / betas[:-1]
    np.testing.assert_allclose(ratios, 0.05 ** (-1 / 9), rtol=1e-5)
    with pytest.raises(ValueError):
        mcmc.geometric_ladder(1.5, 10)
    with pytest.raises(ValueError):
        mcmc.geometric_ladder(0.1, 1)


# ------------------------------------------------------------------------------
# Errors and the summary helper
# ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, kwargs, match",
    [
        ("nuts", {}, "unknown MCMC sampler 'nuts'; valid choices: hmc, mh, pt"),
        ("pt", dict(betas=[0.1, 0.5, 0.3, 1.0]), "strictly increasing"),
        ("pt", dict(betas=[0.1, 0.5, 0.9]), "last beta must be 1"),
        ("pt", dict(betas=[0.0, 1.0]), "positive"),
        ("pt", dict(kernel="nuts"), "unknown pt base kernel"),
        ("pt", dict(step_size=[0.1, 0.2]), "one per level"),
        ("pt", dict(swap_every=0), "swap_every"),
        ("mh", dict(step_size=0.0), "step_size must be finite and positive"),
        ("hmc", dict(step_size=-0.1), "step_size must be finite and positive"),
        ("hmc", dict(num_integration_steps=0), "num_integration_steps"),
        ("mh", dict(num_draws=0), "num_draws"),
        ("mh", dict(thin=0), "thin"),
        ("mh", dict(burn_in=-1), "burn_in"),
    ],
)
def test_bad_arguments_raise(name, kwargs, match):
    kwargs = dict(kwargs)
    run = dict(num_draws=kwargs.pop("num_draws", 10), burn_in=kwargs.pop("burn_in", 0),
               thin=kwargs.pop("thin", 1))
    with pytest.raises(ValueError, match=match):
        mcmc.run_mcmc(name, gaussian_log_prob, jax.random.key(0), GAUSS_INIT, **run, **kwargs)


def test_effective_sample_size_summary_on_iid_draws():
    samples = np.random.default_rng(0).normal(size=(4, 1000, 3)).astype(np.float32)
    summary = mcmc.effective_sample_size_summary(samples)
    assert set(summary) == {"ess_min", "ess_mean", "rhat_max"}
    assert 3000 < summary["ess_min"] <= summary["ess_mean"] < 5000
    assert summary["rhat_max"] < 1.01
