"""The TemperFlow diagnostics: the reference numbers they compute, and that each script imports
beside the others and defines its flags only when asked."""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl import flags

from gmjax.experiment.temperflow import missing_mass, missing_mass_text
from gmjax.targets import build_target

FLAGS = flags.FLAGS

SCRIPTS = {
    "final_rounds": {"workdir", "stage", "kind", "rounds", "steps", "lr", "batch_size", "log_u"},
    "missing_mass": {"workdir", "stage", "draws"},
    "reference_coverage": {"workdir", "stage", "beta", "draws", "scales", "shares", "seed"},
    "target_ml_fit": {"config", "steps", "lr", "num_data"},
    "weight_traces": {"out", "truth", "title", "truth_draws", "dim", "min_truth_ess"},
}


def test_tempered_clayton_weights_by_defensive_importance_sampling():
    # The weight traces' reference curve: at beta = 1 it must give the known P(x_j > 0) = 0.3
    # and log U_1 = 0 (the Clayton density is normalized), and at beta = 0.5 a value between
    # the beta = 1 one and the flatter beta = 0.1 one (0.61, measured with 10^7 draws).
    target = build_target("clayton", dim=8)
    curve = target.tempered_positive_fraction((0.5, 1.0), 200_000, batch_size=100_000)
    assert curve["mean"][1] == pytest.approx(0.3, abs=0.006)
    assert curve["log_u"][1] == pytest.approx(0.0, abs=0.01)
    assert 0.53 < curve["mean"][0] < 0.58 and curve["ess"][0] > 10_000
    # The shares of the sign counts at beta = 1 against exact draws (U-shaped: a third
    # of the mass has all 8 signs negative).
    x = np.asarray(target.sample(seed=jax.random.PRNGKey(9), sample_shape=(100_000,)))
    exact = np.bincount(np.sum(x[:, :8] < 0, axis=1), minlength=9) / len(x)
    np.testing.assert_allclose(curve["counts"][1], exact, atol=0.01)
    assert curve["counts"][1].sum() == pytest.approx(1.0) and exact[8] > 0.3


def test_missing_mass_is_zero_for_the_target_and_the_copula_for_its_marginals():
    target = build_target("clayton", dim=8)
    key = jax.random.PRNGKey(0)
    same = missing_mass(target, target.log_prob, key, 4000)
    assert same["forward_kl"] == 0.0 and same["gap_above_2"] == 0.0
    assert all(gap == 0.0 for _, _, gap, _ in same["by_negatives"])
    assert sum(share for _, share, _, _ in same["by_negatives"]) == pytest.approx(1.0)
    # q = the product of p's marginals: log p - log q is the log copula density, so the
    # forward KL is the copula's total correlation (> 0), and a q without the dependence has
    # nearly binomial sign counts: far less mass on all 8 negative than p's third.
    def independent(x):
        return jnp.sum(target.marginal_log_prob(x), axis=-1)
    flow_draws = np.asarray(target.sample(seed=jax.random.PRNGKey(1), sample_shape=(4000,)))
    flow_draws = np.stack([np.random.default_rng(j).permutation(flow_draws[:, j])
                           for j in range(8)], axis=1)  # same marginals, no dependence
    result = missing_mass(target, independent, key, 4000, flow_draws)
    assert result["forward_kl"] > 1.0
    shares = {k: (share_p, share_q) for k, share_p, _, share_q in result["by_negatives"]}
    assert shares[8][0] > 0.3 and shares[8][1] < 0.1
    text = missing_mass_text(result, "independent")
    assert text.startswith("independent (p = 8): forward KL(p || q) = ")
    assert len(text.splitlines()) == 2 + len(result["by_negatives"]) + 1 + 6


@pytest.fixture
def defined_flags():
    """``define(module)`` runs ``module.define_flags()`` and returns the names it added;
    they are removed again afterwards, so scripts sharing a flag name can all be checked."""
    added = []

    def define(module):
        before = set(FLAGS)
        module.define_flags()
        new = set(FLAGS) - before
        added.extend(new)
        return new

    yield define
    for name in added:
        delattr(FLAGS, name)


def test_the_scripts_import_together_without_defining_flags():
    before = set(FLAGS)
    for name in SCRIPTS:
        importlib.import_module(f"experiments.diagnostics.{name}")
    importlib.import_module("experiments.temperflow_table")
    assert set(FLAGS) == before


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_each_script_defines_its_flags(defined_flags, name):
    module = importlib.import_module(f"experiments.diagnostics.{name}")
    assert defined_flags(module) == SCRIPTS[name]
