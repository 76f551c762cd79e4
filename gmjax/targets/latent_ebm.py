"""The latent energy-based model of a trained GAN: a multimodal target on R^d.

A GAN's discriminator logit d(x) estimates log p_data(x) / p_g(x) at the
optimum (Goodfellow et al., 2014, Prop. 1: D* = p_data / (p_data + p_g)), so
re-weighting the generator's latent prior by exp(d(G(z))) gives a latent
density whose push-forward under G is closer to the data (Che et al., "Your
GAN is secretly an energy-based model and you should use discriminator driven
latent sampling", NeurIPS 2020, Eq. 6):

    p(z) ∝ N(z; 0, I_d) exp(d(G(z))),
    E(z) = -log N(z; 0, I_d) - d(G(z)),
    log_prob(z) = -|z|^2 / 2 - (d / 2) log(2 pi) + d(G(z)).

Its modes sit where G draws the clothing classes the discriminator believes
in, separated by low-density gaps: the Fashion-MNIST latent sampling
experiment of TemperFlow (Qiu and Wang, "Efficient multimodal sampling via
tempered distribution flow", JASA 2024) samples it for latent dimensions 2
and 32. The normalizing constant is unknown (``log_normalizer = None``) and
there is no exact sampler. ``decode(z)`` turns latent samples into images for
sample grids.

``build_target("latent_ebm", workdir="runs/gan_fashion_z2")`` reads the
latest checkpoint of a GAN trained by ``experiments/gan.py``.
"""

from __future__ import annotations

import functools
import math
import os
from typing import Any, Callable, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from gmjax.targets.base import Target
from gmjax.targets.registry import TARGETS

PyTree = Any


def standard_normal_log_prob(z: jax.Array) -> jax.Array:  # [..., d] -> [...]
    """``log N(z; 0, I_d) = -|z|^2 / 2 - (d / 2) log(2 pi)``."""
    return -0.5 * jnp.sum(z * z, axis=-1) - 0.5 * z.shape[-1] * math.log(2.0 * math.pi)


@functools.lru_cache(maxsize=16)
def _compiled(generator: nn.Module, discriminator: nn.Module,
              image_shape: Tuple[int, ...]) -> Tuple[Callable, Callable]:
    """jitted ``(gen, disc, z) -> log_prob`` and ``(gen, z) -> images``, one per architecture.

    Modules are hashable dataclasses, so every target built on one architecture
    (e.g. the checkpoints of one run) shares the compilations; nested in an
    outer ``jit`` / ``grad`` / ``vmap`` they are simply inlined.
    """

    def images(gen_params, z):  # [m, d] -> [m, H, W, C] in [-1, 1]
        return generator.apply(gen_params, z)

    @jax.jit
    def log_prob(gen_params, disc_params, z):  # [..., d] -> [...]
        flat = z.reshape(-1, z.shape[-1])                                   # [m, d]
        logits = discriminator.apply(disc_params, images(gen_params, flat))  # [m]
        return standard_normal_log_prob(z) + logits.reshape(z.shape[:-1])

    @jax.jit
    def decode(gen_params, z):  # [..., d] -> [..., H, W, C] in [0, 1]
        flat = z.reshape(-1, z.shape[-1])
        x = images(gen_params, flat).reshape(z.shape[:-1] + image_shape)
        return jnp.clip((x + 1.0) * 0.5, 0.0, 1.0)

    return log_prob, decode


class LatentEBMTarget(Target):
    """``p(z) ∝ N(z; 0, I) exp(d(G(z)))`` for a generator ``G`` and discriminator logit ``d``.

    Args:
      generator: Flax module ``z [m, d] -> images [m, H, W, C]`` in [-1, 1].
      gen_params: its parameters.
      discriminator: Flax module ``images [m, H, W, C] -> logits [m]``.
      disc_params: its parameters.
      latent_dim: ``d``.
      image_shape: ``(H, W, C)`` of ``G``'s images.
      source: where the networks came from (a workdir), for ``repr``.
    """

    name = "latent_ebm"
    log_normalizer: Optional[float] = None

    def __init__(self, generator: nn.Module, gen_params: PyTree, discriminator: nn.Module,
                 disc_params: PyTree, latent_dim: int,
                 image_shape: Tuple[int, int, int] = (28, 28, 1), source: str = ""):
        super().__init__(latent_dim)
        self.generator, self.gen_params = generator, gen_params
        self.discriminator, self.disc_params = discriminator, disc_params
        self.image_shape = tuple(int(s) for s in image_shape)
        self.source = source
        self._log_prob, self._decode = _compiled(generator, discriminator, self.image_shape)

    @classmethod
    def from_workdir(cls, workdir: str, step: Optional[int] = None) -> "LatentEBMTarget":
        """The target of the GAN trained by ``experiments/gan.py`` in ``workdir``.

        Raises:
          gmjax.models.gan.GANWorkdirError: no config or checkpoint there; the
            message names the command that trains one.
        """
        # Reading a run is the GAN model's job; imported here so that gmjax.targets
        # (below gmjax.models in the import order) loads no model family on import.
        from gmjax.models.gan import load_gan

        run = load_gan(workdir, step)
        gan = run.gan
        return cls(gan.generator, run.gen_params, gan.discriminator, run.disc_params,
                   gan.latent_dim, gan.image_shape, source=f"{run.workdir} step {run.step}")

    def log_prob(self, z: jax.Array) -> jax.Array:  # [..., d] -> [...]
        """``log N(z; 0, I) + d(G(z))``, unnormalized (``-E(z)``)."""
        z = jnp.asarray(z, jnp.float32)
        if z.shape[-1:] != (self.dim,):
            raise ValueError(f"latent_ebm takes z [..., {self.dim}], got shape {z.shape}")
        return self._log_prob(self.gen_params, self.disc_params, z)

    def discriminator_logit(self, z: jax.Array) -> jax.Array:  # [..., d] -> [...]
        """``d(G(z)) = log_prob(z) - log N(z; 0, I)``: the re-weighting of the prior."""
        z = jnp.asarray(z, jnp.float32)
        return self.log_prob(z) - standard_normal_log_prob(z)

    def decode(self, z: jax.Array) -> jax.Array:  # [..., d] -> [..., H, W, C]
        """The images ``(G(z) + 1) / 2`` in [0, 1] of latent points, for sample grids."""
        z = jnp.asarray(z, jnp.float32)
        if z.shape[-1:] != (self.dim,):
            raise ValueError(f"latent_ebm takes z [..., {self.dim}], got shape {z.shape}")
        return self._decode(self.gen_params, z)

    def __repr__(self) -> str:
        where = f", {self.source}" if self.source else ""
        return f"LatentEBMTarget(dim={self.dim}{where})"


@TARGETS.register("latent_ebm")
def latent_ebm_target(workdir: Optional[str] = None, step: Optional[int] = None
                      ) -> LatentEBMTarget:
    """``build_target("latent_ebm", workdir=...)``: the latest checkpoint of a GAN workdir."""
    if not workdir:
        raise ValueError("target latent_ebm needs the option workdir: a directory written by "
                         "experiments/gan.py, e.g. workdir='runs/gan_fashion_z2'")
    return LatentEBMTarget.from_workdir(os.fspath(workdir), step)
