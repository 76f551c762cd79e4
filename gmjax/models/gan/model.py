"""GANs: a generator and a discriminator, their game losses, and sampling.

A ``GAN`` ties the networks of ``gmjax.nets`` (``GAN_NETS``: ``dcgan``) to the
losses of ``gmjax.objectives.adversarial`` (``GAN_LOSSES``). Images live in
two spaces: the *model* space of the generator's ``tanh`` output, [-1, 1], in
which the discriminator sees both real and generated images, and the *data*
space of ``uint8`` pixels / floats in [0, 1] that figures and image metrics
take:

    model = 2 * x / 255 - 1          (to_model_space, from uint8)
    x01   = (model + 1) / 2          (to_unit_range)
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from gmjax.models.gan.mixtures import MODE_MIXTURES
from gmjax.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from gmjax.nets.gan_mlp import MLPCritic, MLPGenerator
from gmjax.objectives.adversarial import (GameLoss, GanGame, make_gan_game, make_gan_losses,
                                          sample_latent)
from gmjax.registry import Registry

PyTree = Any

# Image shape (H, W, C) of each data set a GAN here can be trained on.
IMAGE_SHAPES = {"fashion_mnist": (28, 28, 1), "mnist": (28, 28, 1)}
# Shape of one example of every data set a GAN here can be trained on: images and the
# 2-D mode-coverage mixtures (gmjax.models.gan.mixtures).
DATA_SHAPES = {**IMAGE_SHAPES, **{name: (2,) for name in MODE_MIXTURES}}
# Labels of each data set, for conditional GANs (model.conditional): image classes, and
# the mixture component (mode index) of the 2-D benchmarks.
DATA_CLASSES = {"fashion_mnist": 10, "mnist": 10,
                **{name: len(mixture.centers) for name, mixture in MODE_MIXTURES.items()}}
# Mode-collapse remedies built into the critic (model.remedy).
REMEDIES = ("none", "minibatch", "pacgan", "feature_matching", "unrolled")
# The remedies that act on the losses, not on the critic's architecture (any network).
LOSS_REMEDIES = ("none", "unrolled")
# model.penalty: "default" keeps the loss's own penalty (gp for wgan_gp, ...).
PENALTY_CHOICES = ("default", "none", "gp", "dragan", "r1", "r2")

# A builder: (model config, data shape, number of classes; 0 = unconditional) -> (G, D).
GAN_NETS: Registry[Callable[[Mapping[str, Any], Tuple[int, ...], int],
                            Tuple[nn.Module, nn.Module]]] = Registry("GAN network")


@GAN_NETS.register("dcgan")
def _dcgan(model: Mapping[str, Any], image_shape: Tuple[int, int, int], num_classes: int = 0
           ) -> Tuple[nn.Module, nn.Module]:
    if len(image_shape) != 3:
        raise ValueError(f"dcgan needs images [H, W, C], got examples of shape {image_shape}: "
                         f"use model.name='mlp' for vector data")
    h, w, c = image_shape
    if h != w or h % 4:
        raise ValueError(f"dcgan needs square images with a side divisible by 4, got {image_shape}")
    if model.get("spectral_norm", False):
        raise ValueError("model.spectral_norm=True needs model.name='mlp' (the dcgan critic "
                         "has no spectrally normalized variant)")
    if model.get("remedy", "none") not in LOSS_REMEDIES:
        raise ValueError(f"model.remedy={model['remedy']!r} needs model.name='mlp'; dcgan "
                         f"takes model.remedy in: {', '.join(LOSS_REMEDIES)}")
    channels, norm = int(model["channels"]), str(model.get("norm", "none"))
    upsample = str(model.get("upsample", "transpose"))
    return (DCGANGenerator(channels=channels, out_channels=c, base_size=h // 4, norm=norm,
                           upsample=upsample, num_classes=num_classes),
            DCGANDiscriminator(channels=channels, norm=norm, num_classes=num_classes))


@GAN_NETS.register("mlp")
def _mlp(model: Mapping[str, Any], data_shape: Tuple[int, ...], num_classes: int = 0
         ) -> Tuple[nn.Module, nn.Module]:
    if len(data_shape) != 1:
        raise ValueError(f"mlp GANs take vectors, got examples of shape {data_shape}: use "
                         f"model.name='dcgan' for images")
    hidden = tuple(int(w) for w in model["hidden"])
    remedy = str(model.get("remedy", "none"))
    if remedy not in REMEDIES:
        raise ValueError(f"unknown model.remedy {remedy!r}; valid choices: {', '.join(REMEDIES)}")
    pack = int(model["pack"]) if remedy == "pacgan" else 1
    if remedy == "pacgan" and pack < 2:
        raise ValueError(f"model.pack (PacGAN's samples per critic input) must be >= 2, got "
                         f"{pack}")
    kernels = int(model["minibatch_kernels"]) if remedy == "minibatch" else 0
    if remedy == "minibatch" and kernels < 1:
        raise ValueError(f"model.minibatch_kernels must be >= 1, got {kernels}")
    labels: Dict[str, int] = {}
    if num_classes:
        labels = {"num_classes": num_classes, "embed_dim": int(model["embed_dim"])}
        if labels["embed_dim"] < 1:
            raise ValueError(f"model.embed_dim (the label embedding's width) must be >= 1, "
                             f"got {labels['embed_dim']}")
    critic = MLPCritic(hidden, spectral=bool(model.get("spectral_norm", False)),
                       minibatch_kernels=kernels, pack=pack, **labels)
    return MLPGenerator(hidden, out_dim=data_shape[0], **labels), critic


def game_options(model: Mapping[str, Any]) -> Dict[str, Any]:
    """``GanConfig`` fields from a ``model`` config block (missing fields: defaults).

    ``penalty="default"`` keeps the loss's own penalty; negative
    ``penalty_weight`` / ``clip`` keep the loss's defaults.
    """
    options: Dict[str, Any] = {"loss": str(model.get("loss", "non_saturating"))}
    penalty = str(model.get("penalty", "default"))
    if penalty != "default":
        if penalty not in PENALTY_CHOICES:
            raise ValueError(f"unknown model.penalty {penalty!r}; valid choices: "
                             f"{', '.join(PENALTY_CHOICES)}")
        options["penalty"] = penalty
    for name in ("penalty_weight", "clip"):
        value = float(model.get(name, -1.0))
        if value >= 0:
            options[name] = value
    for name in ("label_smoothing", "instance_noise", "consensus"):
        options[name] = float(model.get(name, 0.0))
    if options["instance_noise"] > 0:
        options["instance_noise_anneal"] = int(model.get("instance_noise_anneal", 0))
    options["spectral_norm"] = bool(model.get("spectral_norm", False))
    remedy = str(model.get("remedy", "none"))
    if remedy not in REMEDIES:
        raise ValueError(f"unknown model.remedy {remedy!r}; valid choices: {', '.join(REMEDIES)}")
    if remedy == "feature_matching":
        options["feature_matching"] = True
    if remedy == "unrolled":
        options["unroll_steps"] = int(model["unroll_steps"])
        options["unroll_lr"] = float(model["unroll_lr"])
        if options["unroll_steps"] < 1:
            raise ValueError(f"model.unroll_steps must be >= 1 with model.remedy='unrolled', "
                             f"got {options['unroll_steps']}")
    return options


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
      num_classes: a conditional GAN ``G(z, y)``, ``d(x, y)`` over this many
        labels (0: unconditional).
    """

    generator: nn.Module
    discriminator: nn.Module
    latent_dim: int
    image_shape: Tuple[int, int, int]
    num_classes: int = 0

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    def _labels(self, n: int) -> Tuple[jax.Array, ...]:
        return (jnp.zeros((n,), jnp.int32),) if self.conditional else ()

    def init(self, key: jax.Array) -> Tuple[PyTree, PyTree]:
        """``(gen_params, disc_params)`` drawn from the networks' initializers."""
        gen_key, disc_key = jax.random.split(key)
        z = jnp.zeros((1, self.latent_dim))
        images = jnp.zeros((1,) + tuple(self.image_shape))
        return (self.generator.init(gen_key, z, *self._labels(1)),
                self.discriminator.init(disc_key, images, *self._labels(1)))

    def abstract_params(self) -> Tuple[PyTree, PyTree]:
        """Shapes and dtypes of ``init``'s output, without computing it."""
        return jax.eval_shape(self.init, jax.random.PRNGKey(0))

    def losses(self, loss: str = "non_saturating") -> Tuple[GameLoss, GameLoss]:
        """``(critic_loss, gen_loss)`` on ``uint8`` data batches (see ``make_gan_losses``)."""
        return make_gan_losses(self.generator, self.discriminator, self.latent_dim, loss,
                               preprocess=to_model_space)

    @property
    def is_image(self) -> bool:
        """Examples are images ``[H, W, C]`` (else vectors)."""
        return len(self.image_shape) == 3

    def game(self, model: Mapping[str, Any], critic_steps: int = 1) -> GanGame:
        """The ``GanGame`` of a ``model`` config block (``game_options``), on data batches:
        ``uint8`` images go to model space, vectors are used as they are."""
        return make_gan_game(self.generator, self.discriminator, self.latent_dim,
                             preprocess=to_model_space if self.is_image else None,
                             critic_steps=int(critic_steps), conditional=self.conditional,
                             **game_options(model))

    def generate(self, gen_params: PyTree, z: jax.Array,
                 labels: Optional[jax.Array] = None) -> jax.Array:
        """``G(z)`` (``G(z, y)`` for a conditional GAN, ``labels`` of ``z``'s batch shape):
        ``z [..., d] -> images [..., H, W, C]`` in model space [-1, 1] (vectors for 2-D data)."""
        flat = z.reshape(-1, self.latent_dim)
        if self.conditional != (labels is not None):
            raise ValueError("a conditional GAN generates from (z, labels), an unconditional "
                             "one from z alone" if self.conditional else
                             "this GAN is unconditional: call generate(params, z) without labels")
        extra = () if labels is None else (jnp.reshape(labels, (-1,)),)
        return self.generator.apply(gen_params, flat, *extra).reshape(
            z.shape[:-1] + tuple(self.image_shape))

    def decode(self, gen_params: PyTree, z: jax.Array,
               labels: Optional[jax.Array] = None) -> jax.Array:
        """``(G(z) + 1) / 2``: ``z [..., d] -> images [..., H, W, C]`` in [0, 1]."""
        return to_unit_range(self.generate(gen_params, z, labels))

    def sample(self, gen_params: PyTree, key: jax.Array, n: int) -> jax.Array:
        """``n`` images in [0, 1] from ``z ~ N(0, I)``: ``[n, H, W, C]``."""
        return self.decode(gen_params, sample_latent(key, n, self.latent_dim))

    def logits(self, disc_params: PyTree, images: jax.Array) -> jax.Array:
        """``d(x)`` for model-space images ``[..., H, W, C] -> [...]``."""
        batch = images.shape[:-3]
        flat = images.reshape((-1,) + tuple(self.image_shape))
        return self.discriminator.apply(disc_params, flat).reshape(batch)


def build_gan(model: Mapping[str, Any], image_shape: Tuple[int, ...],
              num_classes: int = 0) -> GAN:
    """The GAN a ``model`` config block describes.

    Fields: ``name`` (in ``GAN_NETS``), ``latent_dim``, ``channels``, and for
    ``dcgan`` the optional ``norm`` (default ``"none"``) and ``upsample``
    (default ``"transpose"``). With ``conditional=True`` (default False) both
    networks take labels in ``{0, ..., num_classes - 1}`` (``DATA_CLASSES``
    of the data set; the MLPs embed them in ``embed_dim`` numbers).
    """
    conditional = bool(model.get("conditional", False))
    if conditional and num_classes < 2:
        raise ValueError(f"model.conditional=True needs the data's number of classes (>= 2), "
                         f"got num_classes={num_classes}")
    classes = int(num_classes) if conditional else 0
    generator, discriminator = GAN_NETS.get(model["name"])(model, tuple(image_shape), classes)
    return GAN(generator, discriminator, int(model["latent_dim"]), tuple(image_shape), classes)
