"""Conditional GANs (labels into both players), and checks behind the grid table's rows.

* the MLP players embed labels, DCGAN's generator reads one-hot labels and its
  discriminator a projection term; both refuse a missing or unexpected label;
* the mixtures' mode indices are the labels of the 2-D data;
* a conditional GAN on the ring puts the samples of label c nearest mode c
  after a short run of ``experiments/gan.py``;
* PacGAN's game packs real with real and fake with fake; a spectrally
  normalized MLP critic's power-iteration state tracks its kernels through
  the game's steps.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gmjax.models.gan import (DATA_CLASSES, MODE_MIXTURES, build_gan, latent_ebm_from_gan,
                              sample_mixture, sample_mixture_modes)
from gmjax.nets import MLPCritic, MLPGenerator
from gmjax.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from gmjax.nets.spectral import largest_singular_value
from gmjax.objectives.adversarial import make_gan_game
from gmjax.training import MinMaxState, data_mesh, make_minmax_step

MLP_MODEL = {"name": "mlp", "latent_dim": 2, "hidden": (8, 8), "remedy": "none",
             "embed_dim": 3, "conditional": True}


def test_mlp_players_concatenate_a_label_embedding():
    gen = MLPGenerator((8,), num_classes=5, embed_dim=3)
    z = jax.random.normal(jax.random.key(0), (6, 2))
    y = jnp.array([0, 1, 2, 3, 4, 0])
    params = gen.init(jax.random.key(1), z, y)
    assert params["params"]["label_embedding"]["embedding"].shape == (5, 3)
    assert params["params"]["Dense_0"]["kernel"].shape == (2 + 3, 8)  # [z, e(y)]
    out = gen.apply(params, z, y)
    assert out.shape == (6, 2)
    other = gen.apply(params, z, (y + 1) % 5)
    assert not np.allclose(out, other)
    # Same z, same label: same point (rows 0 and 5 differ only in z).
    np.testing.assert_allclose(gen.apply(params, z[:1], y[:1]), out[:1], rtol=1e-6)
    critic = MLPCritic((8,), num_classes=5, embed_dim=3, pack=2)
    cparams = critic.init(jax.random.key(2), out, y)
    assert cparams["params"]["Dense_0"]["kernel"].shape == (2 * (2 + 3), 8)  # packed [x, e]
    assert critic.apply(cparams, out, y).shape == (6,)
    with pytest.raises(ValueError, match="conditional on 5 classes"):
        gen.apply(params, z)
    with pytest.raises(ValueError, match="unconditional"):
        MLPGenerator((8,)).init(jax.random.key(1), z, y)


def test_dcgan_conditions_the_generator_by_one_hot_and_the_critic_by_projection():
    gen = DCGANGenerator(channels=2, num_classes=10)
    disc = DCGANDiscriminator(channels=2, num_classes=10)
    z, y = jnp.ones((3, 4)), jnp.array([0, 3, 9])
    gparams = gen.init(jax.random.key(0), z, y)
    assert gparams["params"]["Dense_0"]["kernel"].shape == (4 + 10, 7 * 7 * 4)
    images = gen.apply(gparams, z, y)
    assert images.shape == (3, 28, 28, 1)
    assert not np.allclose(images[0], gen.apply(gparams, z, y + 1)[0])
    dparams = disc.init(jax.random.key(1), images, y)
    logits = disc.apply(dparams, images, y)
    assert logits.shape == (3,)
    # With the class embedding at zero, d(x, y) is the unconditional d(x) for every label.
    zero = jax.tree_util.tree_map(lambda v: v, dparams)
    zero["params"]["label_projection"]["embedding"] = jnp.zeros((10, 7 * 7 * 4))
    plain = DCGANDiscriminator(channels=2).apply(
        {"params": {k: v for k, v in zero["params"].items() if k != "label_projection"}},
        images)
    for labels in (y, (y + 4) % 10):
        np.testing.assert_allclose(disc.apply(zero, images, labels), plain, rtol=1e-5,
                                   atol=1e-6)
    assert not np.allclose(disc.apply(dparams, images, (y + 4) % 10), logits)


def test_a_conditional_dcgan_game_steps_on_labelled_images():
    model = {"name": "dcgan", "latent_dim": 4, "channels": 2, "conditional": True,
             "loss": "non_saturating"}
    gan = build_gan(model, (28, 28, 1), DATA_CLASSES["fashion_mnist"])
    assert gan.conditional and gan.num_classes == 10
    game = gan.game(model)
    gen_params, critic_vars = gan.init(jax.random.key(0))
    critic_params, game_state = game.init(critic_vars)
    opt = optax.adam(1e-3, b1=0.5)
    state = MinMaxState.create(gen_params, critic_params, opt, opt, jax.random.key(1),
                               game=game_state)
    step = make_minmax_step(game.critic_loss, game.gen_loss, opt, opt, data_mesh(1),
                            stateful=True)
    rng = np.random.default_rng(0)
    batch = {"x": rng.integers(0, 256, (1, 8, 28, 28, 1), dtype=np.uint8),
             "y": rng.integers(0, 10, (1, 8)).astype(np.int32)}
    state, metrics = step(state, batch)
    assert np.isfinite(float(metrics["critic/loss"])) and np.isfinite(float(metrics["gen/loss"]))
    with pytest.raises(ValueError, match="'x': examples, 'y': labels"):
        game.critic_loss(critic_params, gen_params, batch["x"][0], jax.random.key(2),
                         game_state)
    assert gan.generate(state.gen_params, jnp.zeros((2, 4)), jnp.array([1, 2])).shape == \
        (2, 28, 28, 1)
    with pytest.raises(ValueError, match="needs an unconditional GAN"):
        latent_ebm_from_gan(gan, state.gen_params, state.critic_params)
    with pytest.raises(ValueError, match="number of classes"):
        build_gan(model, (28, 28, 1))


def test_mixture_modes_are_the_components_of_the_draws():
    for name, mixture in MODE_MIXTURES.items():
        x, modes = sample_mixture_modes(name, 500, 3)
        np.testing.assert_array_equal(x, sample_mixture(name, 500, 3))
        nearest = np.argmin(np.sum((x[:, None] - mixture.centers[None]) ** 2, -1), axis=1)
        np.testing.assert_array_equal(nearest, modes)
        assert DATA_CLASSES[name] == len(mixture.centers)


def test_conditional_ring_samples_land_on_their_labels_mode(tmp_path):
    """After 300 steps (z, y) -> G(z, y) puts over 90% of label c's draws nearest mode c
    (the unconditional marginal is far from covering the ring's sd-0.01 modes yet)."""
    from experiments import gan as gan_experiment
    from experiments.configs import gan_ring
    from gmjax import experiment

    config = gan_ring.get_config()
    config.model.conditional = True
    config.model.hidden = (64, 64)
    config.data.num_train = 4_096
    config.data.batch_size = 128
    config.train.steps = 300
    config.train.steps_per_call = 100
    config.train.log_every = 100
    config.train.eval_every = 300
    config.train.checkpoint_every = 300
    config.eval.num_samples = 400
    config.eval.panels = 2
    metrics = experiment.run(gan_experiment.EXPERIMENT, config, str(tmp_path))
    assert metrics["label_accuracy"] > 0.9, metrics
    assert 0.0 <= metrics["raw_label_accuracy"] <= 1.0
    # The evaluation draws each label equally often.
    assert np.bincount(gan_experiment.draw_labels(
        build_gan(config.model, (2,), 8), 400), minlength=8).tolist() == [50] * 8


def test_pacgan_game_packs_real_with_real_and_fake_with_fake():
    gen, critic = MLPGenerator((8,)), MLPCritic((8,), pack=4)
    game = make_gan_game(gen, critic, 2)
    x = jnp.asarray(sample_mixture("grid", 16, 0))
    gparams = gen.init(jax.random.key(0), x[:1, :2])
    cparams = critic.init(jax.random.key(1), x)
    key = jax.random.key(2)
    loss, _ = game.critic_loss(cparams, gparams, x, key, None)
    fake = gen.apply(gparams, jax.random.normal(key, (16, 2)))
    real_out, fake_out = critic.apply(cparams, x), critic.apply(cparams, fake)
    by_hand = jnp.mean(jax.nn.softplus(-real_out)) + jnp.mean(jax.nn.softplus(fake_out))
    assert float(loss) == pytest.approx(float(by_hand), rel=1e-6)
    # The packed logits are those of the 4 packs of 4 consecutive real points.
    packs = x.reshape(4, 8)
    np.testing.assert_allclose(real_out[::4], MLPCritic((8,), pack=1).apply(
        {"params": cparams["params"]}, packs), rtol=1e-5)


def test_spectral_mlp_critic_state_tracks_its_kernels_through_hinge_steps():
    """The grid table's hinge + spectral-norm row: the stored sigma of every layer stays the
    kernel's largest singular value while the game trains (power iteration carried)."""
    gan = build_gan({"name": "mlp", "latent_dim": 2, "hidden": (16, 16), "remedy": "none",
                     "spectral_norm": True}, (2,))
    game = gan.game({"loss": "hinge", "spectral_norm": True})
    gen_params, critic_vars = gan.init(jax.random.key(0))
    critic_params, game_state = game.init(critic_vars)
    opt = optax.adam(1e-2, b1=0.5)
    state = MinMaxState.create(gen_params, critic_params, opt, opt, jax.random.key(1),
                               game=game_state)
    step = make_minmax_step(game.critic_loss, game.gen_loss, opt, opt, data_mesh(1),
                            stateful=True, steps_per_call=60)
    data = sample_mixture("grid", 60 * 64, 0).reshape(60, 1, 64, 2)
    before = jax.tree.map(np.asarray, state.game["spectral"])
    state, _ = step(state, data)
    paths = {jax.tree_util.keystr(p): v for p, v in
             jax.tree_util.tree_leaves_with_path(state.critic_params)}
    sigmas = {jax.tree_util.keystr(p): v for p, v in
              jax.tree_util.tree_leaves_with_path(state.game["spectral"]) if "sigma" in
              jax.tree_util.keystr(p)}
    kernels = [v for p, v in sorted(paths.items()) if "kernel" in p]
    assert len(kernels) == len(sigmas) == 3
    for kernel, sigma in zip(kernels, [sigmas[k] for k in sorted(sigmas)]):
        if kernel.shape[-1] > 1:  # a [k, 1] kernel's sigma is its norm after one iteration
            assert float(sigma) == pytest.approx(float(largest_singular_value(kernel)),
                                                 rel=2e-2)
    changed = jax.tree.map(lambda a, b: not np.allclose(a, b), before,
                           jax.tree.map(np.asarray, state.game["spectral"]))
    assert all(jax.tree.leaves(changed))
