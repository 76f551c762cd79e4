"""Can a sampler's flow represent its target at all? Fit it by maximum likelihood to exact draws.

    python experiments/diagnostics/target_ml_fit.py \
        --config experiments/configs/temperflow_clayton.py --steps 4000

Trains the config's flow (``model.*``, batch ``data.batch_size``) on
``--num_data`` exact draws of the target with Adam and cosine decay, then
scores 20,000 flow draws with the experiment's metrics
(``gmjax.experiment.temperflow.evaluate``: sign patterns and P(x_j > 0) for
Clayton, mode metrics for the 2-D mixtures); for Clayton it then prints where
the fit lacks mass, as ``missing_mass.py`` does for a sampler's flow: the
forward KL(p || q) by sign-pattern count and lower-tail depth. If this fit is
accurate and TemperFlow is not, the sampler's training is the bottleneck, not
the flow's capacity.
"""

from __future__ import annotations

import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags
from ml_collections import config_flags

from gmjax import experiment
from gmjax.experiment.temperflow import (evaluate, make_target, missing_mass,
                                         missing_mass_text)
from gmjax.flows.base import Flow
from gmjax.models.flow import build_flow

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the command line; not at import, so tests and other scripts can import
    this module beside scripts that define flags of the same names."""
    config_flags.DEFINE_config_file("config", None, "A TemperFlow experiment config.")
    flags.DEFINE_integer("steps", 4000, "Adam steps.")
    flags.DEFINE_float("lr", 1e-3, "Peak learning rate (cosine decay to 0).")
    flags.DEFINE_integer("num_data", 200_000, "Exact target draws to fit.")


def main(argv):
    del argv
    experiment.quiet_logging()
    config = FLAGS.config
    target = make_target(config)
    flow = build_flow(config.model, target.dim)
    key_init, key_data, key_sample, key_eval = jax.random.split(jax.random.PRNGKey(config.seed), 4)
    params = flow.init(key_init, jnp.zeros((2, target.dim)))
    data = np.asarray(target.sample(seed=key_data, sample_shape=(FLAGS.num_data,)))
    optimizer = optax.adam(optax.cosine_decay_schedule(FLAGS.lr, FLAGS.steps))
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state, x):
        nll = lambda p: -jnp.mean(flow.apply(p, x, method=Flow.log_prob))
        loss, grads = jax.value_and_grad(nll)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    rng = np.random.default_rng(config.seed)
    t0 = time.perf_counter()
    for i in range(FLAGS.steps):
        batch = data[rng.integers(0, len(data), config.data.batch_size)]
        params, opt_state, loss = step(params, opt_state, batch)
        if i % 1000 == 0:
            print(f"step {i}: nll {float(loss):.4f}", flush=True)
    seconds = time.perf_counter() - t0
    x, _ = flow.apply(params, key_sample, 20_000, method=Flow.sample_and_log_prob)
    metrics = {"steps": FLAGS.steps, "train_seconds": seconds,
               **evaluate(config, target, np.asarray(x), key_eval)}
    print(json.dumps(metrics, indent=1, sort_keys=True))
    if config.data.name == "clayton":  # where the fit lacks mass, as for a sampler's flow
        log_q = jax.jit(lambda x: flow.apply(params, x, method=Flow.log_prob))
        result = missing_mass(target, log_q, jax.random.PRNGKey(config.seed + 7), 40_000,
                              np.asarray(x))
        print(missing_mass_text(result, "maximum-likelihood fit"))


if __name__ == "__main__":
    define_flags()
    flags.mark_flag_as_required("config")
    app.run(main)
