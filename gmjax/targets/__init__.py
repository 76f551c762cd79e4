"""gmjax.targets: densities to sample from, with exact samplers for evaluation.

``build_target(name, **options)`` builds a registered target: ``circle``,
``grid`` and ``cross`` (two-dimensional Gaussian mixtures) and ``clayton``
(the Clayton-copula target with 256 modes), the synthetic examples of Qiu and
Wang (2024), "Efficient multimodal sampling via tempered distribution flow".
"""

from gmjax.targets.base import Modes, Target, Tempered
from gmjax.targets.registry import TARGETS, build_target
from gmjax.targets.mixtures import GaussianMixtureTarget
from gmjax.targets.clayton import ClaytonTarget

__all__ = [
    "TARGETS",
    "ClaytonTarget",
    "GaussianMixtureTarget",
    "Modes",
    "Target",
    "Tempered",
    "build_target",
]
