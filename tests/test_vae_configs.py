"""Every VAE config and every objective, estimator and model variant of experiments/vae.py passes
the checks before any work, builds, and takes two training steps (shrunk networks, random
data of the config's shape, no data loaded)."""

from __future__ import annotations

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gmjax import experiment

# The networks shrunk so that each case compiles in a second or two.
TINY = {"model.hidden": (8,), "model.latent_dim": 2, "model.iaf_hidden": (8,),
        "model.context_dim": 2, "model.prior_layers": 2, "model.prior_hidden": (8,),
        "model.channels": 2, "data.batch_size": 4, "train.steps": 2}

CASES = {
    "vae_toy": ("vae_toy", {}),
    "vae_digits": ("vae_digits", {}),
    "vae_mnist": ("vae_mnist", {}),
    "vae_fashion_mnist": ("vae_fashion_mnist", {}),
    "toy_iwae_dreg": ("vae_toy", {"objective.name": "iwae", "objective.num_samples": 3,
                                  "objective.estimator": "dreg"}),
    "path_stl": ("vae_mnist", {"objective.estimator": "stl"}),
    "mc_kl_beta": ("vae_mnist", {"objective.kl": "mc", "objective.beta": 0.5}),
    "score_running_mean": ("vae_mnist", {"objective.estimator": "score",
                                         "objective.baseline": "running_mean"}),
    "score_learned": ("vae_mnist", {"objective.estimator": "score",
                                    "objective.baseline": "learned"}),
    "iwae_score": ("vae_mnist", {"objective.name": "iwae", "objective.num_samples": 3,
                                 "objective.estimator": "score",
                                 "objective.baseline": "learned"}),
    "iwae_dreg": ("vae_mnist", {"objective.name": "iwae", "objective.num_samples": 3,
                                "objective.estimator": "dreg"}),
    "iaf_vae": ("vae_mnist", {"model.name": "iaf_vae"}),
    "flow_prior": ("vae_mnist", {"model.prior": "maf"}),
    "conv": ("vae_digits", {"model.net": "conv"}),
    "gaussian_learned": ("vae_digits", {"model.likelihood": "gaussian",
                                        "model.variance": "learned",
                                        "objective.binarize": "none"}),
    "autoencoder": ("vae_mnist", {"model.name": "autoencoder"}),
    "denoising_gaussian": ("vae_mnist", {"model.name": "denoising_autoencoder"}),
    "denoising_masking": ("vae_digits", {"model.name": "denoising_autoencoder",
                                         "model.corruption": "masking"}),
}


def configured(name: str, changes):
    config = importlib.import_module(f"experiments.configs.{name}").get_config()
    for path, value in {**TINY, **changes}.items():
        block, field = path.split(".")
        config[block][field] = value
    return config


@pytest.mark.parametrize("case", list(CASES))
def test_every_config_and_variant_builds_and_trains_two_steps(case):
    from gmjax.training import TrainState, make_optimizer, make_train_step

    from experiments import vae

    name, changes = CASES[case]
    config = configured(name, changes)
    unread, reads = experiment.preflight(vae.EXPERIMENT, config)
    assert experiment.contract_violations(config, reads, unread) == []
    model, objective = vae.build(config)
    shape = vae.data_shape(config)
    x = np.random.default_rng(0).random((config.data.batch_size, *shape)).astype(np.float32)
    params = objective.init(jax.random.PRNGKey(0), jnp.asarray(x[:1]))
    optimizer = objective.optimizer(make_optimizer(config.optim, config.train.steps))
    state = TrainState.create(params, optimizer, jax.random.PRNGKey(1))
    step = make_train_step(objective.loss, optimizer, experiment.config_mesh(config))
    losses = []
    for _ in range(2):
        state, metrics = step(state, jnp.asarray(x))
        losses.append(float(metrics["loss"]))
    assert int(state.step) == 2 and np.all(np.isfinite(losses)), losses
