"""gmjax.targets: densities to sample from, with exact samplers for evaluation.

``build_target(name, **options)`` builds a registered target: ``circle``,
``grid`` and ``cross`` (two-dimensional Gaussian mixtures), ``clayton`` (the
Clayton-copula target with 256 modes) and ``latent_ebm`` (the latent energy
of a GAN's decoder and critic; ``gmjax.models.gan.latent_ebm_target`` builds
it from a trained run), the examples of Qiu and Wang (2024), "Efficient
multimodal sampling via tempered distribution flow"; ``learned_ebm``, an
energy network trained by contrastive divergence
(``gmjax.models.ebm.learned_ebm_target`` builds it from a trained run); and ``gaussian_mixture``,
any mixture of axis-aligned Gaussians from its ``means``, ``scales`` and
``weights``. A target of one's own is a ``Target`` subclass defining
``log_prob``, registered in ``TARGETS`` to be named in a config.
"""

from gmjax.targets.base import Modes, Target, Tempered
from gmjax.targets.registry import TARGETS, build_target
from gmjax.targets.mixtures import GaussianMixtureTarget
from gmjax.targets.clayton import ClaytonTarget
from gmjax.targets.latent_ebm import LatentEBMTarget
from gmjax.targets.learned_ebm import LearnedEBMTarget

__all__ = [
    "TARGETS",
    "ClaytonTarget",
    "GaussianMixtureTarget",
    "LatentEBMTarget",
    "LearnedEBMTarget",
    "Modes",
    "Target",
    "Tempered",
    "build_target",
]
