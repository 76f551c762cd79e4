"""Feature-space metrics: Fréchet distance, KID, precision/recall, density/coverage, IS."""

import math

import jax
import numpy as np
import pytest
import scipy.linalg
from scipy.spatial.distance import cdist

from gmjax import metrics as F

REPS = 200  # independent sample pairs for the unbiasedness checks


def _random_gaussian(rng, d):
    a = rng.normal(size=(d, d))
    return rng.normal(size=d), a @ a.T / d + 0.1 * np.eye(d)


def _closed_form(mu1, cov1, mu2, cov2):
    """|mu1 - mu2|^2 + tr(cov1 + cov2 - 2 sqrtm(cov1 cov2)), with scipy's general sqrtm."""
    root = scipy.linalg.sqrtm(cov1 @ cov2)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(cov1 + cov2 - 2.0 * root).real)


# --- Fréchet distance -----------------------------------------------------------


def test_frechet_distance_of_exact_moments_matches_the_closed_form():
    rng = np.random.default_rng(0)
    for d in (1, 3, 16):
        mu1, cov1 = _random_gaussian(rng, d)
        mu2, cov2 = _random_gaussian(rng, d)
        expected = _closed_form(mu1, cov1, mu2, cov2)
        assert F.frechet_distance_gaussians(mu1, cov1, mu2, cov2) == pytest.approx(expected,
                                                                                   rel=1e-9)


def test_frechet_distance_by_hand():
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2.
    assert F.frechet_distance_gaussians([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(
        4.0 + 1.0, abs=1e-12)
    # Diagonal, one direction without variance (a dead feature): sum (sqrt a - sqrt b)^2.
    got = F.frechet_distance_gaussians(np.zeros(3), np.diag([1.0, 9.0, 0.0]), np.ones(3),
                                       np.diag([4.0, 1.0, 0.0]))
    assert got == pytest.approx(3.0 + (1 - 2) ** 2 + (3 - 1) ** 2, abs=1e-12)
    # Identical Gaussians are at distance 0.
    mu, cov = _random_gaussian(np.random.default_rng(1), 8)
    assert abs(F.frechet_distance_gaussians(mu, cov, mu, cov)) < 1e-10


def test_frechet_distance_of_large_samples_approaches_the_closed_form():
    rng = np.random.default_rng(2)
    mu1, cov1 = _random_gaussian(rng, 4)
    mu2, cov2 = _random_gaussian(rng, 4)
    x = rng.multivariate_normal(mu1, cov1, size=100_000)
    y = rng.multivariate_normal(mu2, cov2, size=100_000)
    expected = _closed_form(mu1, cov1, mu2, cov2)
    # The sampling error is about 0.02 at this size (measured over 10 seeds).
    assert F.frechet_distance(x, y) == pytest.approx(expected, abs=0.1)
    assert F.frechet_distance(y, x) == pytest.approx(F.frechet_distance(x, y), rel=1e-9)
    # Same distribution: only the finite-sample bias remains.
    assert 0 < F.frechet_distance(x, rng.multivariate_normal(mu1, cov1, size=100_000)) < 1e-3


def test_frechet_distance_is_invariant_to_rotations_and_uses_unbiased_moments():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(500, 6)), rng.normal(size=(400, 6)) * 2.0 + 1.0
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    assert F.frechet_distance(x @ q, y @ q) == pytest.approx(F.frechet_distance(x, y), rel=1e-9)
    mu, cov = F.gaussian_moments(x)
    np.testing.assert_allclose(cov, np.cov(x.T, ddof=1), rtol=1e-12)
    np.testing.assert_allclose(mu, x.mean(0), rtol=1e-12)


# --- KID ------------------------------------------------------------------------


def _poly_mmd2_population(mu):
    """MMD^2 of N(0, I_d) vs N(mu, I_d) for k(x, y) = (x.y/d + 1)^3.

    Expanding the cube, k(x, y) = <x^3, y^3>/d^3 + 3 <x^2, y^2>/d^2 + 3 <x, y>/d + 1
    in tensor powers, so MMD^2 = |M3x - M3y|^2/d^3 + 3|M2x - M2y|^2/d^2 + 3|m_x - m_y|^2/d
    with the raw moment tensors M2 = E xx^T and M3 = E x(x)x(x)x; for y ~ N(mu, I),
    E y_i y_j y_k = mu_i mu_j mu_k + mu_i d_jk + mu_j d_ik + mu_k d_ij, and M3x = 0.
    """
    d = mu.size
    eye = np.eye(d)
    m3 = (np.einsum("i,j,k->ijk", mu, mu, mu) + np.einsum("i,jk->ijk", mu, eye)
          + np.einsum("j,ik->ijk", mu, eye) + np.einsum("k,ij->ijk", mu, eye))
    return (np.sum(m3**2) / d**3 + 3 * np.sum(np.outer(mu, mu) ** 2) / d**2
            + 3 * np.sum(mu**2) / d)


def test_polynomial_kernel_mmd_is_unbiased_for_its_closed_form():
    mu = np.array([0.3, -0.2, 0.1])
    expected = _poly_mmd2_population(mu)  # 0.22877
    rng = np.random.default_rng(4)
    estimates = [F.polynomial_mmd2(rng.normal(size=(300, 3)), rng.normal(size=(200, 3)) + mu)
                 for _ in range(REPS)]
    se = np.std(estimates, ddof=1) / math.sqrt(REPS)
    assert abs(np.mean(estimates) - expected) < 4 * se, (np.mean(estimates), expected, se)
    same = [F.polynomial_mmd2(rng.normal(size=(300, 3)), rng.normal(size=(200, 3)))
            for _ in range(REPS)]
    assert abs(np.mean(same)) < 4 * np.std(same, ddof=1) / math.sqrt(REPS)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_a_shift():
    rng = np.random.default_rng(5)
    x, z = rng.normal(size=(4000, 16)), rng.normal(size=(4000, 16))
    key = jax.random.PRNGKey(0)
    same = F.kid(x, z, key, num_subsets=20, subset_size=500)
    shifted = F.kid(x, z + 0.5, key, num_subsets=20, subset_size=500)
    # 0.5 in every coordinate: 3 |mu|^2 / d = 0.75 from the linear term alone.
    assert abs(same.mean) < 0.01
    assert shifted.mean > 0.75
    assert shifted.mean > 20 * shifted.std / math.sqrt(20)


def test_kid_with_subsets_as_large_as_the_samples_is_the_full_estimate():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(50, 4)), rng.normal(size=(40, 4)) + 0.3
    result = F.kid(x, y, jax.random.PRNGKey(1), num_subsets=3, subset_size=100)
    # Subsets of min(100, 50, 40) = 40 rows of x differ; with equal sizes they would not.
    assert result.std > 0
    full = F.kid(x[:40], y, jax.random.PRNGKey(1), num_subsets=3, subset_size=40)
    assert full.mean == pytest.approx(F.polynomial_mmd2(x[:40], y), rel=1e-12)
    assert full.std < 1e-12


# --- precision / recall / density / coverage -------------------------------------


def test_knn_radii_match_brute_force_for_any_block_size():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(103, 5)).astype(np.float32)
    expected = np.sort(cdist(x, x), axis=1)[:, 3]  # column 0 is the point itself
    np.testing.assert_allclose(F.knn_radii(x, 3), expected, rtol=1e-4)
    np.testing.assert_allclose(F.knn_radii(x, 3, block_size=7), expected, rtol=1e-4)


def test_precision_recall_density_coverage_on_a_worked_example():
    # Real points 0..9 on a line, k = 1: every real ball has radius 1.
    real = np.arange(10.0)[:, None]
    fake = np.array([[0.5], [20.0]])
    # 0.5 is in the balls of 0 and 1; 20 is in none. The fake radius (k = 1)
    # is 19.5, and every real point lies within 19.5 of 0.5.
    assert F.precision_recall(real, fake, k=1) == (0.5, 1.0)
    density, coverage = F.density_coverage(real, fake, k=1)
    assert density == pytest.approx(2 / (1 * 2))
    assert coverage == pytest.approx(2 / 10)  # only 0 and 1 have a sample in their ball


def test_identical_sets_score_one_and_far_sets_score_zero():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(500, 8)).astype(np.float32)
    assert F.precision_recall(x, x) == (1.0, 1.0)
    density, coverage = F.density_coverage(x, x, k=5)
    # Every real ball holds its own centre and its k neighbours: density (k + 1)/k.
    assert density == pytest.approx(6 / 5)
    assert coverage == 1.0
    far = x + 100.0
    assert F.precision_recall(x, far) == (0.0, 0.0)
    assert F.density_coverage(x, far) == (0.0, 0.0)


def test_half_of_the_distribution_is_precise_but_recalls_about_half():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(2000, 2)).astype(np.float32)
    # Samples from one half of the real distribution: precise but poor recall.
    half = rng.normal(size=(2000, 2)).astype(np.float32)
    half[:, 0] = np.abs(half[:, 0])
    precision, recall = F.precision_recall(x, half)
    assert precision > 0.95
    assert 0.4 < recall < 0.75
    _, coverage = F.density_coverage(x, half)
    assert 0.4 < coverage < 0.75


# --- class probabilities ----------------------------------------------------------


def test_inception_score_limits():
    assert F.inception_score(np.full((100, 10), 0.1)).mean == pytest.approx(1.0, abs=1e-12)
    one_hot = np.eye(10)[np.arange(200) % 10]
    assert F.inception_score(one_hot).mean == pytest.approx(10.0, rel=1e-12)
    # Split 1 uses classes 0-4 and split 2 classes 5-9: each split scores 5.
    halves = np.eye(10)[np.concatenate([np.arange(100) % 5, 5 + np.arange(100) % 5])]
    assert F.inception_score(halves, num_splits=2) == (pytest.approx(5.0), pytest.approx(0.0))
    assert F.inception_score(halves, num_splits=1).mean == pytest.approx(10.0)


def test_inception_score_by_hand():
    # Half the samples certain of class 0, half undecided: p(y) = (3/4, 1/4).
    probs = np.array([[1.0, 0.0], [0.5, 0.5]] * 50)
    kl_certain = math.log(1 / 0.75)
    kl_undecided = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    expected = math.exp(0.5 * kl_certain + 0.5 * kl_undecided)  # 1.2408
    assert F.inception_score(probs).mean == pytest.approx(expected, rel=1e-12)


def test_inception_score_refuses_logits():
    with pytest.raises(ValueError, match="softmax"):
        F.inception_score(np.array([[2.0, -1.0], [0.0, 3.0]]))


def test_class_accuracy_counts():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    assert F.class_accuracy(probs, np.array([0, 1, 1, 1])) == 0.75
