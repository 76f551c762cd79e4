"""Discrete-time reverse processes: DDPM ancestral sampling and DDIM.

Both take the noise predictor ``eps_fn(x_t [n, ...], t [n] int) -> [n, ...]``
(parameters closed over by the caller) and a ``Schedule``
(``gmjax.objectives.diffusion_process``), whose index k is paper step k + 1.
Each loop is one ``lax.scan``; jit the caller.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from gmjax.objectives.diffusion_process import Schedule, predict_x0

EpsFn = Callable[[jax.Array, jax.Array], jax.Array]

ANCESTRAL_VARIANCES = ("beta", "beta_tilde")


def ancestral_sample(eps_fn: EpsFn, schedule: Schedule, key: jax.Array, shape: Sequence[int],
                     variance: str = "beta", return_path: bool = False,
                     clip_x0: Optional[float] = None):
    """DDPM ancestral sampling (Ho et al. 2020, Algorithm 2).

    From ``x_T ~ N(0, I)``, for t = T, ..., 1:

        x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) eps(x_t, t)) / sqrt(alpha_t) + sigma_t z,

    z ~ N(0, I) (none at t = 1), with ``sigma_t^2 = beta_t`` (``variance="beta"``,
    optimal for x_0 ~ N(0, I)) or ``beta~_t`` (``"beta_tilde"``, optimal for x_0 a
    point); Ho et al. report similar results with both.

    The mean is the posterior mean mu~_t(x_t, x0_hat) at ``x0_hat = predict_x0(x_t,
    eps)``, the same value. With ``clip_x0 = c``, x0_hat is clipped to [-c, c] first (Ho et
    al.'s sampler for images in [-1, 1] clips to 1), which keeps an imperfect network's
    errors from compounding beyond the data's range.

    Args:
      shape: ``[n, ...]`` of the samples.
      return_path: also return every intermediate state (for figures of the reverse
        process; memory grows with T).
      clip_x0: None (no clipping) or the bound c > 0.

    Returns:
      x_0 ``[n, ...]``, or ``(x_0, path [T, n, ...])`` with ``path[i]`` the state after
      reverse step i + 1 (``path[-1] = x_0``).
    """
    if variance not in ANCESTRAL_VARIANCES:
        raise ValueError(f"unknown ancestral variance {variance!r}; valid choices: "
                         f"{', '.join(ANCESTRAL_VARIANCES)}")
    _check_clip(clip_x0)
    sigma2 = schedule.betas if variance == "beta" else schedule.posterior_variance
    key, init_key = jax.random.split(key)
    x = jax.random.normal(init_key, tuple(shape))
    n = x.shape[0]

    def step(x, inputs):
        k, step_key = inputs
        t = jnp.full((n,), k)
        eps = eps_fn(x, t)
        if clip_x0 is None:
            mean = (x - schedule.betas[k] / jnp.sqrt(1.0 - schedule.alpha_bars[k]) * eps) \
                / jnp.sqrt(schedule.alphas[k])
        else:
            x0 = jnp.clip(predict_x0(schedule, x, t, eps), -clip_x0, clip_x0)
            mean = schedule.posterior_mean_x0[k] * x0 + schedule.posterior_mean_xt[k] * x
        noise = jax.random.normal(step_key, x.shape)
        x = mean + jnp.where(k > 0, jnp.sqrt(sigma2[k]), 0.0) * noise
        return x, (x if return_path else None)

    steps = jnp.arange(schedule.num_steps - 1, -1, -1)
    x, path = jax.lax.scan(step, x, (steps, jax.random.split(key, schedule.num_steps)))
    return (x, path) if return_path else x


def _check_clip(clip_x0: Optional[float]) -> None:
    if clip_x0 is not None and not clip_x0 > 0:
        raise ValueError(f"clip_x0 must be None or a bound > 0, got {clip_x0!r}")


def ddim_timesteps(num_train_steps: int, num_steps: int) -> np.ndarray:
    """The increasing indices tau_1 < ... < tau_S of a DDIM sampler with S = ``num_steps``
    steps, spread evenly over 0..T-1 and always ending at T-1 (any S from 1 to T)."""
    if not isinstance(num_steps, (int, np.integer)) or not 1 <= num_steps <= num_train_steps:
        raise ValueError(f"DDIM num_steps must be an integer in [1, {num_train_steps}] (the "
                         f"training steps), got {num_steps!r}")
    taus = np.round(np.linspace(0, num_train_steps - 1, num_steps)).astype(np.int32)
    if num_steps == 1:
        taus = np.array([num_train_steps - 1], np.int32)
    return taus


def ddim_sample(eps_fn: EpsFn, schedule: Schedule, key: jax.Array, shape: Sequence[int],
                num_steps: int, eta: float = 0.0, return_path: bool = False,
                clip_x0: Optional[float] = None):
    """DDIM sampling (Song, Meng and Ermon, 2021, "Denoising diffusion implicit models", eq. 12).

    On the sub-sequence tau (``ddim_timesteps``), with x0_hat = ``predict_x0``:

        x_{prev} = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev - sigma^2) eps + sigma z,
        sigma    = eta sqrt((1 - abar_prev) / (1 - abar_t)) sqrt(1 - abar_t / abar_prev).

    ``eta = 0`` is the deterministic DDIM; ``eta = 1`` with every step is DDPM ancestral
    sampling with ``sigma_t^2 = beta~_t``. ``return_path`` also returns the S intermediate
    states ``[S, n, ...]``, as ``ancestral_sample`` does. ``clip_x0 = c`` clips x0_hat to
    [-c, c] (the direction keeps the predicted eps), as ``ancestral_sample`` does.
    """
    if not eta >= 0:
        raise ValueError(f"DDIM eta must be >= 0, got {eta}")
    _check_clip(clip_x0)
    taus = ddim_timesteps(schedule.num_steps, num_steps)
    prev = np.concatenate([[-1], taus[:-1]])
    key, init_key = jax.random.split(key)
    x = jax.random.normal(init_key, tuple(shape))
    n = x.shape[0]

    def step(x, inputs):
        k, k_prev, step_key = inputs
        t = jnp.full((n,), k)
        eps = eps_fn(x, t)
        abar = schedule.alpha_bars[k]
        abar_prev = jnp.where(k_prev >= 0, schedule.alpha_bars[jnp.maximum(k_prev, 0)], 1.0)
        x0 = predict_x0(schedule, x, t, eps)
        if clip_x0 is not None:
            x0 = jnp.clip(x0, -clip_x0, clip_x0)
        sigma = eta * jnp.sqrt((1.0 - abar_prev) / (1.0 - abar) * (1.0 - abar / abar_prev))
        direction = jnp.sqrt(jnp.maximum(1.0 - abar_prev - sigma ** 2, 0.0)) * eps
        x = jnp.sqrt(abar_prev) * x0 + direction + sigma * jax.random.normal(step_key, x.shape)
        return x, (x if return_path else None)

    inputs = (jnp.asarray(taus[::-1]), jnp.asarray(prev[::-1]),
              jax.random.split(key, len(taus)))
    x, path = jax.lax.scan(step, x, inputs)
    return (x, path) if return_path else x


__all__ = ["ANCESTRAL_VARIANCES", "EpsFn", "ancestral_sample", "ddim_sample", "ddim_timesteps"]
