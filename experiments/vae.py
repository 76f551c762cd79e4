"""Variational autoencoders (VAE, IWAE, IAF-VAE) and autoencoders: train, evaluate, plot.

    python experiments/vae.py --config experiments/configs/vae_digits.py --workdir runs/vae
    python experiments/vae.py --config experiments/configs/vae_digits.py --workdir runs/iwae \
        --config.objective.name=iwae --config.objective.num_samples=50 \
        --config.objective.estimator=dreg

One config trains the VAE and the IWAE: the model is ``model.*``
(``gmjax.models.vae.build_vae``), the bound, its number of samples k and the
gradient estimator are ``objective.*`` (``build_objective``: ``name`` elbo or
iwae, ``num_samples``, ``estimator`` total, stl, score or dreg, ``baseline``
for score, ``kl``, ``beta``, ``binarize``). Grey-level images meet a
Bernoulli decoder through dynamic binarization (``objective.binarize=dynamic``,
a fresh draw per step); the test images are binarized once, with a fixed
seed. ``model.name=autoencoder`` or ``denoising_autoencoder`` trains on
reconstruction alone and is sampled through a Gaussian fitted to its codes.

Writes the experiment contract into ``--workdir``: ``config.json``,
``metrics.jsonl``, ``metrics.json`` and ``checkpoints/``. ``metrics.json``
holds, on the test split (its first ``eval.num_examples`` examples when that is
> 0, recorded as ``eval_examples``): ``elbo`` and ``iwae_k`` (L_k with
``k = eval.iwae_samples``), ``is_log_likelihood`` and its
``is_log_likelihood_stderr`` (importance sampling with
``eval.is_samples`` draws from q), ``bits_per_dim`` (Bernoulli decoder on
binarized images: bits per binary pixel), ``train_seconds``,
``sample_seconds``, ``steps``; with ``eval.amortization_gap`` the gaps of
Cremer et al. (2018) on the first ``eval.gap_examples`` test examples
(``gap_log_likelihood``, ``gap_amortized_elbo``, ``gap_local_elbo``,
``approximation_gap``, ``amortization_gap``). The autoencoders have no
bound and report ``reconstruction_error`` (mean squared, per example)
instead. Figures: ``reconstructions.png`` (originals and reconstructions in
alternating rows), ``samples.png`` (prior samples, ``E[x | z]``),
``interpolation.png`` (decoded paths between pairs of test codes),
``curves.png``; with ``eval.manifold`` (latent_dim = 2) ``manifold.png``
(the decoded grid of prior quantiles) and ``latent_scatter.png`` (test codes
coloured by label). 2-D toy data give ``samples.png`` as a scatter beside the
test points and ``latent_scatter.png``.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any, Dict, Optional, Tuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gmjax import experiment
from gmjax import viz
from gmjax.data import BatchIterator, binarize_static, load_dataset
from gmjax.data.toy import TOY_DENSITIES
from gmjax.models.vae import (BINARIZATIONS, KL_OPTIONS, VAE, VAE_MODELS, VAE_NETS,
                              amortization_gap, bound_metrics, build_objective, build_vae,
                              fit_code_gaussian, importance_sampled_log_likelihood,
                              prior_names, sample_code_gaussian)
from gmjax.nets.vae import ACTIVATIONS, LIKELIHOODS, VARIANCES
from gmjax.objectives.elbo import BASELINES, CORRUPTIONS, GRADIENT_ESTIMATORS
from gmjax.training import (OPTIMIZERS, SCHEDULES, TrainState, make_optimizer, make_train_step,
                            read_jsonl)
from gmjax.viz.vae import plot_latent_scatter

IMAGE_SHAPES = {"digits": (8, 8, 1), "fashion_mnist": (28, 28, 1), "mnist": (28, 28, 1)}
TOY_DIM = 2  # every toy density is 2-D


def data_names():
    """The image data sets and every toy density."""
    return [*IMAGE_SHAPES, *TOY_DENSITIES]


BOUNDS = ("elbo", "iwae")  # objective.name; the autoencoders' reconstruction follows model.name
CHOICES = {"data.name": data_names, "model.name": VAE_MODELS, "model.net": VAE_NETS,
           "model.activation": tuple(ACTIVATIONS), "model.likelihood": LIKELIHOODS,
           "model.variance": VARIANCES, "model.prior": prior_names,
           "model.corruption": CORRUPTIONS, "objective.name": BOUNDS,
           "objective.estimator": GRADIENT_ESTIMATORS, "objective.baseline": BASELINES,
           "objective.kl": KL_OPTIONS, "objective.binarize": tuple(BINARIZATIONS),
           "optim.name": OPTIMIZERS, "optim.schedule": SCHEDULES}
POSITIVE = ("data.batch_size", "train.steps",
            "train.log_every", "train.checkpoint_every", "train.steps_per_call", "optim.lr",
            "model.latent_dim", "model.iaf_steps", "model.prior_layers",
            "model.scale", "objective.num_samples", "eval.is_samples", "eval.iwae_samples",
            "eval.batch_size")
GAP_FIELDS = ("eval.gap_examples", "eval.gap_steps", "eval.gap_lr", "eval.gap_samples")
GRID = 8  # samples.png: GRID x GRID images
TOY_SAMPLES = 2_000  # samples.png of 2-D data: a scatter of this many


def is_image(config: ml_collections.ConfigDict) -> bool:
    return config.data.name in IMAGE_SHAPES


def data_shape(config: ml_collections.ConfigDict) -> Tuple[int, ...]:
    return IMAGE_SHAPES[config.data.name] if is_image(config) else (TOY_DIM,)


def is_autoencoder(config: ml_collections.ConfigDict) -> bool:
    return VAE_MODELS.get(config.model.name).objective == "reconstruction"


def objective_block(config: ml_collections.ConfigDict):
    """What ``build_objective`` reads: the ``objective`` block, or for the autoencoders (trained
    on reconstruction, whatever ``objective.name`` says) only its ``binarize`` field."""
    if is_autoencoder(config):
        return {"binarize": config.objective.binarize}
    return config.objective


def build(config: ml_collections.ConfigDict):
    """``(model, objective)`` from the config (raises ``ValueError`` for a bad block)."""
    model = build_vae(config.model, data_shape(config))
    return model, build_objective(model, objective_block(config))


def positive(config: ml_collections.ConfigDict, paths) -> None:
    """``ConfigError`` for the first of ``paths`` that is not > 0 (fields read only under some
    settings, so not among ``POSITIVE``)."""
    for path in paths:
        value = experiment.get_field(config, path)
        if not value > 0:
            raise experiment.ConfigError(f"--config.{path}={value!r} must be positive")


def check_config(config: ml_collections.ConfigDict) -> None:
    """What the run builds from ``config`` before it loads data: the model and its objective,
    the optimizer, mesh and fit options; the splits or sizes of the data; the decoder against
    the data; the evaluation's options."""
    if is_image(config):
        for field in ("train_split", "test_split"):
            if field not in config.data:
                raise experiment.ConfigError(
                    f"--config.data.name={config.data.name!r} is an image data set: the config "
                    f"needs data.train_split and data.test_split (start from "
                    f"experiments/configs/vae_digits.py)")
        experiment.check_splits(config)
        experiment.check_data_dir(config)
    else:
        for field in ("num_train", "num_test"):
            if field not in config.data:
                raise experiment.ConfigError(
                    f"--config.data.name={config.data.name!r} is a toy density: the config "
                    f"needs data.num_train and data.num_test (start from "
                    f"experiments/configs/vae_toy.py)")
        positive(config, ("data.num_train", "data.num_test"))
    try:
        model, _ = build(config)
    except ValueError as e:
        raise experiment.ConfigError(f"bad --config.model.* or --config.objective.*: {e}") from None
    binarized = config.objective.binarize != "none"
    if model.likelihood == "bernoulli" and not binarized:
        where = ("grey-level images" if is_image(config) else
                 f"real-valued 2-D points ({config.data.name})")
        fix = ("--config.objective.binarize=dynamic or --config.model.likelihood=gaussian"
               if is_image(config) else "--config.model.likelihood=gaussian")
        raise experiment.ConfigError(
            f"--config.model.likelihood='bernoulli' needs binary data, but {config.data.name} "
            f"holds {where}; use {fix}")
    if binarized and not is_image(config):
        raise experiment.ConfigError(
            f"--config.objective.binarize={config.objective.binarize!r}: {config.data.name} "
            f"holds real-valued points, not pixel intensities; valid choice here: 'none'")
    if is_image(config) and config.eval.manifold and model.latent_dim != 2:
        raise experiment.ConfigError(
            f"--config.eval.manifold=True plots the decoded 2-D latent grid and the latent "
            f"scatter, which need --config.model.latent_dim=2 (got {model.latent_dim}); "
            f"set --config.eval.manifold=False")
    if not is_autoencoder(config):
        config.eval.is_samples, config.eval.iwae_samples
        if config.eval.is_samples < 2 or config.eval.iwae_samples < 1:
            raise experiment.ConfigError(
                f"--config.eval.is_samples must be >= 2 (a standard error) and "
                f"--config.eval.iwae_samples >= 1, got {config.eval.is_samples} and "
                f"{config.eval.iwae_samples}")
        if config.eval.num_examples < 0:
            raise experiment.ConfigError(
                f"--config.eval.num_examples={config.eval.num_examples} must be >= 0 (0: every "
                f"test example)")
        if config.eval.amortization_gap:
            positive(config, GAP_FIELDS)
    config.eval.batch_size
    experiment.check_fit(config)


def unread_fields(config: ml_collections.ConfigDict) -> Dict[str, str]:
    """The fields a run of ``config`` does not read, and why (``gmjax.experiment.contract``)."""
    unread: Dict[str, str] = {}
    if is_image(config):
        unread.update({f"data.{f}": "image data sets are read by split (data.train_split, "
                       "data.test_split)" for f in ("num_train", "num_test") if f in config.data})
    else:
        unread["data.data_dir"] = "toy densities are sampled in memory; nothing is loaded"
        unread.update({f"data.{f}": "toy densities are drawn: data.num_train, data.num_test"
                       for f in ("train_split", "test_split") if f in config.data})
    unread.update(experiment.unread_by(lambda c: build_vae(c.model, data_shape(c)), config,
                                       "model", f"not an option of model.name="
                                       f"{config.model.name!r} with these choices"))
    unread.update(experiment.unread_by(
        lambda c: build(c), config, "objective",
        f"model.name={config.model.name!r} trains on reconstruction alone"
        if is_autoencoder(config) else "not read by this objective and estimator"))
    if not is_image(config) and "manifold" in config.eval:
        unread["eval.manifold"] = ("2-D data: the latent scatter is always drawn; the decoded "
                                   "grid is a figure of images")
    if is_autoencoder(config):
        unread.update({path: f"model.name={config.model.name!r} has no density: it reports "
                       "the reconstruction error" for path in
                       ("eval.is_samples", "eval.iwae_samples", "eval.amortization_gap",
                        "eval.num_examples")})
        unread.update(dict.fromkeys(GAP_FIELDS, "the autoencoders have no posterior to refine"))
    elif not config.eval.amortization_gap:
        unread.update(dict.fromkeys(GAP_FIELDS, "eval.amortization_gap=False"))
    unread.update(experiment.unread_optimizer_fields(config))
    return unread


# --- data ----------------------------------------------------------------------------------


def load_data(config: ml_collections.ConfigDict):
    """``(train_x, test_x, test_labels)``: float32 arrays; test images binarized once (fixed
    seed) where the objective binarizes the training images."""
    if is_image(config):
        data_dir = config.data.data_dir or None
        train = load_dataset(config.data.name, config.data.train_split, data_dir=data_dir)
        test = load_dataset(config.data.name, config.data.test_split, data_dir=data_dir)
    else:
        train = load_dataset(config.data.name, "train", n=config.data.num_train,
                             seed=config.seed)
        test = load_dataset(config.data.name, "test", n=config.data.num_test, seed=config.seed)

    def as_float(x):
        x = np.asarray(x)
        return (x.astype(np.float32) / 255.0 if x.dtype == np.uint8
                else x.astype(np.float32))

    train_x, test_x = as_float(train.x), as_float(test.x)
    if config.objective.binarize != "none":
        test_x = binarize_static(test_x, np.random.default_rng(config.seed + 1))
    return train_x, test_x, test.y


# --- the run ---------------------------------------------------------------------------------


def decoded_batches(fn, x: np.ndarray, batch_size: int) -> np.ndarray:
    """``fn`` over the rows of ``x`` in batches of ``batch_size`` (the last one padded)."""
    out = []
    for i in range(0, len(x), batch_size):
        part = x[i:i + batch_size]
        padded = np.concatenate([part, np.repeat(part[-1:], batch_size - len(part), 0)])
        out.append(np.asarray(fn(padded))[:len(part)])
    return np.concatenate(out)


def evaluate_bounds(config, model: VAE, params, test_x, key) -> Dict[str, Any]:
    """The test metrics of a model with a density: bounds, IS log-likelihood, bits/dim, on
    the first ``eval.num_examples`` test examples (0: all)."""
    bound_key, is_key = jax.random.split(key)
    batch = config.eval.batch_size
    if config.eval.num_examples:
        test_x = test_x[:config.eval.num_examples]
    metrics: Dict[str, Any] = dict(bound_metrics(model, params, jnp.asarray(test_x), bound_key,
                                                 num_samples=config.eval.iwae_samples,
                                                 batch_size=batch))
    metrics["iwae_k_samples"] = config.eval.iwae_samples
    metrics["eval_examples"] = len(test_x)
    estimate = importance_sampled_log_likelihood(
        model, params, jnp.asarray(test_x), is_key, num_samples=config.eval.is_samples,
        chunk_size=min(500, config.eval.is_samples), batch_size=batch)
    metrics["is_log_likelihood"] = estimate.mean
    metrics["is_log_likelihood_stderr"] = estimate.stderr
    metrics["is_samples"] = config.eval.is_samples
    if model.likelihood == "bernoulli" and is_image(config):
        metrics["bits_per_dim"] = -estimate.mean / (math.prod(model.data_shape) * math.log(2.0))
    return metrics


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       progress: Optional[bool] = None) -> Dict[str, Any]:
    key = jax.random.PRNGKey(config.seed)
    init_key, train_key, eval_key, sample_key, gap_key = jax.random.split(key, 5)
    train_x, test_x, test_y = load_data(config)
    model, objective = build(config)
    params = objective.init(init_key, jnp.asarray(train_x[:1]))
    optimizer = objective.optimizer(make_optimizer(config.optim, config.train.steps))
    mesh = experiment.config_mesh(config)
    state = TrainState.create(params, optimizer, train_key)
    step = make_train_step(objective.loss, optimizer, mesh,
                           steps_per_call=config.train.steps_per_call)
    batches = BatchIterator(train_x, config.data.batch_size, seed=config.seed,
                            process_index=jax.process_index(),
                            process_count=jax.process_count())
    autoencoder = is_autoencoder(config)
    eval_batch = config.eval.batch_size
    eval_x = jnp.asarray(test_x[:min(len(test_x), 1000)])
    eval_loss = jax.jit(objective.loss)

    def evaluate(state, step_number):
        """The training objective on (up to 1,000) test examples, one fixed key."""
        _, m = eval_loss(state.params, eval_x, eval_key)
        return {f"test_{name}": float(value) for name, value in m.items()}

    result = experiment.fit_with_config(
        config, state, step, batches.batch, workdir, mesh, eval_fn=evaluate, progress=progress,
        desc=f"{config.model.name} ({objective.name}) on {config.data.name}")
    params = result.state.params

    # Prior samples (autoencoders: a Gaussian fitted to the training codes), timed.
    num_samples = GRID * GRID if is_image(config) else TOY_SAMPLES
    if autoencoder:
        mean, cov = fit_code_gaussian(model, params, jnp.asarray(train_x))
        sample = jax.jit(lambda k: sample_code_gaussian(model, params, k, num_samples,
                                                        mean, cov))
    else:
        sample = jax.jit(lambda k: model.sample(params, k, num_samples))
    jax.block_until_ready(sample(sample_key))  # compile outside the timing
    t0 = time.perf_counter()
    samples = np.asarray(jax.block_until_ready(sample(sample_key)))
    sample_seconds = time.perf_counter() - t0

    metrics: Dict[str, Any] = {}
    if autoencoder:
        recon = decoded_batches(jax.jit(lambda x: model.reconstruct(params, x)), test_x,
                                eval_batch)
        axes = tuple(range(1, test_x.ndim))
        metrics["reconstruction_error"] = float(np.mean(np.sum((recon - test_x) ** 2, axes)))
    else:
        metrics.update(evaluate_bounds(config, model, params, test_x, eval_key))
        if config.eval.amortization_gap:
            n = min(config.eval.gap_examples, len(test_x))
            gap = amortization_gap(model, params, jnp.asarray(test_x[:n]), gap_key,
                                   steps=config.eval.gap_steps, learning_rate=config.eval.gap_lr,
                                   num_samples=config.eval.gap_samples,
                                   eval_samples=min(1000, config.eval.is_samples),
                                   is_samples=config.eval.is_samples,
                                   chunk_size=min(500, config.eval.is_samples),
                                   batch_size=min(eval_batch, n))
            metrics.update({"gap_examples": n,
                            "gap_log_likelihood": gap.log_likelihood,
                            "gap_log_likelihood_stderr": gap.log_likelihood_stderr,
                            "gap_amortized_elbo": gap.amortized_elbo,
                            "gap_local_elbo": gap.local_elbo,
                            "approximation_gap": gap.approximation_gap,
                            "amortization_gap": gap.amortization_gap})
    metrics.update(train_seconds=result.train_seconds, sample_seconds=sample_seconds,
                   steps=result.steps)

    if jax.process_index() == 0:
        write_figures(config, workdir, model, params, test_x, test_y, samples, metrics)
    experiment.write_metrics(workdir, metrics)
    return metrics


def write_figures(config, workdir: str, model: VAE, params, test_x: np.ndarray,
                  test_y: Optional[np.ndarray], samples: np.ndarray,
                  metrics: Dict[str, Any]) -> None:
    name = f"{config.model.name} on {config.data.name}"
    headline = (f"test log p(x) >= {metrics['is_log_likelihood']:.2f} nats (IS)"
                if "is_log_likelihood" in metrics else
                f"reconstruction error {metrics['reconstruction_error']:.3f}")
    path = lambda f: os.path.join(workdir, f)  # noqa: E731
    if is_image(config):
        x = test_x[:32]
        recon = np.asarray(jax.jit(lambda v: model.reconstruct(params, v))(jnp.asarray(x)))
        pairs = np.stack([x.reshape(4, 8, *x.shape[1:]), recon.reshape(4, 8, *x.shape[1:])], 1)
        viz.save_image_grid(path("reconstructions.png"), pairs.reshape(64, *x.shape[1:]), 8,
                            title=f"{name}: test images (odd rows)\nand reconstructions "
                                  f"E[x | z = mu(x)] (even rows)")
        viz.save_image_grid(path("samples.png"), np.clip(samples, 0, 1), GRID,
                            title=f"{name}: E[x | z], z from the prior\n{headline}")
        rows = [np.asarray(model.interpolate(params, jnp.asarray(test_x[2 * i]),
                                             jnp.asarray(test_x[2 * i + 1]), num=10))
                for i in range(4)]
        viz.save_image_grid(path("interpolation.png"), np.concatenate(rows), 4,
                            title=f"{name}: decoded linear paths between the\ncodes of two "
                                  f"test images (one pair a row)")
        if config.eval.manifold:
            grid = np.asarray(model.latent_grid(params, num=15))
            viz.save_image_grid(path("manifold.png"), grid.reshape(-1, *grid.shape[2:]), 15,
                                title=f"{name}: E[x | z] on a grid of prior quantiles\n"
                                      f"of (z1, z2), z1 down the rows")
    else:
        viz.plot_density_2d(path("samples.png"), test_x, samples, title=f"{name}: {headline}")
    if not is_image(config) or config.eval.manifold:
        codes = decoded_batches(jax.jit(lambda v: model.code(params, v)), test_x[:2000],
                                config.eval.batch_size)
        labels = None if test_y is None else np.asarray(test_y)[:2000]
        if codes.shape[-1] >= 2:
            plot_latent_scatter(path("latent_scatter.png"), codes, labels, title=name)
    if os.path.exists(path("metrics.jsonl")):
        viz.plot_curves(path("curves.png"), read_jsonl(path("metrics.jsonl")),
                        names=("loss", "test_elbo" if "is_log_likelihood" in metrics
                               else "test_reconstruction"),
                        labels={"loss": ("loss: the negative bound (nats)"
                                         if "is_log_likelihood" in metrics else
                                         "loss: -log p(x | z) (nats)"),
                                "test_elbo": "test ELBO (nats)",
                                "test_reconstruction": "test log p(x | z) (nats)"})


EXPERIMENT = experiment.Experiment(train_and_evaluate, choices=CHOICES, positive=POSITIVE,
                                   check=check_config, unread=unread_fields)

if __name__ == "__main__":
    experiment.main(EXPERIMENT)
