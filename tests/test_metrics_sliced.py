"""Sliced Wasserstein: closed forms for Gaussians, 1-D checks against scipy and POT."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from gmjax import metrics


def test_random_directions_are_unit_and_seeded():
    theta = metrics.random_directions(jax.random.key(0), 500, 3)
    np.testing.assert_allclose(jnp.linalg.norm(theta, axis=1), 1.0, rtol=1e-6)
    # Uniform on the sphere: E theta theta^T = I / d.
    np.testing.assert_allclose(theta.T @ theta / 500, np.eye(3) / 3, atol=0.04)
    np.testing.assert_array_equal(theta, metrics.random_directions(jax.random.key(0), 500, 3))


def test_sliced_w2_gaussian_shift_closed_form():
    # N(0, I) vs N(mu, I): along theta, W2^2 = (theta . mu)^2; over the sphere |mu|^2 / d.
    rng = np.random.default_rng(0)
    mu = np.array([2.0, -1.0, 0.5], np.float32)
    x = rng.normal(size=(2000, 3)).astype(np.float32)
    y = (rng.normal(size=(2000, 3)) + mu).astype(np.float32)
    key = jax.random.key(1)
    num_projections = 256
    sw2 = metrics.sliced_wasserstein(x, y, key, p=2, num_projections=num_projections)
    theta = metrics.random_directions(key, num_projections, 3)  # the same directions
    # Given the directions and the sample means, W2^2 along theta is (theta . delta)^2
    # with delta = mean(y) - mean(x), plus the W2^2 of two centred samples (about 0.002).
    delta = y.mean(0) - x.mean(0)
    assert float(sw2) ** 2 == pytest.approx(float(jnp.mean(jnp.square(theta @ delta))), abs=0.01)
    conditional = float(jnp.mean(jnp.square(theta @ mu)))
    # Projection noise: sd of (theta . mu)^2 over the sphere is below |mu|^2 / sqrt(5).
    norm2 = float(np.sum(mu**2))
    assert conditional == pytest.approx(norm2 / 3, abs=4 * norm2 / math.sqrt(5 * num_projections))


def test_sliced_w1_gaussian_shift_closed_form():
    # W1 of a shift along theta is |theta . mu|; in 2-D E|cos| = 2 / pi.
    rng = np.random.default_rng(1)
    mu = np.array([3.0, 0.0], np.float32)
    x = rng.normal(size=(2000, 2)).astype(np.float32)
    y = (rng.normal(size=(2000, 2)) + mu).astype(np.float32)
    key = jax.random.key(2)
    sw1 = metrics.sliced_wasserstein(x, y, key, p=1, num_projections=256)
    theta = metrics.random_directions(key, 256, 2)
    delta = y.mean(0) - x.mean(0)
    assert float(sw1) == pytest.approx(float(jnp.mean(jnp.abs(theta @ delta))), abs=0.005)
    conditional = float(jnp.mean(jnp.abs(theta @ mu)))
    # sd of |cos| on the circle is sqrt(1/2 - 4/pi^2) < 0.31.
    assert conditional == pytest.approx(3.0 * 2 / math.pi, abs=4 * 3.0 * 0.31 / math.sqrt(256))


@pytest.mark.parametrize("n, m", [(50, 50), (37, 53)])
def test_w1_in_one_dimension_matches_scipy(n, m):
    rng = np.random.default_rng(n * m)
    u = rng.normal(size=n)
    v = rng.exponential(size=m)
    expected = stats.wasserstein_distance(u, v)
    np.testing.assert_allclose(metrics.wasserstein_1d(u, v, p=1), expected, rtol=1e-5)
    # In 1-D the directions are +-1, so SW1 is W1.
    key = jax.random.key(0)
    sw1 = metrics.sliced_wasserstein(u[:, None], v[:, None], key, p=1, num_projections=4)
    np.testing.assert_allclose(sw1, expected, rtol=1e-5)


@pytest.mark.parametrize("n, m", [(50, 50), (37, 53)])
def test_w2_in_one_dimension_matches_pot(n, m):
    ot = pytest.importorskip("ot")
    rng = np.random.default_rng(n + m)
    u = rng.normal(size=n)
    v = rng.normal(size=m) * 2.0 + 1.0
    expected = ot.wasserstein_1d(u, v, p=2)  # W2^2
    np.testing.assert_allclose(metrics.wasserstein_1d(u, v, p=2), expected, rtol=1e-5)


def test_w2_squared_of_two_point_sets_by_hand():
    # {0, 1} vs {0, 1, 2}: quantiles 0 | 1 on (0, 1/2], (1/2, 1] and 0 | 1 | 2 on thirds:
    # |0-0|^2/3 + |0-1|^2/6 + |1-1|^2/6 + |1-2|^2/3 = 1/2.
    got = metrics.wasserstein_1d(jnp.array([1.0, 0.0]), jnp.array([2.0, 0.0, 1.0]), p=2)
    assert float(got) == pytest.approx(0.5)


def test_sliced_wasserstein_is_zero_on_identical_point_sets_and_permutation_invariant():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(100, 4)).astype(np.float32)
    key = jax.random.key(4)
    assert float(metrics.sliced_wasserstein(x, x[::-1], key)) == pytest.approx(0.0, abs=1e-6)
    y = rng.normal(size=(100, 4)).astype(np.float32)
    np.testing.assert_allclose(
        metrics.sliced_wasserstein(x, y, key),
        metrics.sliced_wasserstein(x[::-1], y, key),
        rtol=1e-6,
    )


def test_unequal_sizes_beyond_int32_grid_raise():
    x = jnp.zeros((50000, 1))
    y = jnp.zeros((49999, 1))
    with pytest.raises(ValueError, match="lcm"):
        metrics.sliced_wasserstein(x, y, jax.random.key(0), num_projections=1)
