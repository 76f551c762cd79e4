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

The target takes the two networks as pure functions with their parameters,
so it knows nothing of how they were trained or stored;
``gmjax.models.gan.latent_ebm_target(workdir)`` builds it from a trained GAN.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Optional, Tuple

import jax
import jax.numpy as jnp

from gmjax.targets.base import Target
from gmjax.targets.registry import TARGETS

PyTree = Any
Decoder = Callable[[PyTree, jax.Array], jax.Array]  # (params, z [m, d]) -> x [m, H, W, C]
Critic = Callable[[PyTree, jax.Array], jax.Array]  # (params, x [m, H, W, C]) -> logits [m]
ToImages = Callable[[jax.Array], jax.Array]  # x [..., H, W, C] -> images in [0, 1]


def standard_normal_log_prob(z: jax.Array) -> jax.Array:  # [..., d] -> [...]
    """``log N(z; 0, I_d) = -|z|^2 / 2 - (d / 2) log(2 pi)``."""
    return -0.5 * jnp.sum(z * z, axis=-1) - 0.5 * z.shape[-1] * math.log(2.0 * math.pi)


def _identity(x: jax.Array) -> jax.Array:
    return x


@functools.lru_cache(maxsize=16)
def _compiled(decoder: Decoder, critic: Critic, to_images: ToImages,
              image_shape: Tuple[int, ...]) -> Tuple[Callable, Callable]:
    """jitted ``(dec, crit, z) -> log_prob`` and ``(dec, z) -> images``, one per network pair.

    Keyed by the functions (hashable), so targets built on the same networks
    (e.g. the checkpoints of one run) share the compilations; nested in an
    outer ``jit`` / ``grad`` / ``vmap`` they are simply inlined.
    """

    @jax.jit
    def log_prob(decoder_params, critic_params, z):  # [..., d] -> [...]
        flat = z.reshape(-1, z.shape[-1])                                    # [m, d]
        logits = critic(critic_params, decoder(decoder_params, flat))        # [m]
        return standard_normal_log_prob(z) + logits.reshape(z.shape[:-1])

    @jax.jit
    def decode(decoder_params, z):  # [..., d] -> [..., H, W, C] in [0, 1]
        flat = z.reshape(-1, z.shape[-1])
        x = decoder(decoder_params, flat).reshape(z.shape[:-1] + image_shape)
        return to_images(x)

    return log_prob, decode


class LatentEBMTarget(Target):
    """``p(z) ∝ N(z; 0, I) exp(d(G(z)))`` for a decoder ``G`` and a critic logit ``d``.

    Args:
      decoder: ``G`` as a pure function ``(decoder_params, z [m, d]) -> x [m, H, W, C]``
        (e.g. a Flax generator's ``apply``), ``x`` in the space the critic reads.
      decoder_params: its parameters.
      critic: ``d`` as a pure function ``(critic_params, x [m, H, W, C]) -> logits [m]``.
      critic_params: its parameters.
      latent_dim: ``d``.
      image_shape: ``(H, W, C)`` of the decoder's outputs.
      to_images: maps decoder outputs to images in [0, 1] for ``decode``
        (e.g. ``(x + 1) / 2`` for a ``tanh`` generator); identity by default.
      source: where the networks came from (a workdir), for ``repr``.

    Pass the same function objects for targets of one architecture: the
    jitted ``log_prob`` is compiled once per (decoder, critic, to_images).
    """

    name = "latent_ebm"
    log_normalizer: Optional[float] = None

    def __init__(self, decoder: Decoder, decoder_params: PyTree, critic: Critic,
                 critic_params: PyTree, latent_dim: int,
                 image_shape: Tuple[int, int, int] = (28, 28, 1),
                 to_images: Optional[ToImages] = None, source: str = ""):
        super().__init__(latent_dim)
        self.decoder, self.decoder_params = decoder, decoder_params
        self.critic, self.critic_params = critic, critic_params
        self.image_shape = tuple(int(s) for s in image_shape)
        self.source = source
        self._log_prob, self._decode = _compiled(decoder, critic, to_images or _identity,
                                                 self.image_shape)

    def _check(self, z: jax.Array) -> jax.Array:
        z = jnp.asarray(z, jnp.float32)
        if z.shape[-1:] != (self.dim,):
            raise ValueError(f"latent_ebm takes z [..., {self.dim}], got shape {z.shape}")
        return z

    def log_prob(self, z: jax.Array) -> jax.Array:  # [..., d] -> [...]
        """``log N(z; 0, I) + d(G(z))``, unnormalized (``-E(z)``)."""
        return self._log_prob(self.decoder_params, self.critic_params, self._check(z))

    def critic_logit(self, z: jax.Array) -> jax.Array:  # [..., d] -> [...]
        """``d(G(z)) = log_prob(z) - log N(z; 0, I)``: the re-weighting of the prior."""
        z = self._check(z)
        return self.log_prob(z) - standard_normal_log_prob(z)

    def decode(self, z: jax.Array) -> jax.Array:  # [..., d] -> [..., H, W, C]
        """The images ``to_images(G(z))`` in [0, 1] of latent points, for sample grids."""
        return self._decode(self.decoder_params, self._check(z))

    def __repr__(self) -> str:
        where = f", {self.source}" if self.source else ""
        return f"LatentEBMTarget(dim={self.dim}{where})"


@TARGETS.register("latent_ebm")
def latent_ebm(decoder: Optional[Decoder] = None, decoder_params: PyTree = None,
               critic: Optional[Critic] = None, critic_params: PyTree = None,
               latent_dim: Optional[int] = None, **options: Any) -> LatentEBMTarget:
    """``build_target("latent_ebm", decoder=..., decoder_params=..., critic=..., ...)``.

    The options are those of `LatentEBMTarget`. A GAN trained into a workdir
    gives them through ``gmjax.models.gan.latent_ebm_target(workdir)``.
    """
    hint = ("to sample the latent EBM of a GAN trained into a workdir, use "
            "gmjax.models.gan.latent_ebm_target(workdir)")
    if "workdir" in options:
        raise ValueError(f"target latent_ebm takes the networks, not a workdir; {hint}")
    given = dict(decoder=decoder, decoder_params=decoder_params, critic=critic,
                 critic_params=critic_params, latent_dim=latent_dim)
    missing = [name for name, value in given.items() if value is None]
    if missing:
        raise ValueError(f"target latent_ebm needs the options {', '.join(given)} (missing "
                         f"{', '.join(missing)}); {hint}")
    return LatentEBMTarget(decoder, decoder_params, critic, critic_params, latent_dim, **options)
