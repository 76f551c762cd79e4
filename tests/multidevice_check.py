"""Run by test_multidevice.py in a fresh process with 4 forced CPU devices.

Trains the same model with the same data for N steps on a 1-device and on a
4-device mesh (plain and min-max steps) and prints the largest parameter
difference as JSON.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from gmjax.nets import MLP  # noqa: E402
from gmjax.training import (MinMaxState, TrainState, data_mesh, make_minmax_step,  # noqa: E402
                            make_train_step, replicate, shard_batch)

STEPS = 25


def max_diff(a, b):
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in
               zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def regression(num_devices, x, y):
    model = MLP((32, 32, 1), activation=nn.tanh)
    mesh = data_mesh(num_devices)
    params = model.init(jax.random.PRNGKey(0), x[:1])

    def loss(p, batch, key):
        bx, by = batch
        err = model.apply(p, bx)[:, 0] - by
        return jnp.mean(err ** 2), {}

    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-2))
    state = replicate(TrainState.create(params, opt, jax.random.PRNGKey(1)), mesh)
    step = make_train_step(loss, opt, mesh)
    for t in range(STEPS):
        sl = slice((t % 4) * 64, (t % 4 + 1) * 64)
        state, _ = step(state, shard_batch((x[sl], y[sl]), mesh))
    return state.params


def game(num_devices, x):
    mesh = data_mesh(num_devices)
    gen = MLP((16, 2))
    critic = MLP((16, 1))
    g0 = gen.init(jax.random.PRNGKey(2), x[:1])
    c0 = critic.init(jax.random.PRNGKey(3), x[:1])

    def critic_loss(c, g, batch, key):
        fake = gen.apply(g, batch[:, ::-1])  # deterministic "noise": the reflected batch
        return jnp.mean(critic.apply(c, fake)) - jnp.mean(critic.apply(c, batch)), {}

    def gen_loss(g, c, batch, key):
        return -jnp.mean(critic.apply(c, gen.apply(g, batch[:, ::-1]))), {}

    opt_c, opt_g = optax.adam(1e-3), optax.adam(3e-4)
    state = replicate(MinMaxState.create(g0, c0, opt_g, opt_c, jax.random.PRNGKey(4)), mesh)
    step = make_minmax_step(critic_loss, gen_loss, opt_c, opt_g, mesh, critic_steps=2)
    for t in range(STEPS):
        batches = np.stack([x[(2 * t + i) % 4 * 64:((2 * t + i) % 4 + 1) * 64] for i in range(2)])
        state, _ = step(state, shard_batch(batches, mesh, leading_axes=1))
    return state.gen_params, state.critic_params


def main():
    assert len(jax.devices()) == 4, jax.devices()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 2)).astype(np.float32)
    y = np.sin(x[:, 0]) * x[:, 1]
    p1, p4 = regression(1, x, y), regression(4, x, y)
    g1, g4 = game(1, x), game(4, x)
    scale = max(float(jnp.max(jnp.abs(v))) for v in jax.tree.leaves(p1))
    print(json.dumps({"regression": max_diff(p1, p4), "minmax": max_diff(g1, g4),
                      "param_scale": scale,
                      "moved": max_diff(p1, MLP((32, 32, 1), activation=nn.tanh).init(
                          jax.random.PRNGKey(0), x[:1]))}))


if __name__ == "__main__":
    main()
