"""The train-step and min-max-step builders against hand-computed updates."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gmjax.training import (MinMaxState, TrainState, data_mesh, make_minmax_step,
                            make_optimizer, make_train_step, replicate, shard_batch)


def regression_data(n=32, d=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5][:d]) + 0.3).astype(np.float32)
    return x, y


def mse(params, batch, key):
    x, y = batch
    residual = x @ params["w"] + params["b"] - y
    loss = jnp.mean(residual ** 2)
    return loss, {"mse": loss}


def init_params(d=3):
    return {"w": jnp.zeros(d), "b": jnp.zeros(())}


def test_sgd_step_matches_closed_form_gradient():
    x, y = regression_data()
    mesh = data_mesh(1)
    opt = optax.sgd(0.1)
    state = replicate(TrainState.create(init_params(), opt, jax.random.PRNGKey(0)), mesh)
    state, metrics = make_train_step(mse, opt, mesh)(state, shard_batch((x, y), mesh))
    # d/dw mean((xw + b - y)^2) at w = 0, b = 0 is -(2/n) x^T y; d/db is -(2/n) sum y.
    grad_w = -2.0 / len(x) * x.T @ y
    grad_b = -2.0 / len(x) * y.sum()
    np.testing.assert_allclose(state.params["w"], -0.1 * grad_w, rtol=1e-5)
    np.testing.assert_allclose(state.params["b"], -0.1 * grad_b, rtol=1e-5)
    np.testing.assert_allclose(metrics["loss"], np.mean(y ** 2), rtol=1e-6)
    np.testing.assert_allclose(metrics["grad_norm"],
                               np.sqrt(np.sum(grad_w ** 2) + grad_b ** 2), rtol=1e-5)
    assert int(state.step) == 1


def test_scanned_steps_equal_separate_calls():
    x, y = regression_data()
    mesh = data_mesh(1)
    opt = optax.adam(0.05)
    batches = [(x[i::4], y[i::4]) for i in range(4)]
    single = make_train_step(mse, opt, mesh, donate=False)
    state = replicate(TrainState.create(init_params(), opt, jax.random.PRNGKey(0)), mesh)
    s1 = state
    losses = []
    for b in batches:
        s1, m = single(s1, shard_batch(b, mesh))
        losses.append(float(m["loss"]))
    stacked = tuple(np.stack(xs) for xs in zip(*batches))
    s4, m4 = make_train_step(mse, opt, mesh, steps_per_call=4)(
        state, shard_batch(stacked, mesh, leading_axes=1))
    assert int(s4.step) == 4
    np.testing.assert_allclose(m4["loss"], losses, rtol=1e-6)
    for a, b in zip(jax.tree.leaves(s1.params), jax.tree.leaves(s4.params)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_gradient_accumulation_equals_one_big_batch():
    x, y = regression_data(n=32)
    mesh = data_mesh(1)
    config = {"name": "sgd", "lr": 0.1, "accumulate_steps": 2}
    accumulated = make_optimizer(config)
    state = replicate(TrainState.create(init_params(), accumulated, jax.random.PRNGKey(0)), mesh)
    step = make_train_step(mse, accumulated, mesh)
    state, _ = step(state, shard_batch((x[:16], y[:16]), mesh))
    np.testing.assert_array_equal(state.params["w"], np.zeros(3))  # no update yet
    state, _ = step(state, shard_batch((x[16:], y[16:]), mesh))

    plain = optax.sgd(0.1)
    ref = replicate(TrainState.create(init_params(), plain, jax.random.PRNGKey(0)), mesh)
    ref, _ = make_train_step(mse, plain, mesh)(ref, shard_batch((x, y), mesh))
    np.testing.assert_allclose(state.params["w"], ref.params["w"], rtol=1e-5)
    np.testing.assert_allclose(state.params["b"], ref.params["b"], rtol=1e-5)


@pytest.mark.parametrize("field,value,message", [
    ("name", "adamm", "valid choices: adam, adamw, lamb, rmsprop, sgd"),
    ("schedule", "cosin", "valid choices: constant, cosine, one_cycle, warmup_cosine"),
    ("lr", -1.0, "must be positive"),
])
def test_make_optimizer_rejects_bad_fields(field, value, message):
    config = {"name": "adam", "lr": 1e-3, field: value}
    with pytest.raises(ValueError, match=message):
        make_optimizer(config)


def test_keys_differ_by_step_and_repeat_for_the_same_step():
    mesh = data_mesh(1)
    opt = optax.sgd(0.0)

    def noise_loss(params, batch, key):
        z = jax.random.normal(key, ())
        return jnp.sum(params["w"]) * 0.0 + z, {"z": z}

    step = make_train_step(noise_loss, opt, mesh, donate=False)
    state = replicate(TrainState.create(init_params(), opt, jax.random.PRNGKey(3)), mesh)
    batch = shard_batch(regression_data(n=4), mesh)
    s1, m1 = step(state, batch)
    _, m1_again = step(state, batch)
    _, m2 = step(s1, batch)
    assert float(m1["z"]) == float(m1_again["z"])
    assert float(m1["z"]) != float(m2["z"])


def test_minmax_step_matches_hand_computed_sgd_game():
    """Critic c minimizes (c - g)^2 on each batch, generator g minimizes (g - 2)^2 + c g."""
    mesh = data_mesh(1)
    lr_c, lr_g, k = 0.1, 0.05, 3

    def critic_loss(c, g, batch, key):
        loss = jnp.mean((c["v"] - g["v"] * batch) ** 2)
        return loss, {}

    def gen_loss(g, c, batch, key):
        loss = (g["v"] - 2.0) ** 2 + c["v"] * g["v"] * jnp.mean(batch)
        return loss, {}

    opt_c, opt_g = optax.sgd(lr_c), optax.sgd(lr_g)
    state = replicate(MinMaxState.create({"v": jnp.array(0.5)}, {"v": jnp.array(-1.0)},
                                         opt_g, opt_c, jax.random.PRNGKey(0)), mesh)
    batches = np.array([[1.0, 1.0], [2.0, 2.0], [0.5, 0.5]], np.float32)  # [k, batch]
    step = make_minmax_step(critic_loss, gen_loss, opt_c, opt_g, mesh, critic_steps=k)
    state, metrics = step(state, shard_batch(batches, mesh, leading_axes=1))

    c, g = -1.0, 0.5
    for b in (1.0, 2.0, 0.5):
        c -= lr_c * 2 * (c - g * b)
    g -= lr_g * (2 * (g - 2.0) + c * 0.5)
    np.testing.assert_allclose(float(state.critic_params["v"]), c, rtol=1e-6)
    np.testing.assert_allclose(float(state.gen_params["v"]), g, rtol=1e-6)
    assert int(state.step) == 1
    assert {"critic/loss", "gen/loss", "loss", "critic/grad_norm"} <= set(metrics)


def test_the_gradient_norm_is_computed_only_when_asked_and_changes_nothing_else():
    x, y = regression_data()
    mesh = data_mesh(1)
    opt = optax.adam(0.05)
    step = make_train_step(mse, opt, mesh, donate=False)
    state = replicate(TrainState.create(init_params(), opt, jax.random.PRNGKey(0)), mesh)
    batch = shard_batch((x, y), mesh)
    with_norm, m1 = step(state, batch)
    without, m0 = step(state, batch, log=False)
    assert np.isnan(m0["grad_norm"]) and np.isfinite(m1["grad_norm"])
    for a, b in zip(jax.tree.leaves(with_norm), jax.tree.leaves(without)):
        np.testing.assert_array_equal(a, b)
    assert float(m0["loss"]) == float(m1["loss"])


def test_a_scanned_call_gives_the_gradient_norm_of_its_last_update():
    x, y = regression_data()
    mesh = data_mesh(1)
    opt = optax.adam(0.05)
    batches = [(x[i::4], y[i::4]) for i in range(4)]
    state = replicate(TrainState.create(init_params(), opt, jax.random.PRNGKey(0)), mesh)
    single = make_train_step(mse, opt, mesh, donate=False)
    s1 = state
    for b in batches:
        s1, m1 = single(s1, shard_batch(b, mesh))
    scanned = make_train_step(mse, opt, mesh, steps_per_call=4, donate=False)
    stacked = shard_batch(tuple(np.stack(xs) for xs in zip(*batches)), mesh, leading_axes=1)
    _, m4 = scanned(state, stacked)
    assert m4["loss"].shape == (4,) and m4["grad_norm"].shape == ()
    np.testing.assert_allclose(m4["grad_norm"], m1["grad_norm"], rtol=1e-6)
    s_log, _ = scanned(state, stacked)
    s_quiet, m_quiet = scanned(state, stacked, log=False)
    assert np.isnan(m_quiet["grad_norm"])
    for a, b in zip(jax.tree.leaves(s_log), jax.tree.leaves(s_quiet)):  # the same updates
        np.testing.assert_array_equal(a, b)


def test_one_device_compiles_a_plain_jit_without_shard_map():
    x, y = regression_data()
    mesh = data_mesh(1)
    opt = optax.sgd(0.1)
    state = replicate(TrainState.create(init_params(), opt, jax.random.PRNGKey(0)), mesh)
    text = make_train_step(mse, opt, mesh).lower(state, shard_batch((x, y), mesh)).as_text()
    assert "manual_computation" not in text and "shard_map" not in text
    assert "all-reduce" not in text and "all_reduce" not in text


def test_minmax_gradient_norms_only_when_asked_and_updates_unchanged():
    """The game of the test above: on a logged call the norms are the last critic
    update's |dL_c/dc| and the generator's |dL_g/dg|; unlogged, NaN, same updates."""
    mesh = data_mesh(1)
    lr_c, lr_g = 0.1, 0.05
    critic_loss = lambda c, g, b, key: (jnp.mean((c["v"] - g["v"] * b) ** 2), {})
    gen_loss = lambda g, c, b, key: ((g["v"] - 2.0) ** 2 + c["v"] * g["v"] * jnp.mean(b), {})
    opt_c, opt_g = optax.sgd(lr_c), optax.sgd(lr_g)
    state = replicate(MinMaxState.create({"v": jnp.array(0.5)}, {"v": jnp.array(-1.0)},
                                         opt_g, opt_c, jax.random.PRNGKey(0)), mesh)
    batches = shard_batch(np.array([[1.0], [2.0]], np.float32), mesh, leading_axes=1)
    step = make_minmax_step(critic_loss, gen_loss, opt_c, opt_g, mesh, critic_steps=2,
                            donate=False)
    logged, m1 = step(state, batches)
    quiet, m0 = step(state, batches, log=False)
    c, g = -1.0, 0.5
    c -= lr_c * 2 * (c - g * 1.0)
    critic_grad = 2 * (c - g * 2.0)
    c -= lr_c * critic_grad
    np.testing.assert_allclose(m1["critic/grad_norm"], abs(critic_grad), rtol=1e-6)
    np.testing.assert_allclose(m1["gen/grad_norm"], abs(2 * (g - 2.0) + c * 2.0), rtol=1e-6)
    assert np.isnan(m0["critic/grad_norm"]) and np.isnan(m0["gen/grad_norm"])
    for a, b in zip(jax.tree.leaves(logged), jax.tree.leaves(quiet)):
        np.testing.assert_array_equal(a, b)
