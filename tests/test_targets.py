"""Synthetic targets: the circle / grid / cross mixtures and the Clayton copula.

Densities against closed forms written independently here (scipy's
multivariate normal, the bivariate Clayton density, a float64 numpy copula),
normalization on fine grids, and the exact samplers against their marginals
(KS), dependence (Kendall's tau) and mode weights.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize, stats

from gmjax.metrics.modes import mode_metrics
from gmjax.targets import (TARGETS, ClaytonTarget, GaussianMixtureTarget, Modes, Tempered,
                           build_target)

MIXTURES = ("circle", "grid", "cross")
THETA = 2.0


def _sample(target, seed, n):
    return np.asarray(jax.jit(lambda k: target.sample(seed=k, sample_shape=n))(
        jax.random.PRNGKey(seed)))


# ---------------------------------------------------------------------------- registry


def test_registry_names_and_unknown_name():
    assert {"circle", "grid", "cross", "clayton"} <= set(TARGETS.names())
    for name in MIXTURES:
        t = build_target(name)
        assert isinstance(t, GaussianMixtureTarget) and t.dim == 2 and t.name == name
        assert t.log_normalizer == 0.0
    c = build_target("clayton", dim=16)
    assert isinstance(c, ClaytonTarget) and c.dim == 16 and c.num_modes == 256
    assert build_target("clayton").dim == 8
    with pytest.raises(ValueError, match="circle"):
        build_target("circel")


def test_mixture_layouts():
    circle = build_target("circle")
    angles = 2 * np.pi * np.arange(8) / 8
    np.testing.assert_allclose(circle.means, 5 * np.stack([np.cos(angles), np.sin(angles)], 1),
                               atol=1e-6)
    grid = build_target("grid").modes()
    assert grid.centres.shape == (25, 2) and float(grid.sd) == pytest.approx(0.3)
    cross = build_target("cross")
    modes = cross.modes()
    assert cross.num_components == 8 and modes.centres.shape == (4, 2)
    assert set(map(tuple, np.abs(np.asarray(modes.centres)))) == {(3.0, 3.0)}
    np.testing.assert_allclose(modes.weights, 0.25)
    assert float(modes.sd) == 1.0


# ---------------------------------------------------------------------------- mixtures


@pytest.mark.parametrize("name", MIXTURES)
def test_mixture_integrates_to_one(name):
    target = build_target(name)
    h = 0.02
    ticks = jnp.arange(-10.0, 10.0 + h / 2, h)  # [1001]
    integral = jax.jit(lambda t: jnp.sum(jnp.exp(target.log_prob(
        jnp.stack(jnp.meshgrid(t, t), -1)))) * h * h)(ticks)
    assert abs(float(integral) - 1.0) < 1e-3


@pytest.mark.parametrize("name", MIXTURES)
def test_mixture_log_prob_matches_scipy(name):
    target = build_target(name)
    rng = np.random.default_rng(0)
    x = rng.uniform(-8, 8, size=(200, 2))
    means = np.asarray(target.means, np.float64)
    chol = np.asarray(target.chol, np.float64)
    w = np.asarray(target.weights, np.float64)
    expected = np.log(sum(w[k] * stats.multivariate_normal(means[k], chol[k] @ chol[k].T).pdf(x)
                          for k in range(len(w))))
    log_prob = jax.jit(target.log_prob)
    np.testing.assert_allclose(log_prob(x), expected, rtol=1e-5, atol=1e-4)
    # A single point [d] gives a scalar.
    assert log_prob(x[0]).shape == ()
    assert float(log_prob(x[0])) == pytest.approx(expected[0], rel=1e-5)


@pytest.mark.parametrize("name", MIXTURES)
def test_mixture_exact_samples(name):
    target = build_target(name)
    n = 20_000
    x = _sample(target, 1, n)
    assert x.shape == (n, 2) and x.dtype == np.float32
    # Moments: within 5 standard errors (Gaussian approximation of the SE).
    mean, cov = np.asarray(target.mean()), np.asarray(target.covariance())
    se_mean = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(x.mean(0) - mean) < 5 * se_mean)
    se_cov = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov ** 2) / n)
    assert np.all(np.abs(np.cov(x.T) - cov) < 5 * se_cov)
    # Modes: all captured, weights right.
    m = mode_metrics(x, *target.modes())
    assert int(m.modes_captured) == len(target.modes().weights)
    assert float(m.mode_weight_tv) < 0.02
    assert float(m.high_quality_frac) > 0.95


def test_mixture_covariances_and_weights():
    means = np.array([[0.0, 0.0], [4.0, -1.0]])
    covs = np.array([[[1.0, 0.3], [0.3, 0.5]], [[0.2, 0.0], [0.0, 2.0]]])
    target = GaussianMixtureTarget(means, covs, weights=[3.0, 1.0])
    x = np.random.default_rng(1).normal(size=(50, 2)) * 3
    expected = np.log(0.75 * stats.multivariate_normal(means[0], covs[0]).pdf(x)
                      + 0.25 * stats.multivariate_normal(means[1], covs[1]).pdf(x))
    np.testing.assert_allclose(target.log_prob(x), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(target.modes().sd, np.sqrt([0.75, 1.1]), rtol=1e-6)
    with pytest.raises(ValueError):
        GaussianMixtureTarget(means)  # neither covariances nor scale


def test_tempered_scales_log_prob():
    target = build_target("circle")
    x = jnp.asarray(np.random.default_rng(2).normal(size=(7, 2)) * 4, jnp.float32)
    for beta in (0.1, 0.5, 1.0):
        tempered = Tempered(target, beta)
        np.testing.assert_allclose(tempered.log_prob(x), beta * target.log_prob(x), rtol=1e-6)
        np.testing.assert_allclose(tempered.energy(x), -beta * target.log_prob(x), rtol=1e-6)


@pytest.mark.parametrize("name", MIXTURES)
def test_mixture_jit_grad_finite(name):
    target = build_target(name)
    x = jnp.array([[0.0, 0.0], [3.0, -3.0], [50.0, -40.0], [-100.0, 100.0]], jnp.float32)
    # The target passes through jit as an argument (distrax Jittable).
    lp, grad = jax.jit(lambda t, y: (t.log_prob(y), jax.vmap(jax.grad(t.log_prob))(y)))(
        target, x)
    assert grad.shape == (4, 2) and bool(jnp.all(jnp.isfinite(grad)))
    assert bool(jnp.all(jnp.isfinite(lp)))
    # Far out the gradient -Sigma^{-1}(x - mu) of the nearest component points back.
    assert float(grad[3, 0]) > 0 and float(grad[3, 1]) < 0
    assert jax.eval_shape(target.log_prob, jax.ShapeDtypeStruct((2,), jnp.float32)).shape == ()


# ---------------------------------------------------------------------------- clayton


def _mixture_cdf_pdf(x, w=(0.7, 0.3), locs=(-1.0, 1.0), s=0.2):
    """F and f of the bimodal marginal, float64 numpy."""
    x = np.asarray(x, np.float64)[..., None]
    return (np.sum(np.asarray(w) * stats.norm.cdf((x - np.asarray(locs)) / s), -1),
            np.sum(np.asarray(w) * stats.norm.pdf((x - np.asarray(locs)) / s), -1) / s)


def _bivariate_clayton_log_density(u, v, theta):
    """c(u, v) = (1 + theta) (uv)^{-1-theta} (u^{-theta} + v^{-theta} - 1)^{-2-1/theta}."""
    return (np.log1p(theta) - (1 + theta) * np.log(u * v)
            - (2 + 1 / theta) * np.log(u ** -theta + v ** -theta - 1))


@pytest.mark.parametrize("num_bimodal, theta", [(2, THETA), (1, 0.7)])
def test_clayton_2d_matches_bivariate_closed_form(num_bimodal, theta):
    target = ClaytonTarget(dim=2, theta=theta, num_bimodal=num_bimodal)
    assert target.num_modes == 2 ** num_bimodal
    x = np.random.default_rng(3).uniform(-1.6, 1.6, size=(300, 2))
    if num_bimodal == 2:
        (u, f1), (v, f2) = _mixture_cdf_pdf(x[:, 0]), _mixture_cdf_pdf(x[:, 1])
    else:
        (u, f1) = _mixture_cdf_pdf(x[:, 0])
        v, f2 = stats.norm.cdf(x[:, 1], scale=0.5), stats.norm.pdf(x[:, 1], scale=0.5)
    expected = _bivariate_clayton_log_density(u, v, theta) + np.log(f1 * f2)
    np.testing.assert_allclose(jax.jit(target.log_prob)(jnp.asarray(x, jnp.float32)), expected,
                               rtol=1e-4, atol=2e-3)


def test_clayton_2d_integrates_to_one():
    target = ClaytonTarget(dim=2, theta=THETA)
    h = 0.005
    ticks = jnp.arange(-3.0, 3.0 + h / 2, h)  # [1201]
    integral = jax.jit(lambda t: jnp.sum(jnp.exp(target.log_prob(
        jnp.stack(jnp.meshgrid(t, t), -1)))) * h * h)(ticks)
    assert abs(float(integral) - 1.0) < 1e-2


def test_clayton_mixture_quantile_inverts_the_cdf():
    target = ClaytonTarget(dim=8, theta=THETA)
    log_u = np.array([-60.0, -20.0, np.log(1e-6), np.log(0.2), np.log(0.5), np.log(0.7),
                      np.log(0.71), np.log1p(-1e-3), np.log1p(-1e-7)])
    log_1mu = np.log(-np.expm1(log_u))
    x = np.asarray(target._mixture_quantile(jnp.asarray(log_u, jnp.float32),
                                            jnp.asarray(log_1mu, jnp.float32)))
    for lu, l1, xi in zip(log_u, log_1mu, x):
        if lu < np.log(0.5):
            def g(t):
                return np.log(0.7 * stats.norm.cdf((t + 1) / 0.2)
                              + 0.3 * stats.norm.cdf((t - 1) / 0.2)) - lu
        else:
            def g(t):
                return l1 - np.log(0.7 * stats.norm.sf((t + 1) / 0.2)
                                   + 0.3 * stats.norm.sf((t - 1) / 0.2))
        root = optimize.brentq(g, -8.0, 8.0, xtol=1e-12)
        # Near x = 0 the CDF is flat (f(0) ~ 1e-5), so x is ill-conditioned:
        # there the tail probability must match instead.
        assert abs(xi - root) < 1e-5 or abs(g(float(xi))) < 1e-6, (lu, xi, root)


@pytest.fixture(scope="module")
def clayton8():
    target = ClaytonTarget(dim=8, theta=THETA)
    return target, _sample(target, 5, 20_000)


@pytest.fixture(scope="module")
def clayton64():
    target = build_target("clayton", dim=64)
    return target, _sample(target, 6, 20_000)


def _marginal_uniforms(x, num_bimodal=8):
    fb, _ = _mixture_cdf_pdf(x[:, :num_bimodal])
    return np.concatenate([fb, stats.norm.cdf(x[:, num_bimodal:], scale=0.5)], 1)


def test_clayton_sampler_general_theta():
    """theta = 0.7 draws V by ``loggamma`` (theta = 2 by chi^2_1 / 2)."""
    theta = 0.7
    target = ClaytonTarget(dim=2, theta=theta, num_bimodal=1)
    x = _sample(target, 10, 5000)
    u = _marginal_uniforms(x, num_bimodal=1)
    for j in range(2):
        assert stats.kstest(u[:, j], "uniform").pvalue > 0.01, j
    tau = stats.kendalltau(x[:, 0], x[:, 1]).statistic
    assert abs(tau - theta / (theta + 2)) < 0.03, tau


@pytest.mark.parametrize("fixture, columns", [("clayton8", (0, 3, 7)),
                                              ("clayton64", (1, 8, 35, 63))])
def test_clayton_samples_marginals_and_dependence(fixture, columns, request):
    target, x = request.getfixturevalue(fixture)
    assert x.shape == (20_000, target.dim) and np.all(np.isfinite(x))
    u = _marginal_uniforms(x)
    for j in columns:  # F_j(X_j) ~ Uniform(0, 1)
        assert stats.kstest(u[:, j], "uniform").pvalue > 0.01, j
    # Kendall's tau of any pair is theta / (theta + 2), whatever the marginals.
    for j, k in itertools.combinations(columns[:3], 2):
        tau = stats.kendalltau(x[:5000, j], x[:5000, k]).statistic
        assert abs(tau - THETA / (THETA + 2)) < 0.03, (j, k, tau)
    # P(x_j > 0) = 1 - F(0) ~= 0.3 on the bimodal coordinates.
    np.testing.assert_allclose((x[:, :8] > 0).mean(0), 0.3, atol=0.02)


@pytest.mark.parametrize("fixture", ["clayton8", "clayton64"])
def test_clayton_all_256_patterns(fixture, request):
    target, x = request.getfixturevalue(fixture)
    patterns = np.asarray(target.sign_patterns(x))
    assert len(np.unique(patterns)) == 256
    modes = target.modes()
    assert isinstance(modes, Modes) and modes.centres.shape == (256, target.dim)
    m = mode_metrics(x, *modes)
    # The nearest centre is the sign pattern.
    np.testing.assert_array_equal(np.asarray(m.assignment), patterns)
    assert int(m.modes_captured) == 256 and float(m.high_quality_frac) > 0.99
    assert float(m.mode_weight_tv) < 0.05
    # By number of positive signs (9 classes) the weights are sharp.
    w = np.asarray(target.pattern_weights(), np.float64)
    positives = np.array([bin(k).count("1") for k in range(256)])
    expected = np.bincount(positives, weights=w, minlength=9)
    observed = np.bincount(positives[patterns], minlength=9) / len(patterns)
    assert 0.5 * np.abs(observed - expected).sum() < 0.015
    # The negative signs are the pattern's zero bits.
    np.testing.assert_array_equal(np.asarray(target.negative_counts(x)), 8 - positives[patterns])


def test_clayton_pattern_weights():
    target = ClaytonTarget(dim=8, theta=THETA)
    w = np.asarray(target.pattern_weights(), np.float64)
    assert w.shape == (256,) and abs(w.sum() - 1) < 1e-6
    # Marginal P(x_j > 0) = 1 - F(0).
    bits = (np.arange(256)[:, None] >> np.arange(8)) & 1
    np.testing.assert_allclose(bits.T @ w, 1 - _mixture_cdf_pdf(0.0)[0], rtol=1e-5)
    # Not the product weights: the copula favours the concordant patterns.
    assert w[0] == pytest.approx(0.32745, abs=1e-4) and w[255] == pytest.approx(0.04334, abs=1e-4)
    assert w.min() > 1e-3
    # Two coordinates: P(both <= 0) = C(u0, u0) = (2 u0^{-theta} - 1)^{-1/theta}.
    u0 = _mixture_cdf_pdf(0.0)[0]
    w2 = np.asarray(ClaytonTarget(dim=2, theta=THETA).pattern_weights(), np.float64)
    assert w2[0] == pytest.approx((2 * u0 ** -THETA - 1) ** (-1 / THETA), rel=1e-5)
    assert w2[1] == pytest.approx(w2[2]) and w2.sum() == pytest.approx(1.0)
    # Monte Carlo from exact draws agrees.
    est = np.asarray(target.estimate_pattern_weights(jax.random.PRNGKey(7), n=400_000,
                                                     batch_size=400_000))
    assert 0.5 * np.abs(est - w).sum() < 0.012  # sampling error ~0.008


def _clayton_log_density_f64(x, theta=THETA, num_bimodal=8):
    """The textbook log density in float64 numpy: log c(F(x)) + sum_j log f_j(x_j)."""
    p = x.shape[-1]
    fb, pb = _mixture_cdf_pdf(x[..., :num_bimodal])
    fn = stats.norm.cdf(x[..., num_bimodal:], scale=0.5)
    pn = stats.norm.pdf(x[..., num_bimodal:], scale=0.5)
    u, f = np.concatenate([fb, fn], -1), np.concatenate([pb, pn], -1)
    log_c = (np.sum(np.log1p(theta * np.arange(p))) - (1 + theta) * np.sum(np.log(u), -1)
             - (p + 1 / theta) * np.log(np.sum(u ** -theta, -1) - p + 1))
    return log_c + np.sum(np.log(f), -1)


@pytest.fixture(scope="module")
def clayton64_evaluated(clayton64):
    """log_prob and its gradient at 400 samples, 20 points in [-3, 3]^64 and 6 far points."""
    target, samples = clayton64
    rng = np.random.default_rng(9)
    far = np.array([np.full(64, 8.0), np.full(64, -8.0), np.full(64, 10.0), np.full(64, -10.0),
                    np.where(np.arange(64) % 2 == 0, 8.0, -8.0), rng.uniform(-10, 10, 64)])
    x = np.concatenate([samples[:400], rng.uniform(-3, 3, size=(20, 64)), far]).astype(np.float32)
    lp, grad = jax.jit(lambda y: (target.log_prob(y), jax.vmap(jax.grad(target.log_prob))(y)))(x)
    return target, x, np.asarray(lp), np.asarray(grad)


def test_clayton64_log_prob_matches_float64_formula(clayton64_evaluated):
    """The stable log-space evaluation against the textbook formula in float64."""
    target, x, lp, grad = clayton64_evaluated
    expected = _clayton_log_density_f64(x[:420].astype(np.float64))
    np.testing.assert_allclose(lp[:420], expected, rtol=1e-4, atol=5e-3)
    # Gradients against central differences of the float64 formula.
    h = 1e-5
    for i in (0, 1, 400, 401):
        point, steps = x[i].astype(np.float64), h * np.eye(64)
        fd = (_clayton_log_density_f64(point + steps)
              - _clayton_log_density_f64(point - steps)) / (2 * h)
        np.testing.assert_allclose(grad[i], fd, rtol=2e-3, atol=2e-3 * np.abs(fd).max())


def test_clayton64_log_prob_and_grad_finite(clayton64_evaluated):
    target, x, lp, grad = clayton64_evaluated
    assert lp.dtype == np.float32 and lp.shape == (426,) and grad.shape == (426, 64)
    assert np.all(np.isfinite(lp)) and np.all(np.isfinite(grad))
    # A single point [p] gives a scalar; far points have far lower density.
    assert jax.eval_shape(target.log_prob, jax.ShapeDtypeStruct((64,), jnp.float32)).shape == ()
    assert lp[420:].max() < lp[:400].min()
    # The bimodal coordinates are pulled back towards the bulk. (Not all of
    # them: at x = -8 the lower-tail dependence makes the normal coordinates'
    # gradient negative: 32 - (1 + theta) f(-8) / F(-8) ~= 32 - 3 * 32.1.)
    assert np.all(grad[420, :8] < 0) and np.all(grad[421, :8] > 0)
    mills = np.exp(stats.norm.logpdf(-16.0) - stats.norm.logcdf(-16.0)) / 0.5
    np.testing.assert_allclose(grad[421, 8:], 32.0 - (1 + THETA) * mills, rtol=1e-4)
