"""Energy-based models: the contrastive-divergence loss against closed forms, Langevin
negatives, the replay buffer, experiments/ebm.py end to end with an exact resume, the
``learned_ebm`` target read back from the run, and the refusals."""

import json
import os

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import ml_collections
import numpy as np
import pytest

from gmjax.experiment import ConfigError, preflight, run
from gmjax.models.ebm import (EBMWorkdirError, abstract_params, build_energy, data_shape_of,
                              grid_log_normalizer, learned_ebm_target, load_ebm)
from gmjax.models.restore import restore_state_fields
from gmjax.objectives.ebm import (contrastive_divergence_loss, langevin_negatives,
                                  replay_buffer_init, replay_buffer_push, replay_buffer_sample)
from gmjax.targets import LearnedEBMTarget, build_target
from gmjax.viz import figure
from gmjax.viz.energy import plot_samples_on_density


def quadratic_energy(a, x):  # E_a(x) = a |x|^2 / 2, [n, d] -> [n]
    return 0.5 * a * jnp.sum(x * x, axis=-1)


# --- the objective ---------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_the_cd_gradient_of_a_quadratic_energy_is_the_moment_difference(alpha):
    """dL/da = (m2(x) - m2(x~)) / 2 + alpha a (m4(x) + m4(x~)) / 2 for E_a = a |x|^2 / 2,
    m_k the mean of |.|^k; no gradient flows through negatives that depend on a."""
    kx, kn = jax.random.split(jax.random.PRNGKey(0))
    x = jax.random.normal(kx, (64, 3))
    z = 2.0 * jax.random.normal(kn, (48, 3))
    a = jnp.float32(0.7)
    loss = contrastive_divergence_loss(quadratic_energy, alpha)

    def objective(a):  # negatives built from a: the stop-gradient must cut them off
        return loss(a, (x, z * a / 0.7), None)[0]

    value, grad = jax.value_and_grad(objective)(a)
    r2x, r2n = jnp.sum(x * x, -1), jnp.sum(z * z, -1)
    e_x, e_n = 0.5 * a * r2x, 0.5 * a * r2n
    expected_value = e_x.mean() - e_n.mean() + alpha * ((e_x ** 2).mean() + (e_n ** 2).mean())
    expected_grad = (0.5 * (r2x.mean() - r2n.mean())
                     + alpha * a * 0.5 * ((r2x ** 2).mean() + (r2n ** 2).mean()))
    np.testing.assert_allclose(value, expected_value, rtol=1e-5)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-5)
    if alpha == 0.0:
        # Negatives wider than the data: descent raises a, concentrating the model.
        assert grad < 0


def test_with_exact_negatives_the_cd_gradient_is_the_likelihood_gradient():
    """For p_a = N(0, 1/a) in 1-D, d/da E_data[-log p_a] = m2 / 2 - 1 / (2a); with exact draws
    from p_a as negatives, the CD gradient estimates it."""
    a, n = 2.0, 200_000
    kx, kn = jax.random.split(jax.random.PRNGKey(1))
    x = 0.8 * jax.random.normal(kx, (n, 1))
    negatives = jax.random.normal(kn, (n, 1)) / np.sqrt(a)
    loss = contrastive_divergence_loss(quadratic_energy)
    grad = jax.grad(lambda a: loss(a, (x, negatives), None)[0])(jnp.float32(a))
    ml_grad = 0.5 * float(jnp.mean(x ** 2)) - 1.0 / (2 * a)
    assert abs(float(grad) - ml_grad) < 0.005  # Monte Carlo sd of the estimate is ~0.0008


def test_langevin_on_a_gaussian_reaches_the_unadjusted_chains_variance():
    """ULA on E = |x|^2 / (2 s^2): x' = (1 - eps / (2 s^2)) x + sqrt(eps) z, whose stationary
    variance is eps / (1 - (1 - eps / (2 s^2))^2)."""
    s2, eps = 1.5 ** 2, 0.1
    energy = lambda a, x: quadratic_energy(a, x)  # noqa: E731
    x0 = jnp.zeros((4000, 2))
    x = jax.jit(lambda a, k: langevin_negatives(energy, a, x0, k, 300, eps, np.sqrt(eps)))(
        jnp.float32(1.0 / s2), jax.random.PRNGKey(2))
    rho = 1.0 - eps / (2 * s2)
    assert float(jnp.var(x)) == pytest.approx(eps / (1 - rho ** 2), rel=0.04)
    assert langevin_negatives(energy, 1.0, x0[:3], jax.random.PRNGKey(0), 0, 0.1, 0.1) \
        .shape == (3, 2)
    # The chain is held fixed: no gradient reaches the energy's parameters through it.
    grad = jax.grad(lambda a: jnp.sum(langevin_negatives(energy, a, x0[:5] + 1.0,
                                                         jax.random.PRNGKey(0), 3, 0.1, 0.1)))
    assert float(grad(jnp.float32(1.0))) == 0.0
    clipped = langevin_negatives(energy, 1.0, x0[:50] + 3.0, jax.random.PRNGKey(0), 2, 0.1, 1.0,
                                 clip_range=(0.0, 1.0))
    assert float(clipped.min()) >= 0.0 and float(clipped.max()) <= 1.0


def test_the_replay_buffer_reinitializes_about_reinit_prob_and_pushes_into_its_slots():
    size, n, p = 500, 20_000, 0.05
    buffer = replay_buffer_init(jax.random.PRNGKey(0), size, (2,), 10.0, 11.0)  # in [10, 11)
    assert buffer.shape == (size, 2) and float(buffer.min()) >= 10.0
    x0, slots, reinit = replay_buffer_sample(buffer, jax.random.PRNGKey(1), n, p, -1.0, 1.0)
    assert x0.shape == (n, 2) and slots.shape == (n,) and reinit.shape == (n,)
    # 5% +- 4 standard deviations (0.0015 each) start from fresh noise in [-1, 1) ...
    assert abs(float(reinit.mean()) - p) < 0.006
    fresh = np.asarray(x0)[np.asarray(reinit)]
    assert fresh.min() >= -1.0 and fresh.max() < 1.0
    # ... the others where the buffer holds them.
    kept = ~np.asarray(reinit)
    np.testing.assert_array_equal(np.asarray(x0)[kept], np.asarray(buffer)[np.asarray(slots)][kept])
    pushed = replay_buffer_push(buffer, slots[:7], jnp.arange(14.0).reshape(7, 2))
    np.testing.assert_array_equal(np.asarray(pushed)[np.asarray(slots[6])], [12.0, 13.0])
    untouched = np.setdiff1d(np.arange(size), np.asarray(slots[:7]))
    np.testing.assert_array_equal(np.asarray(pushed)[untouched], np.asarray(buffer)[untouched])
    images, _, _ = replay_buffer_sample(jnp.zeros((4, 3, 3, 1)), jax.random.PRNGKey(0), 6, 1.0,
                                        0.0, 1.0)
    assert images.shape == (6, 3, 3, 1) and float(images.min()) >= 0.0  # all fresh


@pytest.mark.parametrize("call,message", [
    (lambda: contrastive_divergence_loss(quadratic_energy, -1.0), "alpha must be >= 0"),
    (lambda: replay_buffer_init(jax.random.PRNGKey(0), 0, (2,), 0.0, 1.0), "size must be"),
    (lambda: replay_buffer_sample(jnp.zeros((4, 2)), jax.random.PRNGKey(0), 2, 1.5, 0.0, 1.0),
     "reinit_prob must be in [0, 1]"),
    (lambda: langevin_negatives(quadratic_energy, 1.0, jnp.zeros((2, 2)),
                                jax.random.PRNGKey(0), -1, 0.1, 0.1), "num_steps must be"),
    (lambda: langevin_negatives(quadratic_energy, 1.0, jnp.zeros((2, 2)),
                                jax.random.PRNGKey(0), 2, 0.0, 0.1), "need step_size > 0"),
    (lambda: build_energy({"net": "resnet", "activation": "swish", "base_scale": 0.0}, (2,)),
     "valid choices: mlp, conv"),
    (lambda: build_energy({"net": "mlp", "activation": "gelu", "base_scale": 0.0,
                           "hidden": (8,)}, (2,)), "valid choices: elu, leaky_relu"),
    (lambda: build_energy({"net": "mlp", "activation": "swish", "base_scale": 0.0,
                           "hidden": (8,)}, (28, 28, 1)), "need net 'conv'"),
    (lambda: data_shape_of("cifar10"), "unknown data set 'cifar10'"),
])
def test_bad_inputs_are_refused_with_the_valid_choices(call, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        call()


def test_the_conv_energy_takes_28x28_images_and_is_small():
    net = build_energy({"net": "conv", "activation": "swish", "base_scale": 0.0,
                        "channels": (16, 32, 64)}, (28, 28, 1))
    params = abstract_params(net, (28, 28, 1))
    count = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))
    assert count < 30_000
    concrete = jax.jit(net.init)(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 1)))
    assert net.apply(concrete, jnp.ones((5, 28, 28, 1))).shape == (5,)


def test_the_grid_log_normalizer_of_a_gaussian_energy_is_log_2_pi_s2():
    s2 = 0.5
    log_z = grid_log_normalizer(lambda x: 0.5 * np.sum(x * x, -1) / s2, (-6, 6, -6, 6), 300)
    assert log_z == pytest.approx(np.log(2 * np.pi * s2), abs=1e-4)


# --- the script, the target --------------------------------------------------------------------


def tiny_config(steps: int) -> ml_collections.ConfigDict:
    from experiments.configs import ebm_toy

    config = ebm_toy.get_config()
    config.data.batch_size, config.data.num_train, config.data.num_test = 32, 256, 128
    config.train.steps, config.train.log_every = steps, 10
    config.train.eval_every = config.train.checkpoint_every = 10
    config.model.hidden = (16,)
    config.langevin.steps = 3
    config.buffer.size = 64
    config.eval.num_samples, config.eval.langevin_steps, config.eval.grid_resolution = 64, 5, 40
    return config


def saved_state(workdir, step):
    run_ = load_ebm(str(workdir), step)
    buffer = restore_state_fields(os.path.join(str(workdir), "checkpoints"), step,
                                  {"buffer": jax.ShapeDtypeStruct((64, 2), jnp.float32)})
    return run_, np.asarray(buffer["buffer"])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 20-step run in one go, and one stopped at 10 steps and resumed to 20."""
    from experiments import ebm

    whole, resumed = tmp_path_factory.mktemp("whole"), tmp_path_factory.mktemp("resumed")
    metrics = run(ebm.EXPERIMENT, tiny_config(20), str(whole), progress=False)
    run(ebm.EXPERIMENT, tiny_config(10), str(resumed), progress=False)
    run(ebm.EXPERIMENT, tiny_config(20), str(resumed), progress=False)
    return metrics, whole, resumed


def test_the_script_writes_the_contract_and_resumes_its_replay_buffer_exactly(trained):
    metrics, whole, resumed = trained
    assert metrics["steps"] == 20 and metrics["modes_captured"] <= metrics["num_modes"] == 8
    for name in ("mmd", "energy_distance", "sliced_wasserstein", "buffer_mmd", "test_nll",
                 "nll_excess", "train_seconds", "sample_seconds"):
        assert np.isfinite(metrics[name]), name
    assert json.load(open(whole / "metrics.json"))["steps"] == 20
    for name in ("density", "langevin", "curves"):
        assert (whole / f"{name}.png").exists(), name
    steps = [r["step"] for r in map(json.loads, open(resumed / "metrics.jsonl"))
             if r["split"] == "train"]
    assert steps == [10, 20]
    (a, buffer_a), (b, buffer_b) = saved_state(whole, 20), saved_state(resumed, 20)
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    np.testing.assert_array_equal(buffer_a, buffer_b)
    _, buffer_10 = saved_state(resumed, 10)
    assert not np.array_equal(buffer_10, buffer_b)  # the buffer moved between checkpoints


def test_the_learned_target_is_minus_the_checkpoints_energy(trained):
    _, whole, _ = trained
    target = learned_ebm_target(str(whole))
    trained_run = load_ebm(str(whole))
    assert isinstance(target, LearnedEBMTarget) and target.dim == 2 and trained_run.step == 20
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 2))
    np.testing.assert_allclose(target.log_prob(x),
                               -trained_run.energy(x.reshape(6, 2)).reshape(2, 3), rtol=1e-6)
    assert target.log_normalizer is None and len(target.modes().centres) == 8
    assert set(target.quality_metrics(np.asarray(x.reshape(6, 2)))) >= {"modes_captured"}
    with pytest.raises(NotImplementedError):
        target.sample(seed=jax.random.PRNGKey(0), sample_shape=(2,))
    same = build_target("learned_ebm", energy_fn=trained_run.net.apply,
                        params=trained_run.params, dim=2)
    np.testing.assert_allclose(same.log_prob(x), target.log_prob(x))


def test_temperflow_builds_the_learned_target_from_its_config(trained):
    from experiments import temperflow
    from experiments.configs import temperflow_ebm
    from gmjax.experiment.temperflow import make_target

    _, whole, _ = trained
    config = temperflow_ebm.get_config()
    config.data.options.workdir = str(whole)
    preflight(temperflow.EXPERIMENT, config)
    assert isinstance(make_target(config), LearnedEBMTarget)
    config.data.options.workdir = ""
    with pytest.raises(ConfigError, match="takes exactly one option, workdir"):
        preflight(temperflow.EXPERIMENT, config)


def test_a_missing_or_wrong_workdir_says_what_to_run(tmp_path):
    with pytest.raises(EBMWorkdirError, match="the ebm experiment with config ebm_toy"):
        learned_ebm_target(str(tmp_path / "nothing"))
    (tmp_path / "config.json").write_text(json.dumps({"data": {"name": "8gaussians"}}))
    with pytest.raises(EBMWorkdirError, match="not the config of an EBM run"):
        load_ebm(str(tmp_path))
    with pytest.raises(ValueError, match="not a workdir"):
        build_target("learned_ebm", workdir=str(tmp_path))
    with pytest.raises(ValueError, match="missing energy_fn, params, dim"):
        build_target("learned_ebm")


@pytest.mark.parametrize("changes,message", [
    ({"data.name": "9gaussians"}, "valid choices"),
    ({"model.net": "conv"}, "need net 'mlp'"),
    ({"model.activation": "gelu"}, "valid choices"),
    ({"langevin.steps": 0}, "langevin.steps=0 must be positive"),
    ({"buffer.reinit_prob": 1.5}, "must be in [0, 1]"),
    ({"buffer.low": 4.0}, "must be below"),
    ({"objective.alpha": -0.1}, "alpha must be >= 0"),
    ({"langevin.noise_scale": -1.0}, "must be >= 0"),
])
def test_bad_configs_stop_before_any_work_naming_the_field(tmp_path, changes, message):
    from experiments import ebm

    config = tiny_config(10)
    for path, value in changes.items():
        section, field = path.split(".")
        config[section][field] = value
    with pytest.raises(ConfigError) as info:
        run(ebm.EXPERIMENT, config, str(tmp_path / "run"), progress=False)
    assert message in str(info.value)
    assert not (tmp_path / "run").exists()


def test_the_samples_over_contours_figure_is_labelled(tmp_path, monkeypatch):
    kept, close = [], plt.close
    monkeypatch.setattr(plt, "close", lambda fig=None: kept.append(fig))
    samples = np.random.default_rng(0).normal(size=(300, 2))
    path = plot_samples_on_density(str(tmp_path / "s.png"), samples,
                                   lambda x: -0.5 * np.sum(x * x, -1), title="t", name="draws")
    try:
        assert os.path.getsize(path) > 0 and len(kept) == 1
        assert figure.unlabeled_axes(kept[0]) == []
        ax = kept[0].axes[0]
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("x1", "x2")
        assert ax.get_title().startswith("draws (300 points)")
    finally:
        for fig in kept:
            close(fig)


def test_the_table_weighs_the_modes_of_an_energy_by_its_grid_mass():
    """exp(-E) of the exact 8gaussians mixture puts 1/8 on each component."""
    from experiments.ebm_temperflow_table import energy_mode_weights
    from gmjax.data.toy import EIGHT_GAUSSIANS
    from gmjax.models.ebm import data_modes

    target = LearnedEBMTarget(lambda p, x: -EIGHT_GAUSSIANS.log_prob(x) * p, 1.0, 2,
                              modes=data_modes("8gaussians"))
    np.testing.assert_allclose(energy_mode_weights(target, 300), np.full(8, 1 / 8), atol=1e-3)
