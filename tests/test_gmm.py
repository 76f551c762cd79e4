"""EM for Gaussian mixtures: recovers a known mixture, increases the likelihood, agrees with sklearn."""

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from gmjax.models.gmm import GaussianMixture, fit_gmm, log_prob, sample

TRUE = GaussianMixture(
    log_weights=jnp.log(jnp.array([0.5, 0.3, 0.2])),
    means=jnp.array([[-4.0, 0.0], [3.0, 3.0], [3.0, -3.0]]),
    cholesky=jnp.linalg.cholesky(jnp.array([[[1.0, 0.5], [0.5, 1.0]],
                                            [[0.5, 0.0], [0.0, 2.0]],
                                            [[1.5, -0.7], [-0.7, 1.0]]])))


def test_log_prob_matches_the_explicit_mixture_density():
    x = jax.random.normal(jax.random.PRNGKey(0), (5, 2)) * 3
    cov = TRUE.cholesky @ jnp.swapaxes(TRUE.cholesky, -1, -2)
    dens = sum(jnp.exp(TRUE.log_weights[k]) *
               jax.scipy.stats.multivariate_normal.pdf(x, TRUE.means[k], cov[k]) for k in range(3))
    np.testing.assert_allclose(log_prob(TRUE, x), jnp.log(dens), rtol=1e-5)


def test_em_recovers_a_known_mixture_and_never_decreases_the_likelihood():
    x = sample(TRUE, jax.random.PRNGKey(1), 8_000)
    fitted, trace = fit_gmm(jax.random.PRNGKey(2), x, num_components=3, num_iters=60)
    assert np.all(np.diff(np.asarray(trace)) > -1e-5)
    order = np.argsort(np.asarray(fitted.means[:, 0] * 10 + fitted.means[:, 1]))
    true_order = np.argsort(np.asarray(TRUE.means[:, 0] * 10 + TRUE.means[:, 1]))
    np.testing.assert_allclose(np.exp(fitted.log_weights)[order], np.exp(TRUE.log_weights)[true_order],
                               atol=0.02)
    np.testing.assert_allclose(fitted.means[order], TRUE.means[true_order], atol=0.08)
    # Mean log-likelihood within Monte Carlo error of the true density's on the same data.
    assert abs(float(trace[-1]) - float(jnp.mean(log_prob(TRUE, x)))) < 0.01  # fit on x itself


def test_em_agrees_with_sklearn_on_held_out_likelihood():
    data = np.asarray(sample(TRUE, jax.random.PRNGKey(3), 6_000))
    train, test = data[:5_000], data[5_000:]
    fitted, _ = fit_gmm(jax.random.PRNGKey(4), jnp.asarray(train), num_components=3)
    sk = SkGaussianMixture(3, covariance_type="full", random_state=0).fit(train)
    ours = float(jnp.mean(log_prob(fitted, jnp.asarray(test))))
    assert abs(ours - sk.score(test)) < 0.01
