"""MMD permutation test: statistic, power on shifted samples, calibration under H0."""

import jax
import numpy as np
import pytest

from gmjax import metrics


def _samples(seed, shift, n=100):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2)).astype(np.float32)
    y = (rng.normal(size=(n, 2)) + shift).astype(np.float32)
    return x, y


def test_statistic_is_the_unbiased_mmd():
    x, y = _samples(0, 0.3)
    result = metrics.mmd_permutation_test(x, y, jax.random.key(0), num_permutations=99)
    expected = metrics.mmd_rbf(x, y, metrics.median_heuristic(x, y))
    np.testing.assert_allclose(result.statistic, expected, rtol=1e-4, atol=1e-6)


def test_rejects_clearly_shifted_samples():
    x, y = _samples(1, [1.0, 0.0])
    result = metrics.mmd_permutation_test(x, y, jax.random.key(1), num_permutations=99)
    # No relabelling reaches the observed statistic: the smallest possible p-value.
    assert float(result.p_value) == pytest.approx(1 / 100)
    assert bool(result.reject)


def test_same_distribution_is_not_rejected_and_seed_fixes_p_value():
    x, y = _samples(2, 0.0)
    first = metrics.mmd_permutation_test(x, y, jax.random.key(2), num_permutations=99)
    again = metrics.mmd_permutation_test(x, y, jax.random.key(2), num_permutations=99)
    assert not bool(first.reject)
    assert float(first.p_value) > 0.05
    assert float(first.p_value) == float(again.p_value)


def test_level_under_the_null():
    # 100 data sets from H0 (same shapes as above, so nothing recompiles): the
    # rejection rate at level 0.1 is about 0.1 (Binomial(100, 0.1) has sd 0.03),
    # and the p-values are about uniform on {1/100, ..., 1}.
    keys = jax.random.split(jax.random.key(3), 100)
    p_values = np.array(
        [
            metrics.mmd_permutation_test(*_samples(100 + i, 0.0), key, num_permutations=99).p_value
            for i, key in enumerate(keys)
        ]
    )
    assert 0.03 < np.mean(p_values < 0.1) < 0.2
    assert np.mean(p_values <= 0.5) == pytest.approx(0.5, abs=0.15)
    assert np.all((p_values > 0.0099) & (p_values < 1.0001))


def test_blocked_statistics_do_not_depend_on_block_size():
    x, y = _samples(4, 0.2)
    key = jax.random.key(5)
    small = metrics.mmd_permutation_test(x, y, key, num_permutations=99, block_size=7)
    whole = metrics.mmd_permutation_test(x, y, key, num_permutations=99)
    np.testing.assert_allclose(small.statistic, whole.statistic, rtol=1e-4, atol=1e-6)
    assert float(small.p_value) == float(whole.p_value)
