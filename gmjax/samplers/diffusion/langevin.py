"""Annealed Langevin dynamics (Song and Ermon, 2019, "Generative modeling by estimating
gradients of the data distribution", Algorithm 1).

For noise levels sigma_1 > ... > sigma_L and a noise-conditional score
``score_fn(x [n, ...], sigma [n]) -> [n, ...]``, run T Langevin steps at each level

    x <- x + (alpha_i / 2) s(x, sigma_i) + sqrt(alpha_i) z,   alpha_i = eps sigma_i^2 / sigma_L^2,

starting from uniform noise (or any ``x_init``).
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

NoiseScoreFn = Callable[[jax.Array, jax.Array], jax.Array]


def geometric_sigmas(sigma_max: float, sigma_min: float, num_levels: int) -> np.ndarray:
    """``num_levels`` noise levels from sigma_max down to sigma_min, geometric (NCSN)."""
    if not isinstance(num_levels, (int, np.integer)) or num_levels < 1:
        raise ValueError(f"num_levels must be an integer >= 1, got {num_levels!r}")
    if not 0 < sigma_min <= sigma_max:
        raise ValueError(f"need 0 < sigma_min <= sigma_max, got {sigma_min}, {sigma_max}")
    return np.geomspace(sigma_max, sigma_min, num_levels).astype(np.float32)


def langevin_step(score: jax.Array, x: jax.Array, step_size: jax.Array, key: jax.Array
                  ) -> jax.Array:
    """One unadjusted Langevin step ``x + (a/2) s + sqrt(a) z`` given the score at x."""
    return x + 0.5 * step_size * score + jnp.sqrt(step_size) * jax.random.normal(key, x.shape)


def annealed_langevin_sample(score_fn: NoiseScoreFn, sigmas: Sequence[float], key: jax.Array,
                             shape: Sequence[int], steps_per_level: int = 100,
                             step_size: float = 2e-5, x_init: Optional[jax.Array] = None,
                             denoise: bool = True) -> jax.Array:
    """Annealed Langevin dynamics over ``sigmas`` (decreasing), ``steps_per_level`` steps each.

    Args:
      step_size: eps of Algorithm 1 (the step at the smallest level).
      x_init: the starting points; uniform on [0, 1) by default, as in Song and Ermon.
      denoise: finish with one Tweedie step ``x + sigma_L^2 s(x, sigma_L)`` (Jolicoeur-
        Martineau et al., 2021), which removes the last level's noise.
    """
    if not isinstance(steps_per_level, int) or steps_per_level < 1:
        raise ValueError(f"steps_per_level must be an integer >= 1, got {steps_per_level!r}")
    sigmas = jnp.asarray(sigmas, jnp.float32)
    key, init_key = jax.random.split(key)
    x = jax.random.uniform(init_key, tuple(shape)) if x_init is None else x_init
    n = x.shape[0]
    sigma_last = sigmas[-1]

    def level(x, inputs):
        sigma, level_key = inputs
        alpha = step_size * (sigma / sigma_last) ** 2
        sig = jnp.full((n,), sigma)

        def step(x, step_key):
            return langevin_step(score_fn(x, sig), x, alpha, step_key), None

        x, _ = jax.lax.scan(step, x, jax.random.split(level_key, steps_per_level))
        return x, None

    x, _ = jax.lax.scan(level, x, (sigmas, jax.random.split(key, sigmas.shape[0])))
    if denoise:
        x = x + sigma_last ** 2 * score_fn(x, jnp.full((n,), sigma_last))
    return x


__all__ = ["NoiseScoreFn", "annealed_langevin_sample", "geometric_sigmas", "langevin_step"]
