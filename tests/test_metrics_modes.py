"""Mode coverage on hand-made samples with exact answers."""

import math

import numpy as np
import pytest

from gmjax import metrics

# Eight modes on a circle of radius 4, sd 0.1: the VEEGAN ring.
CENTRES = np.array(
    [[4 * math.cos(2 * math.pi * k / 8), 4 * math.sin(2 * math.pi * k / 8)] for k in range(8)],
    np.float32,
)
SD = 0.1


def test_every_mode_hit_exactly():
    samples = np.repeat(CENTRES, 3, axis=0)  # three samples at every centre
    result = metrics.mode_metrics(samples, CENTRES, SD)
    assert int(result.modes_captured) == 8
    assert float(result.high_quality_frac) == 1.0
    np.testing.assert_array_equal(result.counts, np.full(8, 3))
    np.testing.assert_allclose(result.mode_weights, np.full(8, 1 / 8))
    assert float(result.mode_weight_tv) == pytest.approx(0.0, abs=1e-7)
    assert float(result.reverse_kl) == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_array_equal(result.assignment, np.repeat(np.arange(8), 3))


def test_all_samples_at_one_mode():
    rng = np.random.default_rng(0)
    samples = CENTRES[2] + 0.5 * SD * rng.normal(size=(2500, 2)).clip(-3, 3).astype(np.float32)
    result = metrics.mode_metrics(samples, CENTRES, SD)
    assert int(result.modes_captured) == 1
    assert float(result.high_quality_frac) == 1.0
    np.testing.assert_allclose(result.mode_weights, np.eye(8)[2])
    # TV = (1/2)(|1 - 1/8| + 7 / 8) = 7/8; KL(q || w) = 1 * log(1 / (1/8)) = log 8.
    assert float(result.mode_weight_tv) == pytest.approx(7 / 8)
    assert float(result.reverse_kl) == pytest.approx(math.log(8), rel=1e-6)


def test_unequal_true_weights():
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], np.float32)
    weights = np.array([2.0, 1.0, 1.0])  # normalised to (1/2, 1/4, 1/4)
    samples = np.array([[0.0, 0.0]] * 3 + [[10.0, 0.0]], np.float32)
    result = metrics.mode_metrics(samples, centres, 1.0, weights)
    # q = (3/4, 1/4, 0): TV = (1/4 + 0 + 1/4) / 2; KL = 3/4 log(3/2) + 1/4 log(1).
    assert float(result.mode_weight_tv) == pytest.approx(0.25)
    assert float(result.reverse_kl) == pytest.approx(0.75 * math.log(1.5), rel=1e-6)
    assert int(result.modes_captured) == 2


def test_points_far_from_every_mode():
    samples = np.full((100, 2), 50.0, np.float32)
    result = metrics.mode_metrics(samples, CENTRES, SD)
    assert float(result.high_quality_frac) == 0.0
    assert int(result.modes_captured) == 0
    np.testing.assert_array_equal(result.mode_weights, np.zeros(8))
    assert float(result.mode_weight_tv) == 1.0
    assert math.isinf(float(result.reverse_kl))


def test_three_sd_boundary_and_per_mode_sd():
    centres = np.array([[0.0, 0.0], [10.0, 0.0]], np.float32)
    sd = np.array([0.1, 1.0], np.float32)
    samples = np.array(
        [
            [0.29, 0.0],  # 2.9 sd from mode 0: high quality
            [0.0, -0.31],  # 3.1 sd from mode 0: not
            [10.0, 2.9],  # 2.9 sd from mode 1 (sd 1): high quality
            [6.5, 0.0],  # nearest is mode 1, 3.5 sd away: not
        ],
        np.float32,
    )
    result = metrics.mode_metrics(samples, centres, sd)
    np.testing.assert_array_equal(result.high_quality, [True, False, True, False])
    np.testing.assert_array_equal(result.assignment, [0, 0, 1, 1])
    np.testing.assert_array_equal(result.counts, [1, 1])
    assert float(result.high_quality_frac) == 0.5


def test_min_count_threshold():
    samples = np.concatenate([np.repeat(CENTRES[:1], 5, 0), CENTRES[1:2], CENTRES[1:2] + 10.0])
    assert int(metrics.mode_metrics(samples, CENTRES, SD).modes_captured) == 2
    assert int(metrics.mode_metrics(samples, CENTRES, SD, min_count=2).modes_captured) == 1


def test_zero_true_weight_uses_epsilon():
    centres = np.array([[0.0], [5.0]], np.float32)
    samples = np.array([[0.0], [5.0]], np.float32)
    result = metrics.mode_metrics(samples, centres, 0.5, np.array([1.0, 0.0]), eps=1e-6)
    # KL = 1/2 log(1/2 / 1) + 1/2 log(1/2 / 1e-6): finite because of eps.
    expected = 0.5 * math.log(0.5) + 0.5 * math.log(0.5 / 1e-6)
    assert float(result.reverse_kl) == pytest.approx(expected, rel=1e-5)
