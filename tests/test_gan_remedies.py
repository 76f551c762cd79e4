"""Mode-collapse remedies: minibatch discrimination, PacGAN packing, feature matching, unrolling."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gmjax.models.gan import build_gan
from gmjax.models.gan.mixtures import GRID, RING, sample_mixture
from gmjax.nets import MinibatchDiscrimination, MLPCritic, MLPGenerator
from gmjax.objectives.adversarial import (feature_matching_loss, make_gan_game,
                                          unrolled_gen_loss)
from gmjax.training import MinMaxState, data_mesh, make_minmax_step


def test_the_benchmark_mixtures_are_the_pacgan_ones():
    assert RING.centers.shape == (8, 2) and RING.sd == 0.01
    np.testing.assert_allclose(np.linalg.norm(RING.centers, axis=1), 1.0)
    assert GRID.centers.shape == (25, 2) and GRID.sd == 0.05
    assert sorted(set(GRID.centers[:, 0])) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    x = sample_mixture("ring", 4_000, 0)
    nearest = np.min(np.linalg.norm(x[:, None] - RING.centers[None], axis=-1), axis=1)
    assert np.mean(nearest <= 3 * RING.sd) > 0.98  # within 3 sd in 2-D: 1 - exp(-4.5)
    with pytest.raises(ValueError, match="valid choices: ring, grid"):
        sample_mixture("spiral", 4, 0)


def test_minibatch_discrimination_counts_close_neighbours():
    layer = MinibatchDiscrimination(num_kernels=4, kernel_dim=3)
    same = jnp.ones((5, 6))
    params = layer.init(jax.random.key(0), same)
    out = layer.apply(params, same)
    assert out.shape == (5, 6 + 4)
    np.testing.assert_allclose(out[:, :6], same)
    np.testing.assert_allclose(out[:, 6:], 4.0, rtol=1e-6)  # n - 1 identical neighbours: e^0 each
    far = 1e4 * jnp.arange(5.0)[:, None] * jnp.ones((5, 6))
    np.testing.assert_allclose(layer.apply(params, far)[:, 6:], 0.0, atol=1e-6)


def test_pacgan_critic_judges_concatenated_packs():
    x = jax.random.normal(jax.random.key(0), (8, 2))
    packed = MLPCritic((16,), pack=4)
    params = packed.init(jax.random.key(1), x)
    out = packed.apply(params, x)
    assert out.shape == (8,)
    # One logit per pack of 4 consecutive samples, repeated for each of them.
    np.testing.assert_allclose(out[:4], out[0])
    np.testing.assert_allclose(out[4:], out[4])
    # The first layer sees the 4 samples side by side: 4 x 2 inputs.
    assert params["params"]["Dense_0"]["kernel"].shape == (8, 16)
    h = nn_leaky(x.reshape(2, 8) @ params["params"]["Dense_0"]["kernel"]
                 + params["params"]["Dense_0"]["bias"])
    by_hand = h @ params["params"]["Dense_1"]["kernel"][:, 0] + params["params"]["Dense_1"]["bias"]
    np.testing.assert_allclose(out[::4], by_hand, rtol=1e-5, atol=1e-6)
    # A batch that is not a multiple of m (initialization, evaluation grids) is padded.
    assert packed.apply(params, x[:3]).shape == (3,)


def nn_leaky(h):
    return jnp.where(h > 0, h, 0.2 * h)


def test_feature_matching_loss_is_the_squared_distance_of_the_means():
    real = jnp.array([[0.0, 1.0], [2.0, 3.0]])
    fake = jnp.array([[1.0, 1.0], [1.0, 1.0], [1.0, 4.0]])
    # means (1, 2) and (1, 2): zero; shift the fakes by (3, -1): 9 + 1.
    assert float(feature_matching_loss(real, fake)) == pytest.approx(0.0, abs=1e-6)
    assert float(feature_matching_loss(real, fake + jnp.array([3.0, -1.0]))) == \
        pytest.approx(10.0, rel=1e-6)


def ring_game(**fields):
    gen, critic = MLPGenerator((16,)), MLPCritic((16, 8))
    game = make_gan_game(gen, critic, 2, **fields)
    gen_params = gen.init(jax.random.key(0), jnp.zeros((1, 2)))
    critic_params, game_state = game.init(critic.init(jax.random.key(1), jnp.zeros((1, 2))))
    return game, gen_params, critic_params, game_state


def test_feature_matching_game_matches_the_critic_features():
    game, gen_params, critic_params, state = ring_game(feature_matching=True)
    batch = jnp.asarray(sample_mixture("ring", 64, 0))
    key = jax.random.key(2)
    value, _ = game.gen_loss(gen_params, critic_params, batch, key, state)
    fake = gen_params_apply(game, gen_params, key, 64)
    expected = feature_matching_loss(game.critic_features(critic_params, state, batch),
                                     game.critic_features(critic_params, state, fake))
    assert float(value) == pytest.approx(float(expected), rel=1e-5)
    assert game.critic_features(critic_params, state, batch).shape == (64, 8)
    grads = jax.grad(lambda g: game.gen_loss(g, critic_params, batch, key, state)[0])(gen_params)
    assert max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(grads)) > 0


def gen_params_apply(game, gen_params, key, n):
    return game.generator.apply(gen_params, jax.random.normal(key, (n, game.latent_dim)))


def test_an_unrolled_step_with_k_0_equals_the_plain_step():
    results = []
    for fields in ({}, {"unroll_steps": 0}):
        game, gen_params, critic_params, state = ring_game(**fields)
        opt = optax.adam(1e-2, b1=0.5)
        train = MinMaxState.create(gen_params, critic_params, opt, opt, jax.random.key(3),
                                   game=state)
        step = make_minmax_step(game.critic_loss, game.gen_loss, opt, opt, data_mesh(1),
                                stateful=True)
        batch = jnp.asarray(sample_mixture("ring", 32, 1))[None]  # [k=1, 32, 2]
        for _ in range(3):
            train, _ = step(train, batch)
        results.append(train.gen_params)
    for a, b in zip(jax.tree.leaves(results[0]), jax.tree.leaves(results[1])):
        np.testing.assert_array_equal(a, b)
    assert unrolled_gen_loss(None, len, optax.sgd(1.0), 0) is len  # k = 0: the loss itself


def test_the_unrolled_loss_looks_through_one_sgd_critic_step():
    lr = 0.5
    game, gen_params, critic_params, state = ring_game(unroll_steps=1, unroll_lr=lr)
    plain, *_ = ring_game()
    batch = jnp.asarray(sample_mixture("ring", 32, 4))
    key = jax.random.key(5)

    def by_hand(g, through=True):
        g_critic = g if through else jax.lax.stop_gradient(g)
        grads = jax.grad(lambda c: game.critic_loss_through(
            c, g_critic, batch, jax.random.fold_in(key, 100), state)[0])(critic_params)
        ahead = jax.tree.map(lambda c, d: c - lr * d, critic_params, grads)
        return plain.gen_loss(g, ahead, batch, key, state)[0]

    unrolled = lambda g: game.gen_loss(g, critic_params, batch, key, state)[0]
    assert float(unrolled(gen_params)) == pytest.approx(float(by_hand(gen_params)), rel=1e-5)
    grad_unrolled, grad_hand, grad_frozen = (jax.jit(jax.grad(f))(gen_params) for f in (
        unrolled, by_hand, lambda g: by_hand(g, through=False)))
    for a, b in zip(jax.tree.leaves(grad_unrolled), jax.tree.leaves(grad_hand)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    # Differentiating through the critic's update changes the generator's gradient.
    gap = max(float(jnp.max(jnp.abs(a - b)))
              for a, b in zip(jax.tree.leaves(grad_unrolled), jax.tree.leaves(grad_frozen)))
    assert gap > 1e-6
    with pytest.raises(ValueError, match="unroll_steps"):
        ring_game(unroll_steps=-1)


@pytest.mark.parametrize("remedy", ["minibatch", "pacgan", "feature_matching", "unrolled"])
def test_every_remedy_builds_from_a_config_and_gives_finite_losses(remedy):
    model = {"name": "mlp", "latent_dim": 2, "hidden": (16, 16), "loss": "non_saturating",
             "remedy": remedy, "pack": 2, "minibatch_kernels": 3, "unroll_steps": 2,
             "unroll_lr": 0.01}
    gan = build_gan(model, (2,))
    game = gan.game(model)
    gen_params, critic_vars = gan.init(jax.random.key(0))
    critic_params, state = game.init(critic_vars)
    batch = jnp.asarray(sample_mixture("grid", 16, 0))
    c, _ = game.critic_loss(critic_params, gen_params, batch, jax.random.key(1), state)
    g, _ = game.gen_loss(gen_params, critic_params, batch, jax.random.key(1), state)
    assert np.isfinite(float(c)) and np.isfinite(float(g))
    with pytest.raises(ValueError, match="valid choices: none, minibatch, pacgan"):
        build_gan(dict(model, remedy="dropout"), (2,))
