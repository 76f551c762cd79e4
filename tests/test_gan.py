"""GANs: the adversarial losses, DCGAN nets, min-max training, the experiment, the latent EBM."""

import functools
import json
import math
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from experiments import gan as gan_experiment
from gmjax import experiment
from experiments.configs import gan_fashion_mnist
from gmjax.data import DatasetNotFoundError, load_dataset
from gmjax.models.gan import GANWorkdirError, build_gan, latent_ebm_target, load_gan
from gmjax.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from gmjax.objectives.adversarial import (GAN_LOSSES, discriminator_loss, minimax_generator_loss,
                                          non_saturating_generator_loss)
from gmjax.targets.latent_ebm import LatentEBMTarget
from gmjax.targets.registry import build_target
from gmjax.training import Checkpointer, MinMaxState, data_mesh, make_minmax_step

LOG2 = math.log(2.0)


def softplus(t: float) -> float:
    return math.log1p(math.exp(t))


@functools.lru_cache(maxsize=None)
def fashion_mnist_found() -> bool:
    try:
        load_dataset("fashion_mnist", "test[:1]")
    except DatasetNotFoundError:
        return False
    return True


def require_fashion_mnist() -> None:
    """Skips, as .ci/run promises, where the Debian package is not installed."""
    if not fashion_mnist_found():
        pytest.skip("Fashion-MNIST not found: apt-get install dataset-fashion-mnist to run")


# --- losses on tiny logits ---------------------------------------------------------------


def test_losses_match_hand_computed_values():
    real, fake = jnp.array([0.0, 2.0]), jnp.array([-1.0, 0.0, 3.0])
    # L_D = mean -log sigmoid(d(x)) + mean -log(1 - sigmoid(d(G(z)))).
    expected_d = ((softplus(-0.0) + softplus(-2.0)) / 2
                  + (softplus(-1.0) + softplus(0.0) + softplus(3.0)) / 3)
    assert float(discriminator_loss(real, fake)) == pytest.approx(expected_d, rel=1e-6)
    # Minimax: mean log(1 - D); non-saturating: mean -log D.
    expected_mm = np.mean([math.log(1 - 1 / (1 + math.exp(-t))) for t in (-1.0, 0.0, 3.0)])
    expected_ns = np.mean([-math.log(1 / (1 + math.exp(-t))) for t in (-1.0, 0.0, 3.0)])
    assert float(minimax_generator_loss(fake)) == pytest.approx(expected_mm, rel=1e-6)
    assert float(non_saturating_generator_loss(fake)) == pytest.approx(expected_ns, rel=1e-6)
    # An undecided discriminator (all logits 0): L_D = 2 log 2, L_G = -log 2 / log 2.
    zeros = jnp.zeros(4)
    assert float(discriminator_loss(zeros, zeros)) == pytest.approx(2 * LOG2, rel=1e-6)
    assert float(minimax_generator_loss(zeros)) == pytest.approx(-LOG2, rel=1e-6)
    assert float(non_saturating_generator_loss(zeros)) == pytest.approx(LOG2, rel=1e-6)
    # Stable for confident logits, where log(sigmoid) would underflow.
    big = jnp.array([200.0])
    assert float(discriminator_loss(-big, big)) == pytest.approx(400.0, rel=1e-6)
    assert float(non_saturating_generator_loss(-big)) == pytest.approx(200.0, rel=1e-6)
    assert set(GAN_LOSSES.names()) >= {"minimax", "non_saturating"}
    with pytest.raises(ValueError, match="valid choices: began, .*minimax, .*non_saturating"):
        GAN_LOSSES.get("wasserstein")


# --- networks -----------------------------------------------------------------------------


def test_dcgan_shapes_and_ranges():
    gens = [DCGANGenerator(channels=4),  # DCGAN's transposed convolutions, no norm
            DCGANGenerator(channels=4, norm="pixel", upsample="resize"),
            DCGANGenerator(channels=4, norm="layer")]
    raw = DCGANGenerator(channels=4, output="none")  # gens[0] without its tanh
    disc = DCGANDiscriminator(channels=4, norm="layer")
    z = jax.random.normal(jax.random.PRNGKey(0), (5, 3))

    @jax.jit
    def run(z):
        dp = disc.init(jax.random.PRNGKey(2), jnp.zeros((1, 28, 28, 1)))
        params = [g.init(jax.random.PRNGKey(1), z) for g in gens]
        images = [g.apply(p, z) for g, p in zip(gens, params)]
        return images, raw.apply(params[0], z), disc.apply(dp, images[0])

    images, logits, d = run(z)
    for x in images:
        assert x.shape == (5, 28, 28, 1) and float(jnp.std(x)) > 0
        assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    np.testing.assert_allclose(jnp.tanh(logits), images[0], rtol=1e-5, atol=1e-6)
    assert d.shape == (5,) and bool(jnp.all(jnp.isfinite(d)))
    with pytest.raises(ValueError, match="valid choices: none, pixel, layer"):
        DCGANGenerator(norm="batch").init(jax.random.PRNGKey(0), z)
    with pytest.raises(ValueError, match="valid choices: transpose, resize"):
        DCGANGenerator(upsample="bilinear").init(jax.random.PRNGKey(0), z)


# --- a few min-max steps ---------------------------------------------------------------------


def test_minmax_steps_on_tiny_data_move_the_losses_and_stay_finite():
    require_fashion_mnist()
    gan = build_gan({"name": "dcgan", "latent_dim": 2, "channels": 4}, (28, 28, 1))
    gen_params, disc_params = jax.jit(gan.init)(jax.random.PRNGKey(0))
    initial_gen = jax.tree.map(np.array, gen_params)  # the step donates its input state
    critic_loss, gen_loss = gan.losses("non_saturating")
    real = load_dataset("fashion_mnist", "train[:64]").x  # uint8 [64, 28, 28, 1]

    # At initialization (weights ~ N(0, 0.02^2)) the logits are ~0: L_D ~ 2 log 2, L_G ~ log 2.
    key = jax.random.PRNGKey(1)
    d0, _ = jax.jit(critic_loss)(disc_params, gen_params, real[:32], key)
    g0, _ = jax.jit(gen_loss)(gen_params, disc_params, real[:32], key)
    assert float(d0) == pytest.approx(2 * LOG2, abs=0.05)
    assert float(g0) == pytest.approx(LOG2, abs=0.05)

    k, batch, steps = 2, 32, 12
    opt = optax.adam(2e-3, b1=0.5)
    state = MinMaxState.create(gen_params, disc_params, opt, opt, jax.random.PRNGKey(2))
    step = make_minmax_step(critic_loss, gen_loss, opt, opt, data_mesh(1), critic_steps=k)
    rng = np.random.default_rng(0)
    history = []
    for _ in range(steps):
        batches = real[rng.choice(len(real), size=(k, batch), replace=False)]  # [k, batch, ...]
        state, metrics = step(state, batches)
        history.append({name: float(v) for name, v in metrics.items()})
    assert int(state.step) == steps
    for record in history:
        assert all(np.isfinite(v) for v in record.values()), record
    # The discriminator learns to tell real from fake: its loss drops and D(real) > D(fake).
    assert history[-1]["critic/loss"] < 2 * LOG2 - 0.1
    assert history[-1]["critic/d_real"] > history[-1]["critic/d_fake"]
    assert history[-1]["gen/loss"] > history[0]["gen/loss"]
    moved = jax.tree.map(lambda a, b: float(np.max(np.abs(a - b))), state.gen_params,
                         initial_gen)
    assert max(jax.tree.leaves(moved)) > 0


# --- the experiment end to end, and the latent EBM it feeds ------------------------------------


def tiny_config(steps: int = 4):
    config = gan_fashion_mnist.get_config()
    config.data.train_split = "train[:256]"
    config.data.test_split = "test[:128]"
    config.data.batch_size = 32
    config.model.channels = 4
    config.train.steps = steps
    config.train.critic_steps = 2
    config.train.log_every = 2
    config.train.checkpoint_every = 2
    config.train.eval_every = 4
    config.eval.num_test = 128
    config.eval.batch_size = 64
    return config


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    """A 4-step GAN run, resumed to 6 steps: (workdir, metrics)."""
    require_fashion_mnist()
    workdir = str(tmp_path_factory.mktemp("gan_z2"))
    run = lambda config: experiment.run(gan_experiment.EXPERIMENT, config, workdir)
    first = run(tiny_config(4))
    assert first["steps"] == 4
    return workdir, run(tiny_config(6))


def test_experiment_writes_the_contract_files_and_resumes(gan_run):
    workdir, metrics = gan_run
    for name in ("config.json", "metrics.jsonl", "metrics.json", "samples.png",
                 "latent_grid.png", "curves.png"):
        assert os.path.isfile(os.path.join(workdir, name)), name
    with open(os.path.join(workdir, "samples.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    config = json.load(open(os.path.join(workdir, "config.json")))
    assert config["model"]["latent_dim"] == 2 and config["optim"]["critic_lr"] == 5e-4
    assert config["train"]["steps"] == 6
    assert metrics["steps"] == 6 and json.load(open(os.path.join(workdir, "metrics.json"))) == \
        pytest.approx({k: v for k, v in metrics.items()})
    for name in ("critic_loss", "gen_loss", "d_real", "d_fake", "train_critic_loss",
                 "train_gen_loss", "train_seconds", "sample_seconds"):
        assert np.isfinite(metrics[name]), name
    records = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    assert [r["step"] for r in records if r["split"] == "train"] == [2, 4, 6]
    assert [r["step"] for r in records if r["split"] == "eval"] == [4, 6]  # and the last step
    assert Checkpointer(os.path.join(workdir, "checkpoints")).latest_step() == 6


def test_a_bad_loss_name_stops_with_the_valid_choices(tmp_path):
    config = tiny_config()
    config.model.loss = "wasserstein"
    with pytest.raises(experiment.ConfigError, match="valid choices: began, .*non_saturating"):
        experiment.run(gan_experiment.EXPERIMENT, config, str(tmp_path))
    assert not os.path.exists(tmp_path / "checkpoints")


@functools.partial(jax.jit, static_argnums=0)
def hand_log_prob(gan, gen_params, disc_params, z):  # [n, d] -> [n]
    """``log N(z; 0, I) + d(G(z))`` written out (jitted: eager convolutions compile op by op)."""
    log_normal = -0.5 * jnp.sum(z ** 2, -1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)
    return log_normal + gan.discriminator.apply(disc_params, gan.generator.apply(gen_params, z))


def test_latent_ebm_from_a_workdir_is_log_normal_plus_the_logit(gan_run):
    workdir, _ = gan_run
    target = latent_ebm_target(workdir)
    run = load_gan(workdir)
    assert run.step == 6 and target.dim == 2 and target.log_normalizer is None
    z = jax.random.normal(jax.random.PRNGKey(0), (7, 2)) * 2.0
    log_p = target.log_prob(z)
    assert log_p.shape == (7,) and bool(jnp.all(jnp.isfinite(log_p)))
    np.testing.assert_allclose(log_p, hand_log_prob(run.gan, run.gen_params, run.disc_params, z),
                               rtol=1e-5, atol=1e-5)
    grad = jax.jit(jax.grad(lambda z: jnp.sum(target.log_prob(z))))(z)
    assert grad.shape == (7, 2) and bool(jnp.all(jnp.isfinite(grad)))
    np.testing.assert_allclose(target.energy(z), -log_p, rtol=1e-6)
    np.testing.assert_allclose(target.log_prob(z.reshape(7, 1, 2)), log_p[:, None], rtol=1e-6)
    images = target.decode(z)
    assert images.shape == (7, 28, 28, 1)
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    with pytest.raises(ValueError, match=r"z \[\.\.\., 2\]"):
        target.log_prob(jnp.zeros((3, 5)))


TINY_GAN = {"name": "dcgan", "latent_dim": 2, "channels": 4}


@pytest.fixture(scope="module")
def saved_gan(tmp_path_factory):
    """A workdir as the GAN experiment leaves it, without training: (workdir, gan, params by step).

    ``config.json`` and two checkpoints (steps 2 and 3) of a ``MinMaxState``
    with random networks, so loading needs no data set.
    """
    workdir = str(tmp_path_factory.mktemp("saved_gan"))
    gan = build_gan(TINY_GAN, (28, 28, 1))
    with open(os.path.join(workdir, "config.json"), "w") as f:
        json.dump({"model": TINY_GAN, "data": {"name": "fashion_mnist"}}, f)
    opt = optax.adam(1e-3)
    checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"))
    params = {}
    for step in (2, 3):
        gen_params, disc_params = jax.jit(gan.init)(jax.random.PRNGKey(step))
        params[step] = (gen_params, disc_params)
        checkpointer.save(step, MinMaxState.create(gen_params, disc_params, opt, opt,
                                                   jax.random.PRNGKey(0)))
    checkpointer.close()
    return workdir, gan, params


def test_latent_ebm_target_reads_the_checkpoint_it_is_asked_for(saved_gan):
    workdir, gan, params = saved_gan
    target = latent_ebm_target(workdir)  # the latest: step 3
    assert target.dim == 2 and target.image_shape == (28, 28, 1)
    assert repr(target).endswith("step 3)")
    z = jax.random.normal(jax.random.PRNGKey(0), (6, 2))
    np.testing.assert_allclose(target.log_prob(z), hand_log_prob(gan, *params[3], z),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(target.critic_logit(z),
                               jax.jit(gan.logits)(params[3][1], jax.jit(gan.generate)(
                                   params[3][0], z)), rtol=1e-5, atol=1e-5)
    images = target.decode(z)
    np.testing.assert_allclose(images, jax.jit(gan.decode)(params[3][0], z), atol=1e-6)
    earlier = latent_ebm_target(workdir, step=2)
    np.testing.assert_allclose(earlier.log_prob(z), hand_log_prob(gan, *params[2], z),
                               rtol=1e-5, atol=1e-5)
    assert earlier._log_prob is target._log_prob  # one compilation per architecture
    with pytest.raises(GANWorkdirError, match="has no step 7; it holds steps \\[2, 3\\]"):
        latent_ebm_target(workdir, step=7)


def test_latent_ebm_from_modules_in_32_dimensions():
    gan = build_gan({"name": "dcgan", "latent_dim": 32, "channels": 4}, (28, 28, 1))
    gen_params, disc_params = jax.jit(gan.init)(jax.random.PRNGKey(3))
    target = build_target("latent_ebm", decoder=gan.generator.apply, decoder_params=gen_params,
                          critic=gan.discriminator.apply, critic_params=disc_params,
                          latent_dim=32)
    assert isinstance(target, LatentEBMTarget) and target.dim == 32
    z = jax.random.normal(jax.random.PRNGKey(4), (5, 32))
    log_p = target.log_prob(z)
    assert log_p.shape == (5,)
    np.testing.assert_allclose(log_p, hand_log_prob(gan, gen_params, disc_params, z),
                               rtol=1e-5, atol=1e-5)
    grad = jax.grad(lambda z: jnp.sum(target.log_prob(z)))(z)
    assert bool(jnp.all(jnp.isfinite(grad)))


def test_a_missing_or_empty_workdir_names_the_training_command(saved_gan, tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(GANWorkdirError) as error:
        latent_ebm_target(str(missing))
    assert str(missing) in str(error.value) and "does not exist" in str(error.value)
    assert "the gan experiment with config gan_fashion_mnist" in str(error.value)

    empty = tmp_path / "unstarted"  # a run that wrote its config but no checkpoint yet
    empty.mkdir()
    shutil.copy(os.path.join(saved_gan[0], "config.json"), empty / "config.json")
    with pytest.raises(GANWorkdirError, match="has no checkpoint yet") as error:
        latent_ebm_target(str(empty))
    assert f"--workdir {empty}" in str(error.value)
    assert "--config.model.latent_dim=2" in str(error.value)
    with pytest.raises(ValueError, match="needs the workdir"):
        latent_ebm_target("")
    with pytest.raises(ValueError, match=r"latent_ebm_target\(workdir\)"):
        build_target("latent_ebm", workdir=str(empty))
    with pytest.raises(ValueError, match="missing decoder, decoder_params"):
        build_target("latent_ebm")
