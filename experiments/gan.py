"""GANs by the alternating min-max game: any loss x penalty x stabilizer x remedy by config.

    python experiments/gan.py --config experiments/configs/gan_ring.py --workdir runs/gan_ring
    python experiments/gan.py --config experiments/configs/gan_grid.py \
        --config.model.loss=wgan_gp --workdir runs/gan_grid_wgan_gp
    python experiments/gan.py --config experiments/configs/gan_fashion_mnist.py \
        --config.model.latent_dim=2 --workdir runs/gan_fashion_z2

Trains a generator G and a critic with the game of
``gmjax.objectives.adversarial.make_gan_game``: ``model.loss`` (any name in
``GAN_LOSSES``), ``model.penalty`` (``default``: the loss's own), weight
``model.clip``, ``model.label_smoothing``, ``model.instance_noise`` (annealed
over ``model.instance_noise_anneal`` critic updates), ``model.consensus`` and
``model.spectral_norm``; the mode-collapse remedies ``model.remedy``
(``minibatch`` discrimination with ``model.minibatch_kernels`` kernels,
``pacgan`` packing of ``model.pack`` samples, ``feature_matching``: MLP
critics only; ``unrolled`` with ``model.unroll_steps`` SGD critic steps of
rate ``model.unroll_lr``). One outer
step is ``train.critic_steps`` critic updates (rate ``optim.critic_lr``) and
one generator update (``optim.lr``); ``train.steps`` counts outer steps.
With ``model.conditional=True`` both players take labels (a conditional
GAN): the mixture component a 2-D point was drawn from, or an image's class;
the MLPs concatenate a learned embedding of width ``model.embed_dim``, DCGAN
feeds one-hot labels to the generator and projects them in the
discriminator. Evaluation then draws equal numbers of each label and also
reports ``label_accuracy`` (2-D: the share of samples whose nearest mode is
their label); ``samples.png`` of an image run has one class per row.
The generator's weights are averaged with decay ``train.ema_decay``
(0: no average) and the average is what is evaluated and drawn.

Data: ``ring`` / ``grid`` (``gmjax.models.gan.mixtures``: the VEEGAN /
PacGAN 8-mode ring and 25-mode grid; ``data.num_train`` points drawn once,
``model.name=mlp``), or 28x28 images (``fashion_mnist``, ``mnist``;
``model.name=dcgan``).

Writes the experiment contract into ``--workdir``: ``config.json``,
``metrics.jsonl`` (train records ``critic/loss``, ``gen/loss``, ... and eval
records), ``metrics.json``, ``curves.png`` and ``checkpoints/`` (the
``MinMaxState``: both players, both optimizers, the game state). For 2-D
data, ``metrics.json`` has the PacGAN protocol on ``eval.num_samples``
samples (``modes_captured``, ``high_quality_frac``, ``mode_weight_tv``,
``reverse_kl``, and the same with a ``raw_`` prefix for the un-averaged
generator), ``snapshots/step_<n>.npy`` are the samples at each evaluation,
``samples.png`` a row of panels of them over training and ``critic.png``
the critic on the plane. For images, ``metrics.json`` has the losses and
mean ``D`` on ``eval.num_test`` test images, ``samples.png`` an 8x8 grid and
for a 2-D latent ``latent_grid.png``; with ``eval.feature_network`` (the
workdir of an ``experiments/classifier.py`` run on the same data) also the
feature-space metrics of ``gmjax.models.image_metrics`` between
``eval.num_test`` draws of the evaluated generator and as many test images:
``frechet_distance``, ``kid``, precision / recall, density / coverage, the
Inception Score, the ``feature_network`` that produced them, and for a
conditional GAN ``class_accuracy``, the share of draws the classifier
assigns to the class they were generated for.
"""

from __future__ import annotations

import glob
import os
import time
from typing import Any, Dict, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from gmjax import experiment, viz
from gmjax.data import BatchIterator, load_dataset, take_batches
from gmjax.metrics.modes import mode_metrics
from gmjax.models.gan import GAN_NETS, build_gan
from gmjax.models.gan.ema import ema_params, track_ema
from gmjax.models.gan.mixtures import MODE_MIXTURES, sample_mixture, sample_mixture_modes
from gmjax.models.gan.model import DATA_CLASSES, DATA_SHAPES, PENALTY_CHOICES, REMEDIES
from gmjax.objectives.adversarial import GAN_LOSSES
from gmjax.training import (OPTIMIZERS, SCHEDULES, MinMaxState, data_mesh, fit,
                            make_minmax_step, make_optimizer, read_jsonl)

# Fields only 2-D or only image runs read are checked by check_config, for the runs that
# read them (dcgan's model.norm / model.upsample by its builder, naming the valid choices).
CHOICES = {"data.name": tuple(DATA_SHAPES), "model.name": GAN_NETS, "model.loss": GAN_LOSSES,
           "model.penalty": PENALTY_CHOICES, "model.remedy": REMEDIES,
           "optim.name": OPTIMIZERS, "optim.schedule": SCHEDULES}
POSITIVE = ("data.batch_size", "train.steps", "train.log_every", "train.checkpoint_every",
            "train.steps_per_call", "train.critic_steps", "optim.lr", "optim.critic_lr",
            "model.latent_dim")
TOY_POSITIVE = ("data.num_train", "eval.num_samples", "eval.panels")
IMAGE_POSITIVE = ("eval.num_test", "eval.batch_size")
GRID = 8          # samples.png is GRID x GRID images
LATENT_GRID = 12  # latent_grid.png is LATENT_GRID x LATENT_GRID images
LATENT_RANGE = 3.0
PLANE_POINTS = 150  # critic.png evaluates the critic on a PLANE_POINTS^2 grid


def is_toy(config: ml_collections.ConfigDict) -> bool:
    """The run trains on a 2-D mixture (else on images)."""
    return config.data.name in MODE_MIXTURES


def build(config: ml_collections.ConfigDict):
    """``(gan, game)``: the networks and the game the config describes (reads every model
    field the run uses)."""
    gan = build_gan(config.model, DATA_SHAPES[config.data.name], DATA_CLASSES[config.data.name])
    return gan, gan.game(config.model, config.train.critic_steps)


def draw_labels(gan, n: int) -> Optional[np.ndarray]:
    """Labels of ``n`` evaluation draws: each class equally often (``arange(n) % classes``,
    so ``n = rows x classes`` draws in rows put one class per column); ``None`` if
    unconditional."""
    return np.arange(n, dtype=np.int32) % gan.num_classes if gan.conditional else None


def check_config(config: ml_collections.ConfigDict) -> None:
    """What the run builds from ``config`` before it loads data: the GAN, its game (traced
    once on a dummy batch, so a critic that does not fit the loss is refused), the
    optimizers, mesh and fit options; and the data and eval fields the run reads."""
    for path in TOY_POSITIVE if is_toy(config) else IMAGE_POSITIVE:
        value = experiment.get_field(config, path)
        if not value > 0:
            raise experiment.ConfigError(f"--config.{path}={value!r} must be positive")
    if not is_toy(config):
        missing = [f"data.{name}" for name in ("train_split", "test_split")
                   if name not in config.data]
        if missing:
            raise experiment.ConfigError(
                f"data.name={config.data.name!r} is an image data set, which needs "
                f"{' and '.join(missing)} (start from experiments/configs/gan_fashion_mnist.py)")
        if config.model.name == "dcgan" and not config.model.channels > 0:
            raise experiment.ConfigError(f"--config.model.channels={config.model.channels!r} "
                                         f"must be positive")
        experiment.check_splits(config)
        experiment.check_data_dir(config)
        check_feature_network(config)
        if config.eval.num_test % config.eval.batch_size:
            raise experiment.ConfigError(
                f"--config.eval.num_test={config.eval.num_test} must be a multiple of "
                f"--config.eval.batch_size={config.eval.batch_size}")
    if config.model.remedy == "pacgan" and config.data.batch_size % config.model.pack:
        raise experiment.ConfigError(
            f"--config.data.batch_size={config.data.batch_size} must be a multiple of "
            f"--config.model.pack={config.model.pack} (PacGAN packs that many samples per "
            f"critic input)")
    if not 0.0 <= config.train.ema_decay < 1.0:
        raise experiment.ConfigError(f"--config.train.ema_decay={config.train.ema_decay} must "
                                     f"be in [0, 1) (0: no average of the generator)")
    try:
        gan, game = build(config)
        gen_params, critic_vars = jax.eval_shape(gan.init, jax.random.PRNGKey(0))
        batch = jax.ShapeDtypeStruct((config.data.batch_size,) + tuple(gan.image_shape),
                                     jnp.uint8 if gan.is_image else jnp.float32)
        if gan.conditional:
            batch = {"x": batch, "y": jax.ShapeDtypeStruct((config.data.batch_size,), jnp.int32)}

        def trace(critic_vars, gen_params, batch):
            critic_params, game_state = game.init(critic_vars)
            key = jax.random.PRNGKey(0)
            game.critic_loss(critic_params, gen_params, batch, key, game_state)
            return game.gen_loss(gen_params, critic_params, batch, key, game_state)

        jax.eval_shape(trace, critic_vars, gen_params, batch)
    except experiment.ConfigError:
        raise
    except ValueError as e:
        raise experiment.ConfigError(str(e)) from e
    experiment.check_fit(config)


def feature_network_dir(config: ml_collections.ConfigDict) -> str:
    """``eval.feature_network`` of an image run ("" when unset or absent: no feature
    metrics)."""
    return str(config.eval.get("feature_network", "") or "")


def check_feature_network(config: ml_collections.ConfigDict) -> None:
    """An image run's ``eval.feature_network``, when set, is a finished classifier run on
    ``data.name``."""
    network = feature_network_dir(config)
    if not network:
        return
    hint = (f"train it with python experiments/classifier.py --config "
            f"experiments/configs/classifier_{config.data.name}.py --workdir {network}, or "
            f"leave --config.eval.feature_network empty to skip the feature metrics")
    if not os.path.isdir(network):
        raise experiment.ConfigError(f"--config.eval.feature_network={network!r} is not a "
                                     f"directory; {hint}")
    from gmjax.models import FeatureNetworkError, load_feature_network
    try:
        loaded = load_feature_network(network)
    except FeatureNetworkError as e:
        raise experiment.ConfigError(f"--config.eval.feature_network={network!r}: {e}") from e
    if loaded.data_name != config.data.name:
        raise experiment.ConfigError(
            f"--config.eval.feature_network={network!r} was trained on {loaded.data_name!r}, "
            f"the GAN on {config.data.name!r}: features of another data set are not "
            f"comparable; {hint}")


def unread_fields(config: ml_collections.ConfigDict) -> Dict[str, str]:
    """The fields a run of ``config`` does not read, and why (``gmjax.experiment.contract``)."""
    if is_toy(config):
        unread = {"data.data_dir": "2-D mixtures are drawn, not read from disk",
                  "data.num_test": "2-D runs are scored on eval.num_samples generator draws"}
        unread.update({f"data.{name}": "image data only" for name in ("train_split", "test_split")
                       if name in config.data})
        unread.update({f"eval.{name}": "image runs only"
                       for name in ("num_test", "batch_size", "feature_network")
                       if name in config.eval})
    else:
        unread = {f"data.{name}": "a toy-density field: the GAN trains on data.train_split and "
                                  "is evaluated on eval.num_test images of data.test_split"
                  for name in ("num_train", "num_test") if name in config.data}
        unread.update({f"eval.{name}": "2-D runs only" for name in ("num_samples", "panels")
                       if name in config.eval})
    unread.update(experiment.unread_by(build, config, "model",
                                       f"not an option of {config.model.name!r} with these "
                                       f"settings"))
    unread.update(experiment.unread_optimizer_fields(config))
    return unread


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       progress: Optional[bool] = None) -> Dict[str, Any]:
    check_config(config)
    key = jax.random.PRNGKey(config.seed)
    init_key, train_key, eval_key, sample_key = jax.random.split(key, 4)
    toy = is_toy(config)
    conditional = bool(config.model.conditional)
    train_y = test_y = None
    if toy:
        train_x, train_y = sample_mixture_modes(config.data.name, config.data.num_train,
                                                config.seed)
        test_x = None
    else:
        data_dir = config.data.data_dir or None
        train = load_dataset(config.data.name, config.data.train_split, data_dir=data_dir)
        test = load_dataset(config.data.name, config.data.test_split, data_dir=data_dir)
        if len(test) < config.eval.num_test:
            raise experiment.ConfigError(f"--config.eval.num_test={config.eval.num_test} but "
                                         f"{config.data.test_split!r} has {len(test)} images")
        train_x, train_y = train.x, train.y
        test_x, test_y = test.x[:config.eval.num_test], test.y[:config.eval.num_test]
        if conditional and (train_y is None or test_y is None):
            raise experiment.ConfigError(f"--config.model.conditional=True needs labels; "
                                         f"{config.data.name!r} has none")

    def with_labels(x, y):  # a data batch: examples, or {"x", "y"} for a conditional GAN
        return {"x": x, "y": np.asarray(y, np.int32)} if conditional else x

    gan, game = build(config)
    gen_params, critic_vars = jax.jit(gan.init)(init_key)
    critic_params, game_state = game.init(critic_vars)

    k = config.train.critic_steps
    gen_optimizer = make_optimizer(config.optim, config.train.steps)
    ema_decay = float(config.train.ema_decay)
    if ema_decay > 0:
        gen_optimizer = optax.chain(gen_optimizer, track_ema(ema_decay))
    critic_optim = dict(config.optim.to_dict(), lr=config.optim.critic_lr)
    critic_optimizer = game.critic_optimizer(make_optimizer(critic_optim, config.train.steps * k))
    mesh = data_mesh(config.train.num_devices or None)
    state = MinMaxState.create(gen_params, critic_params, gen_optimizer, critic_optimizer,
                               train_key, game=game_state)
    step = make_minmax_step(game.critic_loss, game.gen_loss, critic_optimizer, gen_optimizer,
                            mesh, critic_steps=k, steps_per_call=config.train.steps_per_call,
                            stateful=True)
    batches = BatchIterator(with_labels(train_x, train_y), config.data.batch_size, seed=config.seed,
                            process_index=jax.process_index(),
                            process_count=jax.process_count())

    def batch_fn(outer_step: int) -> np.ndarray:  # [k, batch, ...]
        return take_batches(batches, outer_step * k, k)

    def eval_params(state: MinMaxState):
        averaged = ema_params(state.gen_opt_state)
        return averaged if averaged is not None else state.gen_params

    def draw(gen_params, key, n):  # -> [n, ...] in data units (2-D) or model space (images)
        labels = draw_labels(gan, n)
        return gan.generate(gen_params, jax.random.normal(key, (n, gan.latent_dim)),
                            None if labels is None else jnp.asarray(labels))

    draw_jit = jax.jit(draw, static_argnums=2)

    if toy:
        mixture = MODE_MIXTURES[config.data.name]
        snapshot_dir = os.path.join(workdir, "snapshots")

        def scores(samples) -> Dict[str, float]:
            m = mode_metrics(samples, jnp.asarray(mixture.centers), mixture.sd)
            result = {"modes_captured": int(m.modes_captured),
                      "high_quality_frac": float(m.high_quality_frac),
                      "mode_weight_tv": float(m.mode_weight_tv),
                      "reverse_kl": float(m.reverse_kl)}
            if conditional:
                result["label_accuracy"] = label_accuracy(samples, mixture.centers,
                                                          draw_labels(gan, len(samples)))
            return result

        def evaluate(state: MinMaxState, step: int = 0) -> Dict[str, float]:
            """The PacGAN protocol on eval.num_samples draws (the averaged generator);
            saves the draws as ``snapshots/step_<step>.npy``."""
            samples = np.asarray(draw_jit(eval_params(state), eval_key, config.eval.num_samples))
            if jax.process_index() == 0 and step:
                os.makedirs(snapshot_dir, exist_ok=True)
                np.save(os.path.join(snapshot_dir, f"step_{step:08d}.npy"), samples)
            return scores(samples)
    else:
        @jax.jit
        def eval_chunk(gen_params, critic_params, game_state, real, key):
            critic_value, (critic_metrics, _) = game.critic_loss(
                critic_params, gen_params, real, key, game_state)
            gen_value, _ = game.gen_loss(gen_params, critic_params, real, key, game_state)
            return {"critic_loss": critic_value, "gen_loss": gen_value, **critic_metrics}

        def evaluate(state: MinMaxState, _step: int = 0) -> Dict[str, float]:
            """Losses and critic summaries on ``eval.num_test`` test images and as many
            fakes (fixed z)."""
            size = config.eval.batch_size
            parts = [eval_chunk(state.gen_params, state.critic_params, state.game,
                                with_labels(test_x[i:i + size],
                                            None if test_y is None else test_y[i:i + size]),
                                jax.random.fold_in(eval_key, i))
                     for i in range(0, len(test_x), size)]
            parts = jax.device_get(parts)
            return {name: float(np.mean([p[name] for p in parts])) for name in parts[0]}

    name = (f"{config.model.name} GAN ({config.model.loss}"
            f"{', ' + config.model.remedy if config.model.remedy != 'none' else ''}) "
            f"on {config.data.name}")
    result = fit(state, step, batch_fn, num_steps=config.train.steps, workdir=workdir,
                 mesh=mesh, log_every=config.train.log_every,
                 checkpoint_every=config.train.checkpoint_every,
                 keep_checkpoints=config.train.keep_checkpoints,
                 eval_every=config.train.eval_every, eval_fn=evaluate,
                 steps_per_call=config.train.steps_per_call,
                 batch_leading_axes=1,  # batch_fn stacks the critic axis before the batch axis
                 progress=progress, desc=name)
    final = result.state
    gen_params = eval_params(final)

    # Images: an 8 x 8 grid, or one class per row (GRID columns) for a conditional GAN.
    n_draw = config.eval.num_samples if toy else GRID * (gan.num_classes or GRID)
    jax.block_until_ready(draw_jit(gen_params, sample_key, n_draw))  # compile outside timing
    t0 = time.perf_counter()
    samples = np.asarray(jax.block_until_ready(draw_jit(gen_params, sample_key, n_draw)))
    sample_seconds = time.perf_counter() - t0

    records = list(read_jsonl(os.path.join(workdir, "metrics.jsonl")))
    last_train = [r for r in records if r.get("split") == "train"][-1]
    metrics: Dict[str, Any] = {}
    if toy:
        metrics.update(scores(samples))
        raw = np.asarray(draw_jit(final.gen_params, sample_key, n_draw))
        metrics.update({f"raw_{k}": v for k, v in scores(raw).items()})
    else:
        metrics.update(evaluate(final))
        if feature_network_dir(config):
            metrics.update(feature_metrics(config, gan, gen_params, draw_jit, test_x,
                                           jax.random.fold_in(sample_key, 1)))
    metrics.update(train_critic_loss=last_train["critic/loss"],
                   train_gen_loss=last_train["gen/loss"], train_seconds=result.train_seconds,
                   sample_seconds=sample_seconds, steps=result.steps, num_train=len(train_x))
    if jax.process_index() == 0:
        if toy:
            write_toy_figures(config, workdir, name, samples, train_x, game, final,
                              snapshot_dir, metrics)
        else:
            images = np.asarray((samples + 1.0) * 0.5).clip(0.0, 1.0)
            rows = GRID
            if gan.conditional:  # draw i has label i % classes: transpose to a class per row
                rows = gan.num_classes
                images = images.reshape((GRID, rows) + images.shape[1:]).swapaxes(0, 1)
                images = images.reshape((-1,) + images.shape[2:])
            viz.save_image_grid(os.path.join(workdir, "samples.png"), images, rows,
                                f"{name}\n{result.steps} steps"
                                f"{', one class per row' if gan.conditional else ''}")
            if gan.latent_dim == 2:
                axis = jnp.linspace(-LATENT_RANGE, LATENT_RANGE, LATENT_GRID)
                # Row i is z_2 = axis[-1 - i] (top to bottom), column j is z_1 = axis[j].
                z = jnp.stack(jnp.meshgrid(axis, axis[::-1]), axis=-1).reshape(-1, 2)
                labels = jnp.zeros(len(z), jnp.int32) if gan.conditional else None
                grid = jax.jit(gan.decode)(gen_params, z, labels)
                viz.save_image_grid(os.path.join(workdir, "latent_grid.png"), grid, LATENT_GRID,
                                    f"{name}\nG(z{', y=0' if gan.conditional else ''}) for z "
                                    f"in [-{LATENT_RANGE:g}, {LATENT_RANGE:g}]^2")
        curve_names = [n for n in ("critic/loss", "gen/loss", "critic/d_real", "critic/d_fake",
                                   "modes_captured", "high_quality_frac", "label_accuracy")
                       if any(n in r for r in records)]
        viz.plot_curves(os.path.join(workdir, "curves.png"), records, names=curve_names,
                        title=name)
    experiment.write_metrics(workdir, metrics)
    return metrics


def feature_metrics(config, gan, gen_params, draw_jit, test_x: np.ndarray,
                    key) -> Dict[str, Any]:
    """``gmjax.models.image_metrics`` of ``eval.num_test`` draws (each class equally often
    for a conditional GAN) against as many test images, in ``eval.feature_network``'s
    features; adds ``feature_samples`` and, conditional, ``class_accuracy``."""
    from gmjax.models import image_metrics, load_feature_network

    network = load_feature_network(feature_network_dir(config))
    size, n = config.eval.batch_size, len(test_x)
    draws = [np.asarray(draw_jit(gen_params, jax.random.fold_in(key, i), size))
             for i in range(0, n, size)]
    fake = np.clip((np.concatenate(draws) + 1.0) * 0.5, 0.0, 1.0)
    labels = (np.concatenate([draw_labels(gan, size)] * len(draws)) if gan.conditional
              else None)
    metrics = image_metrics(network, fake, test_x, jax.random.fold_in(key, n),
                            sample_labels=labels, kid_subset_size=min(1000, n))
    metrics["feature_samples"] = n
    return metrics


def label_accuracy(samples: np.ndarray, centers: np.ndarray, labels: np.ndarray) -> float:
    """The share of conditional samples whose nearest mode centre is their label's."""
    d2 = np.sum((np.asarray(samples)[:, None, :] - np.asarray(centers)[None]) ** 2, axis=-1)
    return float(np.mean(np.argmin(d2, axis=1) == labels))


def write_toy_figures(config, workdir, name, samples, train_x, game, state, snapshot_dir,
                      metrics) -> None:
    """``samples.png`` (snapshots over training, then the final draws, beside the data) and
    ``critic.png`` (the critic's output on the plane, data points over it)."""
    import matplotlib.pyplot as plt

    from gmjax.viz.figure import panels, plane_axes, save_figure

    lo, hi = train_x.min(0), train_x.max(0)
    pad = 0.25 * (hi - lo).max() + 0.1
    bounds = (lo[0] - pad, hi[0] + pad, lo[1] - pad, hi[1] + pad)
    paths = sorted(glob.glob(os.path.join(snapshot_dir, "step_*.npy")))
    shown = [(f"step {int(os.path.basename(p)[5:-4])}", np.load(p)) for p in paths]
    shown = shown[-(config.eval.panels - 1):] if config.eval.panels > 1 else []
    num_modes = len(MODE_MIXTURES[config.data.name].centers)
    final_title = (f"final: {metrics['modes_captured']}/{num_modes} modes, "
                   f"{100 * metrics['high_quality_frac']:.0f}% HQ")
    columns = [("data", train_x[:len(samples)])] + shown + [(final_title, samples)]
    fig, axes = panels(1, len(columns), (3.0, 3.0))
    for ax, (title, points) in zip(axes[0], columns):
        ax.scatter(points[:, 0], points[:, 1], s=1.5, alpha=0.4,
                   color="0.4" if title == "data" else "C0")
        plane_axes(ax, title, bounds)
    save_figure(fig, os.path.join(workdir, "samples.png"), f"{name}: samples over training")

    xs = np.linspace(bounds[0], bounds[1], PLANE_POINTS)
    ys = np.linspace(bounds[2], bounds[3], PLANE_POINTS)
    plane = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2).astype(np.float32)
    # Chunks of a multiple of any pack size up to 6 (PacGAN's m); chunked, because a
    # minibatch-discrimination critic compares every pair of points in its batch.
    batch = 10 * 2 * 3 * 4 * 5
    plane = np.concatenate([plane, np.zeros((-len(plane) % batch, 2), np.float32)])
    conditional = game.config.conditional
    # A conditional critic is drawn for label 0 (the first mode).
    net = jax.jit(lambda p, g, x: game.network(
        p, g, jnp.zeros(x.shape[0], jnp.int32) if conditional else None)(x))
    values = np.concatenate([np.asarray(net(state.critic_params, state.game,
                                            plane[i:i + batch])).reshape(-1)
                             for i in range(0, len(plane), batch)])
    values = values[:PLANE_POINTS * PLANE_POINTS].reshape(PLANE_POINTS, PLANE_POINTS)
    label = "D(x) = sigmoid(critic)" if game.loss.probability else "critic output"
    if conditional:
        label += ", label 0"
    if game.loss.probability:
        values = 1.0 / (1.0 + np.exp(-values))
    fig, axes = panels(1, 1, (4.6, 3.8))
    ax = axes[0, 0]
    image = ax.imshow(values, origin="lower", extent=bounds, cmap="viridis", aspect="equal")
    ax.scatter(train_x[:500, 0], train_x[:500, 1], s=1, color="white", alpha=0.6)
    plane_axes(ax, label, bounds)
    fig.colorbar(image, ax=ax, label=label)
    save_figure(fig, os.path.join(workdir, "critic.png"), f"{name}: the critic on the plane")
    plt.close("all")


EXPERIMENT = experiment.Experiment(train_and_evaluate, choices=CHOICES, positive=POSITIVE,
                                   check=check_config, unread=unread_fields)

if __name__ == "__main__":
    experiment.main(EXPERIMENT)
