"""The 2-D mode-coverage benchmarks of VEEGAN and PacGAN, with their mode centres.

  ``ring``  8 Gaussians at angles 2 pi k / 8 on the unit circle (radius 1),
            standard deviation 0.01 (Srivastava et al., 2017; Lin et al., 2018);
  ``grid``  25 Gaussians at {-4, -2, 0, 2, 4}^2, standard deviation 0.05
            (Lin et al., 2018, Table 1).

Both are equal-weight mixtures; ``gmjax.metrics.mode_metrics(samples,
mixture.centers, mixture.sd)`` scores 2,500 samples by the PacGAN protocol
(a mode is captured when a sample lies within 3 sd of it; high-quality
samples are those within 3 sd of their nearest mode).
"""

from __future__ import annotations

from typing import Dict, Tuple

import numpy as np

from gmjax.data.toy import GaussianMixture2D

_ANGLES = 2.0 * np.pi * np.arange(8) / 8.0
RING = GaussianMixture2D("ring", np.stack([np.cos(_ANGLES), np.sin(_ANGLES)], axis=-1), 0.01)
GRID = GaussianMixture2D(
    "grid", np.array([(i, j) for i in (-4.0, -2.0, 0.0, 2.0, 4.0)
                      for j in (-4.0, -2.0, 0.0, 2.0, 4.0)]), 0.05)

MODE_MIXTURES: Dict[str, GaussianMixture2D] = {"ring": RING, "grid": GRID}


def sample_mixture(name: str, n: int, seed: int) -> np.ndarray:  # -> [n, 2] float32
    """``n`` draws of the mixture ``name`` (``MODE_MIXTURES``) from ``numpy`` seed ``seed``."""
    if name not in MODE_MIXTURES:
        raise ValueError(f"unknown mode-coverage mixture {name!r}; valid choices: "
                         f"{', '.join(MODE_MIXTURES)}")
    rng = np.random.default_rng(seed)
    return MODE_MIXTURES[name].sample(rng, n)


def sample_mixture_modes(name: str, n: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """``(x [n, 2] float32, modes [n] int32)``: ``sample_mixture(name, n, seed)`` and the
    index of the component each draw came from (the label of a conditional GAN)."""
    if name not in MODE_MIXTURES:
        raise ValueError(f"unknown mode-coverage mixture {name!r}; valid choices: "
                         f"{', '.join(MODE_MIXTURES)}")
    mixture = MODE_MIXTURES[name]
    rng = np.random.default_rng(seed)
    modes = rng.integers(len(mixture.centers), size=n)  # the draws of GaussianMixture2D._sample
    x = mixture.centers[modes] + mixture.sd * rng.standard_normal((n, 2))
    return x.astype(np.float32), modes.astype(np.int32)
