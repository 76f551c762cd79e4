"""GANs on images by the alternating min-max game: losses, samples, a latent manifold.

    python experiments/gan.py --config experiments/configs/gan_fashion_mnist.py \
        --config.model.latent_dim=2 --workdir runs/gan_fashion_z2

Trains a generator G and a discriminator logit d with the GAN loss
``model.loss`` (``GAN_LOSSES``: ``non_saturating``, ``minimax``; Goodfellow et
al., 2014) by ``make_minmax_step``: ``train.critic_steps`` discriminator
updates (each on its own real batch, learning rate ``optim.critic_lr``), then
one generator update (``optim.lr``) per outer step. ``train.steps`` counts
outer steps.

Writes the experiment contract into ``--workdir``: ``config.json``,
``metrics.jsonl`` (train records ``critic/loss``, ``gen/loss``,
``critic/d_real``, ``critic/d_fake``, ...; eval records on held-out images),
``metrics.json`` (``critic_loss``, ``gen_loss``, ``d_real``, ``d_fake`` on
``eval.num_test`` test images and as many fakes, the last logged training
losses ``train_critic_loss`` / ``train_gen_loss``, ``train_seconds``,
``sample_seconds``, ``steps``), ``samples.png`` (8x8 samples), for a 2-D
latent ``latent_grid.png`` (G on a grid of z in [-3, 3]^2), ``curves.png``
and ``checkpoints/`` (the ``MinMaxState``; ``gmjax.models.gan.load_gan`` and
``gmjax.models.gan.latent_ebm_target`` read it back).
"""

from __future__ import annotations

import os
import time
from typing import Any, Dict, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gmjax import experiment, viz
from gmjax.data import BatchIterator, load_dataset, take_batches
from gmjax.models.gan import GAN_NETS, IMAGE_SHAPES, build_gan
from gmjax.nets.dcgan import NORMS, UPSAMPLINGS
from gmjax.objectives.adversarial import GAN_LOSSES
from gmjax.training import (OPTIMIZERS, SCHEDULES, MinMaxState, data_mesh, fit,
                            make_minmax_step, make_optimizer, read_jsonl)

CHOICES = {"data.name": tuple(IMAGE_SHAPES), "model.name": GAN_NETS, "model.loss": GAN_LOSSES,
           "model.norm": NORMS, "model.upsample": UPSAMPLINGS, "optim.name": OPTIMIZERS, "optim.schedule": SCHEDULES}
POSITIVE = ("data.batch_size", "train.steps", "train.log_every", "train.checkpoint_every",
            "train.steps_per_call", "train.critic_steps", "optim.lr", "optim.critic_lr",
            "model.latent_dim", "model.channels", "eval.num_test", "eval.batch_size")
GRID = 8          # samples.png is GRID x GRID images
LATENT_GRID = 12  # latent_grid.png is LATENT_GRID x LATENT_GRID images
LATENT_RANGE = 3.0


def check_config(config: ml_collections.ConfigDict) -> None:
    """What the run builds from ``config`` before it loads data (the GAN and its losses, the
    optimizers, mesh and fit options), and the splits, data directory and eval chunking."""
    experiment.check_splits(config)
    experiment.check_data_dir(config)
    if config.eval.num_test % config.eval.batch_size:
        raise experiment.ConfigError(f"--config.eval.num_test={config.eval.num_test} must be a "
                                     f"multiple of --config.eval.batch_size="
                                     f"{config.eval.batch_size}")
    build_gan(config.model, IMAGE_SHAPES[config.data.name]).losses(config.model.loss)
    experiment.check_fit(config)


def unread_fields(config: ml_collections.ConfigDict) -> Dict[str, str]:
    """The fields a run of ``config`` does not read, and why (``gmjax.experiment.contract``)."""
    unread = {f"data.{name}": "a toy-density field: the GAN trains on data.train_split and "
                              "is evaluated on eval.num_test images of data.test_split"
              for name in ("num_train", "num_test") if name in config.data}
    unread.update(experiment.unread_by(
        lambda c: build_gan(c.model, IMAGE_SHAPES[c.data.name]).losses(c.model.loss), config,
        "model", f"not an option of {config.model.name!r}"))
    unread.update(experiment.unread_optimizer_fields(config))
    return unread


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       progress: Optional[bool] = None) -> Dict[str, Any]:
    check_config(config)
    key = jax.random.PRNGKey(config.seed)
    init_key, train_key, eval_key, sample_key = jax.random.split(key, 4)
    data_dir = config.data.data_dir or None
    train = load_dataset(config.data.name, config.data.train_split, data_dir=data_dir)
    test = load_dataset(config.data.name, config.data.test_split, data_dir=data_dir)
    if len(test) < config.eval.num_test:
        raise experiment.ConfigError(f"--config.eval.num_test={config.eval.num_test} but "
                                     f"{config.data.test_split!r} has {len(test)} images")
    test_x = test.x[:config.eval.num_test]

    gan = build_gan(config.model, IMAGE_SHAPES[config.data.name])
    gen_params, disc_params = jax.jit(gan.init)(init_key)
    critic_loss, gen_loss = gan.losses(config.model.loss)

    k = config.train.critic_steps
    gen_optimizer = make_optimizer(config.optim, config.train.steps)
    critic_optim = dict(config.optim.to_dict(), lr=config.optim.critic_lr)
    critic_optimizer = make_optimizer(critic_optim, config.train.steps * k)
    mesh = data_mesh(config.train.num_devices or None)
    state = MinMaxState.create(gen_params, disc_params, gen_optimizer, critic_optimizer,
                               train_key)
    step = make_minmax_step(critic_loss, gen_loss, critic_optimizer, gen_optimizer, mesh,
                            critic_steps=k, steps_per_call=config.train.steps_per_call)
    batches = BatchIterator(train.x, config.data.batch_size, seed=config.seed,
                            process_index=jax.process_index(),
                            process_count=jax.process_count())

    def batch_fn(outer_step: int) -> np.ndarray:  # [k, batch, H, W, C] uint8
        return take_batches(batches, outer_step * k, k)

    @jax.jit
    def eval_chunk(gen_params, disc_params, real, key):
        critic_value, critic_metrics = critic_loss(disc_params, gen_params, real, key)
        gen_value, _ = gen_loss(gen_params, disc_params, real, key)  # the same z as the critic's
        return {"critic_loss": critic_value, "gen_loss": gen_value, **critic_metrics}

    def evaluate(state: MinMaxState, _step: int = 0) -> Dict[str, float]:
        """Losses and mean D on ``eval.num_test`` test images and as many fakes (fixed z)."""
        size = config.eval.batch_size
        parts = [eval_chunk(state.gen_params, state.critic_params, test_x[i:i + size],
                            jax.random.fold_in(eval_key, i))
                 for i in range(0, len(test_x), size)]
        parts = jax.device_get(parts)
        return {name: float(np.mean([p[name] for p in parts])) for name in parts[0]}

    result = fit(state, step, batch_fn, num_steps=config.train.steps, workdir=workdir,
                 mesh=mesh, log_every=config.train.log_every,
                 checkpoint_every=config.train.checkpoint_every,
                 keep_checkpoints=config.train.keep_checkpoints,
                 eval_every=config.train.eval_every, eval_fn=evaluate,
                 steps_per_call=config.train.steps_per_call,
                 batch_leading_axes=1,  # batch_fn stacks the critic axis before the batch axis
                 progress=progress,
                 desc=f"gan {config.model.name} z{gan.latent_dim} on {config.data.name}")
    gen_params = result.state.gen_params

    sample = jax.jit(lambda params, key: gan.sample(params, key, GRID * GRID))
    jax.block_until_ready(sample(gen_params, sample_key))  # compile outside the timing
    t0 = time.perf_counter()
    samples = np.asarray(jax.block_until_ready(sample(gen_params, sample_key)))
    sample_seconds = time.perf_counter() - t0

    metrics: Dict[str, Any] = evaluate(result.state)
    records = list(read_jsonl(os.path.join(workdir, "metrics.jsonl")))
    last_train = [r for r in records if r.get("split") == "train"][-1]
    metrics.update(train_critic_loss=last_train["critic/loss"],
                   train_gen_loss=last_train["gen/loss"], train_seconds=result.train_seconds,
                   sample_seconds=sample_seconds, steps=result.steps, num_train=len(train))
    if jax.process_index() == 0:
        name = f"{config.model.name} z{gan.latent_dim} ({config.model.loss}) on {config.data.name}"
        viz.save_image_grid(os.path.join(workdir, "samples.png"), samples, GRID,
                            f"{name}\n{result.steps} steps, D(real) {metrics['d_real']:.2f}, "
                            f"D(fake) {metrics['d_fake']:.2f}")
        if gan.latent_dim == 2:
            axis = jnp.linspace(-LATENT_RANGE, LATENT_RANGE, LATENT_GRID)
            # Row i is z_2 = axis[-1 - i] (top to bottom), column j is z_1 = axis[j].
            z = jnp.stack(jnp.meshgrid(axis, axis[::-1]), axis=-1).reshape(-1, 2)
            images = jax.jit(gan.decode)(gen_params, z)
            viz.save_image_grid(os.path.join(workdir, "latent_grid.png"), images, LATENT_GRID,
                                f"{name}\nG(z) for z in [-{LATENT_RANGE:g}, {LATENT_RANGE:g}]^2")
        viz.plot_curves(os.path.join(workdir, "curves.png"), records,
                        names=("critic/loss", "gen/loss", "critic/d_real", "critic/d_fake"),
                        title=name)
    experiment.write_metrics(workdir, metrics)
    return metrics


EXPERIMENT = experiment.Experiment(train_and_evaluate, choices=CHOICES, positive=POSITIVE,
                                   check=check_config, unread=unread_fields)

if __name__ == "__main__":
    experiment.main(EXPERIMENT)
