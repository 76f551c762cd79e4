"""MMD, energy distance, the blocked pair sums, the median heuristic, `adjusted`, METRICS."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import cdist, pdist

from gmjax import metrics

REPS = 10  # independent data sets per Monte Carlo check
# Shapes shared by the small exact checks, so jit compiles once for them.
N_SMALL, M_SMALL = 37, 29


def _small_samples(seed, dim=2):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N_SMALL, dim)).astype(np.float32)
    y = (rng.normal(size=(M_SMALL, dim)) * 1.3 + 0.2).astype(np.float32)
    return x, y


def _gaussian_pairs(seed, n, m, mean):
    """REPS pairs (x ~ N(0, I), y ~ N(mean, I)) in d = len(mean) dimensions."""
    rng = np.random.default_rng(seed)
    mean = np.asarray(mean, np.float32)
    for _ in range(REPS):
        x = rng.normal(size=(n, mean.size)).astype(np.float32)
        y = (rng.normal(size=(m, mean.size)) + mean).astype(np.float32)
        yield x, y


def _assert_mc_mean(estimates, expected, num_se=4.0):
    """The mean of REPS independent estimates is within num_se standard errors of `expected`."""
    estimates = np.asarray(estimates, np.float64)
    se = estimates.std(ddof=1) / math.sqrt(estimates.size)
    assert abs(estimates.mean() - expected) < num_se * se, (estimates.mean(), expected, se)
    return se


# --- closed forms -----------------------------------------------------------


def _rbf_mean_kernel(sigma, mean_diff):
    """E exp(-|X - Y|^2 / (2 sigma^2)) for X ~ N(a, I_d), Y ~ N(b, I_d), a - b = mean_diff.

    X - Y ~ N(delta, 2 I_d); per coordinate E exp(-z^2 / (2 sigma^2)) with
    z ~ N(delta_k, s^2) is sqrt(sigma^2 / (sigma^2 + s^2)) exp(-delta_k^2 / (2 (sigma^2 + s^2))).
    """
    mean_diff = np.asarray(mean_diff, np.float64)
    d = mean_diff.size
    return (sigma**2 / (sigma**2 + 2.0)) ** (d / 2) * math.exp(
        -np.sum(mean_diff**2) / (2.0 * (sigma**2 + 2.0))
    )


def _mmd2_gaussians(sigma, mean_diff):
    same = _rbf_mean_kernel(sigma, np.zeros_like(np.asarray(mean_diff)))
    return 2.0 * same - 2.0 * _rbf_mean_kernel(sigma, mean_diff)


def _abs_normal_mean(m, s):
    """E|N(m, s^2)| = s sqrt(2/pi) exp(-m^2 / (2 s^2)) + m (1 - 2 Phi(-m / s))."""
    return s * math.sqrt(2 / math.pi) * math.exp(-(m**2) / (2 * s**2)) + m * (
        1 - 2 * stats.norm.cdf(-m / s)
    )


def test_rbf_mean_kernel_closed_form_against_quadrature():
    # The closed form itself, checked by 1-D numerical integration.
    from scipy import integrate

    sigma, delta = 0.7, 1.3
    value, _ = integrate.quad(
        lambda z: math.exp(-(z**2) / (2 * sigma**2)) * stats.norm.pdf(z, delta, math.sqrt(2)),
        -30,
        30,
    )
    assert value == pytest.approx(_rbf_mean_kernel(sigma, [delta]), rel=1e-8)


def test_mmd_same_distribution_is_unbiased_zero():
    estimates = [metrics.mmd_rbf(x, y, 1.0) for x, y in _gaussian_pairs(0, 400, 300, [0.0, 0.0])]
    se = _assert_mc_mean(estimates, 0.0)
    # The biased V-statistic would sit about (1 - E k(X, X')) (1/n + 1/m) above 0.
    v_bias = (1 - _rbf_mean_kernel(1.0, [0.0, 0.0])) * (1 / 400 + 1 / 300)
    assert v_bias > 4 * se


@pytest.mark.parametrize("sigma, mean", [(1.0, [1.0, 0.0]), (1.5, [0.6, -0.8, 0.3])])
def test_mmd_between_gaussians_matches_closed_form(sigma, mean):
    expected = _mmd2_gaussians(sigma, mean)
    estimates = [metrics.mmd_rbf(x, y, sigma) for x, y in _gaussian_pairs(1, 400, 300, mean)]
    _assert_mc_mean(estimates, expected)
    assert np.mean(estimates) == pytest.approx(expected, rel=0.1)


def test_mmd_mixture_is_mean_of_single_bandwidth_mmds():
    x, y = _small_samples(2)
    bandwidths = jnp.array([0.3, 1.0, 2.5])
    mixture = metrics.mmd_rbf_mixture(x, y, bandwidths)
    singles = [metrics.mmd_rbf(x, y, s) for s in bandwidths]
    np.testing.assert_allclose(mixture, np.mean(singles), rtol=1e-5, atol=1e-7)


def test_mmd_mixture_default_uses_median_scales():
    x, y = _small_samples(3)
    sigma = metrics.median_heuristic(x, y)
    explicit = metrics.mmd_rbf_mixture(x, y, sigma * jnp.array(metrics.DEFAULT_BANDWIDTH_SCALES))
    np.testing.assert_allclose(metrics.mmd_rbf_mixture(x, y), explicit, rtol=1e-6)


def test_mmd_median_uses_median_heuristic():
    x, y = _small_samples(4)
    np.testing.assert_allclose(
        metrics.mmd_median(x, y), metrics.mmd_rbf(x, y, metrics.median_heuristic(x, y)), rtol=1e-6
    )


def test_energy_distance_same_distribution_is_unbiased_zero():
    estimates = [metrics.energy_distance(x, y) for x, y in _gaussian_pairs(5, 400, 300, [0.0, 0.0])]
    _assert_mc_mean(estimates, 0.0)


@pytest.mark.parametrize("shift", [0.5, 2.0])
def test_energy_distance_1d_gaussians_closed_form(shift):
    # 2 E|X - Y| - E|X - X'| - E|Y - Y'| with X - Y ~ N(-shift, 2), X - X' ~ N(0, 2).
    expected = 2 * _abs_normal_mean(shift, math.sqrt(2)) - 2 * _abs_normal_mean(0.0, math.sqrt(2))
    estimates = [metrics.energy_distance(x, y) for x, y in _gaussian_pairs(6, 400, 300, [shift])]
    _assert_mc_mean(estimates, expected)
    assert np.mean(estimates) == pytest.approx(expected, rel=0.05)


def test_energy_distance_2d_gaussians_closed_form():
    # In 2-D, |N(mu, s^2 I)| is Rice(|mu| / s, scale=s) distributed.
    mean = np.array([1.0, 1.0])
    s = math.sqrt(2.0)
    cross = stats.rice(b=np.linalg.norm(mean) / s, scale=s).mean()
    within = s * math.sqrt(math.pi / 2)  # Rayleigh mean
    expected = 2 * cross - 2 * within
    estimates = [metrics.energy_distance(x, y) for x, y in _gaussian_pairs(7, 400, 300, mean)]
    _assert_mc_mean(estimates, expected)


def test_energy_distance_1d_matches_scipy():
    # scipy's 1-D energy distance is the square root of the V-statistic form.
    rng = np.random.default_rng(18)
    u = rng.normal(size=83)
    v = rng.standard_t(df=3, size=61) + 0.4
    got = metrics.energy_distance(u[:, None], v[:, None], unbiased=False)
    np.testing.assert_allclose(np.sqrt(got), stats.energy_distance(u, v), rtol=1e-5)


# --- blocked against naive ----------------------------------------------------


def _naive_stats(x, y, sigmas):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    n, m = len(x), len(y)

    def k(a, b):
        d2 = cdist(a, b, "sqeuclidean")
        return np.mean([np.exp(-d2 / (2 * s**2)) for s in sigmas], axis=0)

    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    mmd2 = (
        (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
        + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        - 2 * kxy.mean()
    )
    dxx, dyy, dxy = cdist(x, x), cdist(y, y), cdist(x, y)
    energy_u = 2 * dxy.mean() - dxx.sum() / (n * (n - 1)) - dyy.sum() / (m * (m - 1))
    energy_v = 2 * dxy.mean() - dxx.mean() - dyy.mean()
    return mmd2, energy_u, energy_v


# dim 40 takes the matrix-product path of `squared_distances`; block 7 leaves
# padded rows in the last block.
@pytest.mark.parametrize("dim, block_size", [(2, 7), (40, None)])
def test_blocked_matches_naive_full_matrix(dim, block_size):
    x, y = _small_samples(9, dim)
    scale = math.sqrt(dim)
    sigmas = [0.5 * scale, 1.0 * scale, 2.0 * scale]
    mmd_single, energy_u, energy_v = _naive_stats(x, y, sigmas[1:2])
    mmd_mix, _, _ = _naive_stats(x, y, sigmas)
    got_single = metrics.mmd_rbf(x, y, sigmas[1], block_size=block_size)
    got_mix = metrics.mmd_rbf_mixture(x, y, jnp.array(sigmas), block_size=block_size)
    got_u = metrics.energy_distance(x, y, block_size=block_size)
    got_v = metrics.energy_distance(x, y, unbiased=False, block_size=block_size)
    np.testing.assert_allclose(got_single, mmd_single, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got_mix, mmd_mix, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got_u, energy_u, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got_v, energy_v, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "dim, block_size, exclude_diagonal",
    [(2, 1, False), (2, 5, True), (2, None, True), (40, 5, False), (40, 5, True)],
)
def test_pair_sum_matches_dense(dim, block_size, exclude_diagonal):
    rng = np.random.default_rng(10)
    x = rng.normal(size=(23, dim)).astype(np.float32)
    y = x if exclude_diagonal else rng.normal(size=(31, dim)).astype(np.float32)
    values = np.cos(cdist(x, y, "sqeuclidean") / dim) + 2.0
    if exclude_diagonal:
        np.fill_diagonal(values, 0.0)
    def fn(t):
        return jnp.cos(t / dim) + 2.0

    sum_fn = jax.jit(
        lambda a, b: metrics.pair_sum(
            fn, a, b, exclude_diagonal=exclude_diagonal, block_size=block_size
        )
    )
    np.testing.assert_allclose(sum_fn(x, y), values.sum(), rtol=1e-5)


def test_float64_inputs_are_computed_in_float64():
    x, y = _small_samples(19)
    x, y = x.astype(np.float64), y.astype(np.float64)
    mmd2, energy_u, _ = _naive_stats(x, y, [1.0])
    with jax.enable_x64(True):
        got_mmd = metrics.mmd_rbf(x, y, 1.0, block_size=7)
        got_energy = metrics.energy_distance(x, y, block_size=7)
        assert got_mmd.dtype == jnp.float64
    np.testing.assert_allclose(got_mmd, mmd2, rtol=1e-12)
    np.testing.assert_allclose(got_energy, energy_u, rtol=1e-12)


def test_without_jit_matches_jit():
    # Eager execution runs the block loop in Python: one check keeps it cheap.
    x, y = _small_samples(20)
    with jax.disable_jit():
        eager = metrics.energy_distance(x, y, block_size=20)
    jitted = metrics.energy_distance(x, y, block_size=20)
    np.testing.assert_allclose(eager, jitted, rtol=1e-5, atol=1e-6)


def test_float32_blocked_sum_is_accurate_at_scale():
    # 4000 x 4000 pairs: the float32 two-level sum stays within 1e-6 of float64.
    rng = np.random.default_rng(11)
    x = rng.normal(size=(4000, 2))
    x32 = x.astype(np.float32)
    sums = metrics.pair_sum(lambda d2: jnp.exp(-0.5 * d2), x32, x32)
    expected = 0.0
    for chunk in np.array_split(x, 8):
        expected += np.exp(-0.5 * cdist(chunk, x, "sqeuclidean")).sum()
    assert abs(float(sums) / expected - 1.0) < 1e-6


def test_checks_reject_bad_shapes():
    x = np.zeros((5, 2), np.float32)
    with pytest.raises(AssertionError):
        metrics.energy_distance(x, np.zeros((5, 3), np.float32))
    with pytest.raises(AssertionError):
        metrics.mmd_rbf(np.zeros(5), np.zeros(5), 1.0)
    with pytest.raises(ValueError, match="at least 2"):
        metrics.mmd_rbf(x[:1], x, 1.0)


# --- median heuristic ---------------------------------------------------------


def test_median_heuristic_is_median_pairwise_distance():
    x, y = _small_samples(12)
    y = 3.0 * y
    expected = np.median(pdist(np.concatenate([x, y]).astype(np.float64)))
    np.testing.assert_allclose(metrics.median_heuristic(x, y), expected, rtol=1e-5)


def test_median_heuristic_scales_with_data_and_subsamples():
    rng = np.random.default_rng(13)
    x = rng.normal(size=(3000, 2)).astype(np.float32)
    y = rng.normal(size=(3000, 2)).astype(np.float32)
    # The median distance between two N(0, I_2) points: |N(0, 2 I)| is Rayleigh(sqrt 2).
    expected = stats.rayleigh(scale=math.sqrt(2)).median()
    sigma = metrics.median_heuristic(x, y, max_points=1000)
    assert float(sigma) == pytest.approx(expected, rel=0.05)
    np.testing.assert_allclose(metrics.median_heuristic(5 * x, 5 * y), 5 * sigma, rtol=1e-5)


def test_median_heuristic_degenerate_samples():
    x = np.zeros((10, 2), np.float32)
    assert float(metrics.median_heuristic(x, x)) == 1.0
    y = np.zeros((10, 2), np.float32)
    y[0] = [3.0, 4.0]
    # 19 of the 190 pairs have distance 5, so the median is 0 and the mean 0.5 is used.
    assert float(metrics.median_heuristic(x, y)) == pytest.approx(19 * 5.0 / 190)


# --- adjusted and the registry ------------------------------------------------


def test_adjusted_is_difference_of_two_calls():
    metric = lambda a, b: jnp.mean(a) - 2 * jnp.mean(b)  # noqa: E731
    x, y1, y2 = jnp.ones((3, 1)), 2 * jnp.ones((4, 1)), 5 * jnp.ones((3, 1))
    assert float(metrics.adjusted(metric, x, y1, y2)) == pytest.approx((1 - 4) - (5 - 4))


def test_adjusted_w1_removes_finite_sample_bias():
    key = jax.random.key(0)
    rng = np.random.default_rng(14)
    raw, adj, shifted = [], [], []
    for _ in range(REPS):
        x, y1, y2 = (rng.normal(size=(300, 2)).astype(np.float32) for _ in range(3))
        raw.append(metrics.sliced_wasserstein(x, y1, key, p=1))
        adj.append(metrics.adjusted_w1(x, y1, y2, key))
        shifted.append(metrics.adjusted_w1(x + np.float32([2.0, 0.0]), y1, y2, key))
    # A perfect sampler: the raw SW1 is clearly positive, the adjusted one is about 0.
    assert np.mean(raw) > 10 * np.std(raw) / math.sqrt(REPS)
    _assert_mc_mean(adj, 0.0)
    # A shift by mu: along theta, W1 = |theta . mu| for the distributions, and
    # the triangle inequality bounds the sample version within W1(x, y) of it,
    # so the adjusted value lies within the raw same-distribution SW1 below
    # mean_theta |theta . mu| (2 |mu| / pi = 1.27 over the whole circle).
    theta = metrics.random_directions(key, 128, 2)
    conditional = float(jnp.mean(jnp.abs(theta @ jnp.array([2.0, 0.0]))))
    assert abs(conditional - 4 / math.pi) < 0.15
    assert conditional - np.mean(raw) - 0.02 < np.mean(shifted) < conditional + 0.02


def test_adjusted_mmd_uses_one_reference_bandwidth():
    rng = np.random.default_rng(15)
    x, y1, y2 = (rng.normal(size=(100, 2)).astype(np.float32) for _ in range(3))
    x = x + 1.0
    sigma = metrics.median_heuristic(y1, y2)
    expected = metrics.mmd_rbf(x, y1, sigma) - metrics.mmd_rbf(y2, y1, sigma)
    np.testing.assert_allclose(metrics.adjusted_mmd(x, y1, y2), expected, rtol=1e-6)


def test_metrics_registry_names_and_calls():
    assert metrics.METRICS.names() == ["energy_distance", "mmd", "sliced_wasserstein"]
    with pytest.raises(ValueError, match="energy_distance, mmd, sliced_wasserstein"):
        metrics.METRICS.get("wasserstein")
    x, y = _small_samples(16)
    key = jax.random.key(1)
    direct = {
        "mmd": metrics.mmd_median(x, y),
        "energy_distance": metrics.energy_distance(x, y),
        "sliced_wasserstein": metrics.sliced_wasserstein(x, y, key),
    }
    for name in metrics.METRICS:
        np.testing.assert_allclose(metrics.METRICS.get(name)(x, y, key), direct[name], rtol=1e-6)


def test_two_sample_functions_work_under_outer_jit_and_vmap():
    rng = np.random.default_rng(17)
    xs = rng.normal(size=(3, N_SMALL, 2)).astype(np.float32)
    ys = rng.normal(size=(3, M_SMALL, 2)).astype(np.float32)
    batched = jax.vmap(functools.partial(metrics.energy_distance, block_size=4))(xs, ys)
    looped = [metrics.energy_distance(a, b) for a, b in zip(xs, ys)]
    # Different blocks sum in a different order: float32 rounding of terms near 1.
    np.testing.assert_allclose(batched, looped, atol=1e-5)
    outer = jax.jit(lambda a, b: metrics.mmd_median(a, b) + 1.0)
    expected = metrics.mmd_median(xs[0], ys[0]) + 1.0
    np.testing.assert_allclose(outer(xs[0], ys[0]), expected, rtol=1e-6)
