"""Run by test_cnf_multidevice.py in a fresh process with 4 forced CPU devices.

Trains the models named in ``argv[1]`` (comma-separated keys of ``MODELS``, default
all) of ``experiments/cnf.py`` (tiny sizes of
``experiments/configs/cnf_toy.py``) for ``STEPS`` updates with the script's own
train step (``cnf.train_step``) on 1 and on 4 devices, from the same
parameters on the same batches, and prints one JSON object: per model, the
largest relative parameter difference between the two runs (``param``), their
losses, their gradient norms at the first and last update (Adam hides a
scaled gradient; the norm does not), and how far training moved the
parameters (``moved``); and
``refusal``, the error of a solve compiled with shard_map's varying-axis
checks on.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from experiments import cnf  # noqa: E402
from experiments.configs import cnf_toy  # noqa: E402
from gmjax.data import BatchIterator, load_dataset  # noqa: E402
from gmjax.training import (TrainState, data_mesh, make_optimizer, make_train_step,  # noqa: E402
                            replicate, shard_batch)

STEPS = 4
BATCH = 64
MODELS = {
    "ffjord": {"name": "ffjord", "hidden": (16,), "embed_dim": 8, "num_steps": 2,
               "kinetic": 0.01, "jacobian": 0.01},
    "ffjord_dopri5": {"name": "ffjord", "hidden": (16,), "embed_dim": 8, "solver": "dopri5",
                      "rtol": 1e-3},
    "otflow": {"name": "otflow", "width": 8, "num_steps": 2},
}


def relative_diff(a, b):
    """The largest entry of ``|a - b|`` relative to the largest of ``|a|``."""
    diff = max(float(np.max(np.abs(x - y))) for x, y in zip(jax.tree.leaves(a),
                                                             jax.tree.leaves(b)))
    return diff / max(float(np.max(np.abs(x))) for x in jax.tree.leaves(a))


def main(labels):
    assert len(jax.devices()) == 4, jax.devices()
    config = cnf_toy.get_config()
    x = np.asarray(load_dataset("8gaussians", "train", n=STEPS * BATCH, seed=0).x, np.float32)
    batches = BatchIterator(x, BATCH, seed=0)
    optimizer = make_optimizer(config.optim, STEPS)
    result = {}
    for label in labels:
        fields = MODELS[label]
        t0 = time.perf_counter()
        block = config.model.copy_and_resolve_references()
        block.update(fields)
        model = cnf.build_model(block, 2)
        params = jax.tree.map(np.asarray, jax.jit(model.flow.init)(jax.random.PRNGKey(0), x[:8]))
        runs = {}
        for n in (1, 4):
            mesh = data_mesh(n)
            state = replicate(TrainState.create(params, optimizer, jax.random.PRNGKey(1)), mesh)
            step = cnf.train_step(model, optimizer, mesh)
            losses, norms = [], []
            for t in range(STEPS):
                state, metrics = step(state, shard_batch(batches.batch(t), mesh),
                                      log=t in (0, STEPS - 1))
                losses.append(float(metrics["loss"]))
                norms.append(float(metrics["grad_norm"]))
            runs[n] = (jax.tree.map(np.asarray, state.params), losses, norms)
        result[label] = {"param": relative_diff(runs[1][0], runs[4][0]),
                         "moved": relative_diff(runs[1][0], params),
                         "loss_one_device": runs[1][1], "loss_four_devices": runs[4][1],
                         "grad_norm_one_device": runs[1][2][::STEPS - 1],
                         "grad_norm_four_devices": runs[4][2][::STEPS - 1],
                         "seconds": time.perf_counter() - t0}

    if "ffjord" in labels:
        result["refusal"] = refusal(config, x, batches, optimizer)
    print(json.dumps(result))


def refusal(config, x, batches, optimizer):
    """The error of FFJORD's step compiled with shard_map's varying-axis checks on."""
    block = config.model.copy_and_resolve_references()
    block.update(MODELS["ffjord"])
    model = cnf.build_model(block, 2)
    params = jax.jit(model.flow.init)(jax.random.PRNGKey(0), x[:8])
    mesh = data_mesh(4)
    step = make_train_step(model.loss, optimizer, mesh)  # varying-axis checks on
    try:
        step(replicate(TrainState.create(params, optimizer, jax.random.PRNGKey(1)), mesh),
             shard_batch(batches.batch(0), mesh))
    except ValueError as e:
        return str(e)
    return None


if __name__ == "__main__":
    main(sys.argv[1].split(",") if len(sys.argv) > 1 else list(MODELS))
