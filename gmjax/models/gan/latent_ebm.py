"""The latent energy-based model of a trained GAN as a sampling target.

``latent_ebm_target(workdir)`` reads a GAN run (``load_gan``) and hands its
generator and discriminator to ``gmjax.targets.latent_ebm.LatentEBMTarget``,
p(z) ∝ N(z; 0, I) exp(d(G(z))) (Che et al., NeurIPS 2020), the latent
sampling target of TemperFlow (Qiu and Wang, JASA 2024).
"""

from __future__ import annotations

import functools
from typing import Callable, Optional, Tuple

from gmjax.models.gan.loading import load_gan
from gmjax.models.gan.model import GAN, to_unit_range
from gmjax.targets.latent_ebm import LatentEBMTarget


@functools.lru_cache(maxsize=16)
def _network_functions(gan: GAN) -> Tuple[Callable, Callable]:
    """``(generator.apply, discriminator.apply)``, the same objects for equal GANs.

    ``LatentEBMTarget`` compiles once per function pair, so every checkpoint of
    one architecture shares a compilation (a GAN is a hashable frozen
    dataclass of hashable modules).
    """
    return gan.generator.apply, gan.discriminator.apply


def latent_ebm_from_gan(gan: GAN, gen_params, disc_params, source: str = "") -> LatentEBMTarget:
    """The latent EBM ``p(z) ∝ N(z; 0, I) exp(d(G(z)))`` of a GAN's networks and parameters."""
    if gan.conditional:
        raise ValueError(f"the latent EBM p(z) ∝ N(z; 0, I) exp(d(G(z))) needs an unconditional "
                         f"GAN; this one is conditional on {gan.num_classes} classes (train it "
                         f"with model.conditional=False)")
    generate, critic = _network_functions(gan)
    return LatentEBMTarget(generate, gen_params, critic, disc_params, gan.latent_dim,
                           gan.image_shape, to_images=to_unit_range, source=source)


def latent_ebm_target(workdir: str, step: Optional[int] = None) -> LatentEBMTarget:
    """The latent EBM of the GAN trained in ``workdir`` (checkpoint ``step``, default latest).

    Raises:
      GANWorkdirError: no config or checkpoint there; the message says what to run.
      ValueError: ``workdir`` is empty.
    """
    if not workdir:
        raise ValueError("latent_ebm_target needs the workdir of a trained GAN, e.g. "
                         "'runs/gan_fashion_z2'")
    run = load_gan(workdir, step)
    return latent_ebm_from_gan(run.gan, run.gen_params, run.disc_params,
                               source=f"{run.workdir} step {run.step}")
