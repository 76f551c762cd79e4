"""Inverse-temperature ladders of parallel tempering: 0 < beta_0 < ... < beta_{K-1} = 1."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gmjax.samplers.mcmc.options import positive_int

DEFAULT_BETA_MIN = 0.05
DEFAULT_NUM_BETAS = 10


def geometric_ladder(beta_min: float = DEFAULT_BETA_MIN, num: int = DEFAULT_NUM_BETAS) -> jax.Array:
    """Geometrically spaced inverse temperatures from ``beta_min`` to 1.

        beta_k = beta_min^{(num - 1 - k) / (num - 1)},   k = 0, ..., num - 1,

    so beta_0 = beta_min, beta_{num-1} = 1 and beta_{k+1} / beta_k is constant,
    the usual default ladder (Earl and Deem, 2005, sec. 4.1).

    Returns:
        [num] increasing betas ending at exactly 1.
    """
    num = positive_int(num, "num", minimum=2)
    if not 0.0 < beta_min < 1.0:
        raise ValueError(f"beta_min must lie in (0, 1), got {beta_min}")
    exponents = np.arange(num - 1, -1, -1, dtype=np.float64) / (num - 1)
    betas = np.power(beta_min, exponents)
    betas[-1] = 1.0
    return jnp.asarray(betas, dtype=jnp.result_type(float))


def check_ladder(betas: Any) -> np.ndarray:
    """``betas`` as float64 [K] if it is a ladder: K >= 2, 0 < b_0 < ... < b_{K-1} = 1.

    A last level within 1e-6 of 1 is set to exactly 1 (the target itself).
    """
    betas = np.asarray(betas, dtype=np.float64)
    if betas.ndim != 1 or betas.shape[0] < 2:
        raise ValueError(
            f"betas must be a 1-D ladder of at least 2 levels, got shape {betas.shape}"
        )
    if not np.all(np.isfinite(betas)) or betas[0] <= 0:
        raise ValueError(f"betas must be finite and positive, got {betas}")
    if not np.all(np.diff(betas) > 0):
        raise ValueError(f"betas must be strictly increasing, got {betas}")
    if not np.isclose(betas[-1], 1.0, rtol=0.0, atol=1e-6):
        raise ValueError(f"the last beta must be 1 (the target itself), got {betas[-1]}")
    betas = betas.copy()
    betas[-1] = 1.0
    return betas
