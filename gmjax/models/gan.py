"""GANs: a generator and a discriminator, their game losses, sampling, and loading a run.

A ``GAN`` ties the networks of ``gmjax.nets`` (``GAN_NETS``: ``dcgan``) to the
losses of ``gmjax.objectives.adversarial`` (``GAN_LOSSES``). Images live in
two spaces: the *model* space of the generator's ``tanh`` output, [-1, 1], in
which the discriminator sees both real and generated images, and the *data*
space of ``uint8`` pixels / floats in [0, 1] that figures and image metrics
take:

    model = 2 * x / 255 - 1          (to_model_space, from uint8)
    x01   = (model + 1) / 2          (to_unit_range)

``experiments/gan.py`` trains one and writes a workdir (``config.json``,
``checkpoints/``); ``load_gan(workdir)`` reads the latest checkpoint back
without writing anything (it is what ``gmjax.targets.latent_ebm`` builds the
latent energy from).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Callable, Mapping, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from gmjax.models.classifier import quiet_absl
from gmjax.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from gmjax.objectives.adversarial import GameLoss, make_gan_losses, sample_latent
from gmjax.registry import Registry

PyTree = Any

# Image shape (H, W, C) of each data set a GAN here can be trained on.
IMAGE_SHAPES = {"fashion_mnist": (28, 28, 1), "mnist": (28, 28, 1)}

GAN_NETS: Registry[Callable[[Mapping[str, Any], Tuple[int, int, int]],
                            Tuple[nn.Module, nn.Module]]] = Registry("GAN network")


@GAN_NETS.register("dcgan")
def _dcgan(model: Mapping[str, Any], image_shape: Tuple[int, int, int]
           ) -> Tuple[nn.Module, nn.Module]:
    h, w, c = image_shape
    if h != w or h % 4:
        raise ValueError(f"dcgan needs square images with a side divisible by 4, got {image_shape}")
    channels, norm = int(model["channels"]), str(model.get("norm", "none"))
    upsample = str(model.get("upsample", "transpose"))
    return (DCGANGenerator(channels=channels, out_channels=c, base_size=h // 4, norm=norm,
                           upsample=upsample),
            DCGANDiscriminator(channels=channels, norm=norm))


def to_model_space(x: jax.Array) -> jax.Array:  # [...] uint8 -> [...] float32 in [-1, 1]
    """``2 x / 255 - 1``: data pixels to the generator's ``tanh`` range."""
    return jnp.asarray(x, jnp.float32) * (2.0 / 255.0) - 1.0


def to_unit_range(images: jax.Array) -> jax.Array:  # [...] in [-1, 1] -> [...] in [0, 1]
    """``(x + 1) / 2``, clipped: generator outputs to the [0, 1] of figures and metrics."""
    return jnp.clip((images + 1.0) * 0.5, 0.0, 1.0)


@dataclasses.dataclass(frozen=True)
class GAN:
    """A generator ``G: z -> [-1, 1]^{H x W x C}`` and a discriminator logit ``d``.

    Attributes:
      generator, discriminator: Flax modules (``DCGANGenerator``, ``DCGANDiscriminator``).
      latent_dim: ``d`` of the prior ``z ~ N(0, I_d)``.
      image_shape: ``(H, W, C)``.
    """

    generator: nn.Module
    discriminator: nn.Module
    latent_dim: int
    image_shape: Tuple[int, int, int]

    def init(self, key: jax.Array) -> Tuple[PyTree, PyTree]:
        """``(gen_params, disc_params)`` drawn from the networks' initializers."""
        gen_key, disc_key = jax.random.split(key)
        z = jnp.zeros((1, self.latent_dim))
        images = jnp.zeros((1,) + tuple(self.image_shape))
        return self.generator.init(gen_key, z), self.discriminator.init(disc_key, images)

    def abstract_params(self) -> Tuple[PyTree, PyTree]:
        """Shapes and dtypes of ``init``'s output, without computing it."""
        return jax.eval_shape(self.init, jax.random.PRNGKey(0))

    def losses(self, loss: str = "non_saturating") -> Tuple[GameLoss, GameLoss]:
        """``(critic_loss, gen_loss)`` on ``uint8`` data batches (see ``make_gan_losses``)."""
        return make_gan_losses(self.generator, self.discriminator, self.latent_dim, loss,
                               preprocess=to_model_space)

    def generate(self, gen_params: PyTree, z: jax.Array) -> jax.Array:
        """``G(z)``: ``z [..., d] -> images [..., H, W, C]`` in model space [-1, 1]."""
        flat = z.reshape(-1, self.latent_dim)
        return self.generator.apply(gen_params, flat).reshape(
            z.shape[:-1] + tuple(self.image_shape))

    def decode(self, gen_params: PyTree, z: jax.Array) -> jax.Array:
        """``(G(z) + 1) / 2``: ``z [..., d] -> images [..., H, W, C]`` in [0, 1]."""
        return to_unit_range(self.generate(gen_params, z))

    def sample(self, gen_params: PyTree, key: jax.Array, n: int) -> jax.Array:
        """``n`` images in [0, 1] from ``z ~ N(0, I)``: ``[n, H, W, C]``."""
        return self.decode(gen_params, sample_latent(key, n, self.latent_dim))

    def logits(self, disc_params: PyTree, images: jax.Array) -> jax.Array:
        """``d(x)`` for model-space images ``[..., H, W, C] -> [...]``."""
        batch = images.shape[:-3]
        flat = images.reshape((-1,) + tuple(self.image_shape))
        return self.discriminator.apply(disc_params, flat).reshape(batch)


def build_gan(model: Mapping[str, Any], image_shape: Tuple[int, int, int]) -> GAN:
    """The GAN a ``model`` config block describes.

    Fields: ``name`` (in ``GAN_NETS``), ``latent_dim``, ``channels``, and for
    ``dcgan`` the optional ``norm`` (default ``"none"``) and ``upsample``
    (default ``"transpose"``).
    """
    generator, discriminator = GAN_NETS.get(model["name"])(model, tuple(image_shape))
    return GAN(generator, discriminator, int(model["latent_dim"]), tuple(image_shape))


# ------------------------------------------------------------------ loading a trained run


CONFIG_FILE = os.path.join("experiments", "configs", "gan_fashion_mnist.py")


def train_command(workdir: str, latent_dim: int = 2) -> str:
    """The command that trains a GAN into ``workdir`` (what to run when it is missing)."""
    return (f"python experiments/gan.py --config {CONFIG_FILE} "
            f"--config.model.latent_dim={latent_dim} --workdir {workdir}")


class GANWorkdirError(FileNotFoundError):
    """No trained GAN at a path (missing, no checkpoint, unreadable); says what to run."""


@dataclasses.dataclass(frozen=True)
class TrainedGAN:
    """A GAN read back from an ``experiments/gan.py`` workdir.

    Attributes:
      gan: the networks.
      gen_params, disc_params: the parameters of checkpoint ``step``.
      step: the checkpoint's step (outer min-max steps).
      config: the run's ``config.json`` as a dict.
      workdir: where it was read from.
    """

    gan: GAN
    gen_params: PyTree
    disc_params: PyTree
    step: int
    config: Mapping[str, Any]
    workdir: str


def load_gan(workdir: str, step: Optional[int] = None) -> TrainedGAN:
    """Reads the GAN trained by ``experiments/gan.py`` in ``workdir``.

    Reads ``config.json`` (networks, latent dimension, data set) and the
    generator and discriminator parameters of checkpoint ``step`` (default:
    the latest; only those two fields of the saved ``MinMaxState`` are read).
    Nothing in ``workdir`` is modified, so a run still writing there is safe.

    Raises:
      GANWorkdirError: the workdir, its ``config.json`` or a checkpoint is
        missing or unreadable; the message names the command that makes one.
    """
    import orbax.checkpoint as ocp

    workdir = os.path.abspath(os.fspath(workdir))
    config_path = os.path.join(workdir, "config.json")
    if not os.path.isfile(config_path):
        what = "does not exist" if not os.path.isdir(workdir) else "has no config.json"
        raise GANWorkdirError(f"no trained GAN in {workdir}: the directory {what}. Train one "
                              f"with\n  {train_command(workdir)}")
    try:
        with open(config_path) as f:
            config = json.load(f)
        model_config = config["model"]
        latent_dim = int(model_config["latent_dim"])
        gan = build_gan(model_config, IMAGE_SHAPES[config["data"]["name"]])
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise GANWorkdirError(
            f"{config_path} is not the config of a GAN run ({type(e).__name__}: {e}); train "
            f"one with\n  {train_command(workdir)}") from e
    command = train_command(workdir, latent_dim)

    directory = os.path.join(workdir, "checkpoints")
    steps = ([int(d) for d in os.listdir(directory) if d.isdigit()]
             if os.path.isdir(directory) else [])
    if not steps:
        raise GANWorkdirError(f"{workdir} has no checkpoint yet (nothing in {directory}); "
                              f"train (or resume) the GAN with\n  {command}")
    step = max(steps) if step is None else int(step)
    if step not in steps:
        raise GANWorkdirError(f"{directory} has no step {step}; it holds steps {sorted(steps)}")

    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    gen_abstract, disc_abstract = jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=device), gan.abstract_params())
    abstract = {"gen_params": gen_abstract, "critic_params": disc_abstract}
    try:
        with quiet_absl():
            options = ocp.CheckpointManagerOptions(read_only=True, create=False,
                                                   save_interval_steps=0)
            manager = ocp.CheckpointManager(directory, options=options)
            restore = ocp.args.PyTreeRestore(
                item=abstract, restore_args=ocp.checkpoint_utils.construct_restore_args(abstract),
                partial_restore=True)
            restored = manager.restore(step, args=ocp.args.Composite(state=restore))
            manager.close()
    except Exception as e:  # orbax raises many types; all mean "unreadable"
        raise GANWorkdirError(
            f"checkpoint {os.path.join(directory, str(step))} could not be read "
            f"({type(e).__name__}: {e}). It is corrupt or from a different network; move "
            f"{workdir} away and retrain with\n  {command}") from e
    state = restored.state
    return TrainedGAN(gan=gan, gen_params=state["gen_params"], disc_params=state["critic_params"],
                      step=step, config=config, workdir=workdir)
