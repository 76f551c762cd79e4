"""Run by test_multidevice.py in a fresh process with 4 forced CPU devices.

Prints one JSON object:

* ``regression``, ``minmax``: the largest parameter difference between a
  1-device and a 4-device run of ``STEPS`` updates of a small regression
  (plain train step) and of a small game (min-max step), both well
  conditioned; ``moved``: how far training moved the regression parameters.
* ``flow``: the flow recipe of ``experiments/configs/flow_toy.py`` (RealNVP,
  8 layers, batch 512, Adam with a cosine schedule) on 8 gaussians for
  ``FLOW_STEPS`` updates: at each step of ``FLOW_CHECKS``, the largest
  relative parameter difference to the 1-device run of the 4-device run
  (``four_devices``) and of 1-device runs whose initial parameters were
  moved by one unit in the last place (``ulp_perturbed``), and the losses.
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
                            make_optimizer, make_train_step, replicate, shard_batch)

STEPS = 100
FLOW_STEPS = 150
FLOW_CHECKS = (1, 10, 25, 50, 100, 150)
PERTURBATIONS = 2


def max_diff(a, b):
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in
               zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def relative_diff(a, b):
    return max(float(np.max(np.abs(x - y)) / (np.max(np.abs(x)) + 1e-30))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


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
        state, _ = step(state, shard_batch((x[sl], y[sl]), mesh), log=False)
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


def flow_runs():
    """The flow recipe of ``flow_toy.py`` as ``experiments/flow.py`` trains it."""
    from experiments.configs.flow_toy import get_config
    from gmjax.data import BatchIterator, load_dataset
    from gmjax.models.flow import build_flow
    from gmjax.objectives.likelihood import nll_loss

    config = get_config()
    train = load_dataset(config.data.name, "train", n=config.data.num_train, seed=config.seed)
    init_key, train_key = jax.random.split(jax.random.split(jax.random.PRNGKey(config.seed))[0])
    train_key = np.asarray(train_key)
    model = build_flow(config.model, train.x.shape[-1])
    params = jax.tree.map(np.asarray, jax.jit(model.init)(init_key, train.x[:2]))
    batches = BatchIterator(train.x, config.data.batch_size, seed=config.seed)
    optimizer = make_optimizer(config.optim, FLOW_STEPS)
    steps = {n: make_train_step(nll_loss(model.apply), optimizer, data_mesh(n)) for n in (1, 4)}

    def run(num_devices, initial):
        mesh = data_mesh(num_devices)
        state = replicate(TrainState.create(initial, optimizer, train_key), mesh)
        snapshots, losses = {}, []
        for t in range(FLOW_STEPS):
            state, metrics = steps[num_devices](state, shard_batch(batches.batch(t), mesh),
                                                log=False)
            losses.append(metrics["loss"])
            if t + 1 in FLOW_CHECKS:
                snapshots[t + 1] = jax.tree.map(np.asarray, state.params)
        return snapshots, [float(v) for v in jax.device_get(losses)]

    def one_ulp(seed):
        rng = np.random.default_rng(seed)
        return jax.tree.map(lambda p: p * (1 + np.float32(2 ** -23) * rng.choice(
            np.array([-1, 1], p.dtype), p.shape)), params)

    base, base_losses = run(1, params)
    four, four_losses = run(4, params)
    perturbed = [run(1, one_ulp(seed)) for seed in range(PERTURBATIONS)]
    return {
        "checks": list(FLOW_CHECKS),
        "four_devices": [relative_diff(base[t], four[t]) for t in FLOW_CHECKS],
        "ulp_perturbed": [[relative_diff(base[t], p[t]) for t in FLOW_CHECKS]
                          for p, _ in perturbed],
        "loss_one_device": [base_losses[t - 1] for t in FLOW_CHECKS],
        "loss_four_devices": [four_losses[t - 1] for t in FLOW_CHECKS],
    }


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
                          jax.random.PRNGKey(0), x[:1])),
                      "flow": flow_runs()}))


if __name__ == "__main__":
    main()
