"""The forward (noising) processes of diffusion models: discrete schedules and SDEs.

Both the losses (``objectives.diffusion``) and the samplers
(``samplers.diffusion``) are written against these definitions, which is why
they sit in the objectives layer, below the samplers.

**Discrete time** (Sohl-Dickstein et al., 2015; Ho, Jain and Abbeel, 2020,
"Denoising diffusion probabilistic models"). A schedule beta_1..beta_T defines

    q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I),
    q(x_t | x_0)     = N(sqrt(abar_t) x_0, (1 - abar_t) I),  abar_t = prod_{s<=t} (1 - beta_s),
    q(x_{t-1} | x_t, x_0) = N(mu~_t, beta~_t I),
        mu~_t   = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x_0
                  + sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t) x_t,
        beta~_t = (1 - abar_{t-1}) / (1 - abar_t) beta_t.

Arrays are indexed from 0: index ``k`` holds paper step ``t = k + 1``.
Schedules, by name in ``NOISE_SCHEDULES``: ``"linear"`` (Ho et al.: beta from
1e-4 to 0.02 at T = 1000, both ends scaled by 1000/T for other T, as in
Nichol and Dhariwal 2021) and ``"cosine"`` (Nichol and Dhariwal, 2021,
"Improved denoising diffusion probabilistic models": abar_t = f(t)/f(0),
f(t) = cos^2(pi/2 (t/T + s)/(1 + s)), s = 0.008, beta clipped at 0.999).

**Continuous time** (Song, Sohl-Dickstein, Kingma, Kumar, Ermon and Poole,
2021, "Score-based generative modeling through stochastic differential
equations"): ``dx = f(x, t) dt + g(t) dw`` on t in [0, 1], by name in ``SDES``:

* ``"vp"`` (variance preserving, the limit of DDPM): f = -beta(t) x / 2,
  g = sqrt(beta(t)), beta(t) = beta_min + t (beta_max - beta_min);
  x_t | x_0 ~ N(m(t) x_0, (1 - m(t)^2) I), m(t) = exp(-int_0^t beta / 2).
* ``"ve"`` (variance exploding, the limit of NCSN): f = 0,
  g = sigma(t) sqrt(2 log(sigma_max / sigma_min)), sigma(t) = sigma_min
  (sigma_max / sigma_min)^t; x_t | x_0 ~ N(x_0, (sigma(t)^2 - sigma_min^2) I),
  which the code takes as sigma(t)^2 (Song et al.'s convention; the
  difference is sigma_min^2).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, NamedTuple, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from gmjax.registry import Registry

NOISE_SCHEDULES: Registry[Callable[..., np.ndarray]] = Registry("noise schedule")


@NOISE_SCHEDULES.register("linear")
def linear_betas(num_steps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> np.ndarray:
    """Ho et al. (2020): betas linear in t, the ends scaled by 1000 / T."""
    scale = 1000.0 / num_steps
    return np.linspace(beta_start * scale, min(beta_end * scale, 0.999), num_steps)


@NOISE_SCHEDULES.register("cosine")
def cosine_betas(num_steps: int, s: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
    """Nichol and Dhariwal (2021): ``abar_t = f(t)/f(0)``, f the squared cosine."""
    t = np.arange(num_steps + 1, dtype=np.float64) / num_steps
    f = np.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    abar = f / f[0]
    return np.minimum(1.0 - abar[1:] / abar[:-1], max_beta)


class Schedule(NamedTuple):
    """A discrete noise schedule and the quantities derived from it, all ``[T]``.

    Attributes:
      betas: beta_t.
      alphas: alpha_t = 1 - beta_t.
      alpha_bars: abar_t.
      alpha_bars_prev: abar_{t-1} (abar_0 = 1).
      posterior_variance: beta~_t (zero at t = 1).
      posterior_mean_x0: the coefficient of x_0 in mu~_t.
      posterior_mean_xt: the coefficient of x_t in mu~_t.
    """

    betas: jax.Array
    alphas: jax.Array
    alpha_bars: jax.Array
    alpha_bars_prev: jax.Array
    posterior_variance: jax.Array
    posterior_mean_x0: jax.Array
    posterior_mean_xt: jax.Array

    @property
    def num_steps(self) -> int:
        return self.betas.shape[0]


def make_schedule(name: str, num_steps: int, **options) -> Schedule:
    """The schedule ``name`` (a key of ``NOISE_SCHEDULES``) with T = ``num_steps``.

    Derived quantities are computed in float64 with numpy and stored as float32.
    """
    if not isinstance(num_steps, (int, np.integer)) or num_steps < 1:
        raise ValueError(f"num_steps (T) must be an integer >= 1, got {num_steps!r}")
    betas = np.asarray(NOISE_SCHEDULES.get(name)(num_steps, **options), np.float64)
    if np.any(betas <= 0) or np.any(betas >= 1):
        raise ValueError(f"schedule {name!r} gave betas outside (0, 1): "
                         f"[{betas.min()}, {betas.max()}]")
    return schedule_from_betas(betas)


def schedule_from_betas(betas: np.ndarray) -> Schedule:
    """A ``Schedule`` from explicit betas ``[T]``, each in (0, 1)."""
    betas = np.asarray(betas, np.float64)
    alphas = 1.0 - betas
    abar = np.cumprod(alphas)
    abar_prev = np.concatenate([[1.0], abar[:-1]])
    post_var = betas * (1.0 - abar_prev) / (1.0 - abar)
    coef_x0 = betas * np.sqrt(abar_prev) / (1.0 - abar)
    coef_xt = (1.0 - abar_prev) * np.sqrt(alphas) / (1.0 - abar)
    f32 = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
    return Schedule(f32(betas), f32(alphas), f32(abar), f32(abar_prev), f32(post_var),
                    f32(coef_x0), f32(coef_xt))


def _per_row(values: jax.Array, t: jax.Array, x: jax.Array) -> jax.Array:
    """``values[t]`` shaped to broadcast against x ``[n, ...]``."""
    return values[t].reshape((-1,) + (1,) * (x.ndim - 1))


def q_sample(schedule: Schedule, x0: jax.Array, t: jax.Array, noise: jax.Array) -> jax.Array:
    """A draw of ``x_t ~ q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I)``.

    Args:
      x0: ``[n, ...]``; t: ``[n]`` integer indices (paper step t + 1); noise: like x0.
    """
    abar = _per_row(schedule.alpha_bars, t, x0)
    return jnp.sqrt(abar) * x0 + jnp.sqrt(1.0 - abar) * noise


def q_mean_variance(schedule: Schedule, x0: jax.Array, t: jax.Array
                    ) -> Tuple[jax.Array, jax.Array]:
    """Mean ``[n, ...]`` and variance ``[n, 1, ...]`` of ``q(x_t | x_0)``."""
    abar = _per_row(schedule.alpha_bars, t, x0)
    return jnp.sqrt(abar) * x0, 1.0 - abar


def q_posterior(schedule: Schedule, x0: jax.Array, xt: jax.Array, t: jax.Array
                ) -> Tuple[jax.Array, jax.Array]:
    """Mean mu~_t ``[n, ...]`` and variance beta~_t ``[n, 1, ...]`` of ``q(x_{t-1} | x_t, x_0)``."""
    mean = (_per_row(schedule.posterior_mean_x0, t, x0) * x0
            + _per_row(schedule.posterior_mean_xt, t, x0) * xt)
    return mean, _per_row(schedule.posterior_variance, t, x0)


def predict_x0(schedule: Schedule, xt: jax.Array, t: jax.Array, eps: jax.Array) -> jax.Array:
    """``x_0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)``, inverting ``q_sample``."""
    abar = _per_row(schedule.alpha_bars, t, xt)
    return (xt - jnp.sqrt(1.0 - abar) * eps) / jnp.sqrt(abar)


# --- continuous time ---------------------------------------------------------------------


SDES: Registry[Callable[..., "SDE"]] = Registry("SDE")


@dataclasses.dataclass(frozen=True)
class SDE:
    """``dx = f(x, t) dt + g(t) dw`` on t in [0, 1] with a Gaussian perturbation kernel.

    Subclasses give ``drift``, ``diffusion`` and ``marginal``; ``prior_sample`` and
    ``prior_log_prob`` describe the distribution reached at t = 1.
    """

    def drift(self, x: jax.Array, t: jax.Array) -> jax.Array:  # t: [n]
        raise NotImplementedError

    def diffusion(self, t: jax.Array) -> jax.Array:  # [n]
        raise NotImplementedError

    def marginal(self, t: jax.Array) -> Tuple[jax.Array, jax.Array]:
        """``(m(t), s(t))`` with ``x_t | x_0 ~ N(m(t) x_0, s(t)^2 I)``; both ``[n]``."""
        raise NotImplementedError

    def prior_std(self) -> float:
        raise NotImplementedError

    def prior_sample(self, key: jax.Array, shape) -> jax.Array:
        return self.prior_std() * jax.random.normal(key, shape)

    def prior_log_prob(self, x: jax.Array) -> jax.Array:
        """``log N(x; 0, prior_std^2 I)`` per row, ``[n]``."""
        s = self.prior_std()
        d = int(np.prod(x.shape[1:]))
        sq = jnp.sum(x.reshape(x.shape[0], -1) ** 2, axis=1)
        return -0.5 * sq / s ** 2 - 0.5 * d * math.log(2 * math.pi * s ** 2)


@SDES.register("vp")
@dataclasses.dataclass(frozen=True)
class VPSDE(SDE):
    """Variance-preserving SDE (Song et al. 2021, eq. 11); beta(t) linear."""

    beta_min: float = 0.1
    beta_max: float = 20.0

    def beta(self, t):
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def drift(self, x, t):
        return -0.5 * as_rows(self.beta(t), x) * x

    def diffusion(self, t):
        return jnp.sqrt(self.beta(t))

    def marginal(self, t):
        log_mean = -0.25 * t ** 2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min
        mean = jnp.exp(log_mean)
        return mean, jnp.sqrt(-jnp.expm1(2.0 * log_mean))

    def prior_std(self):
        return 1.0


@SDES.register("ve")
@dataclasses.dataclass(frozen=True)
class VESDE(SDE):
    """Variance-exploding SDE (Song et al. 2021, eq. 9); sigma(t) geometric."""

    sigma_min: float = 0.01
    sigma_max: float = 50.0

    def sigma(self, t):
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** t

    def drift(self, x, t):
        return jnp.zeros_like(x)

    def diffusion(self, t):
        return self.sigma(t) * math.sqrt(2.0 * math.log(self.sigma_max / self.sigma_min))

    def marginal(self, t):
        return jnp.ones_like(t), self.sigma(t)

    def prior_std(self):
        return self.sigma_max


def as_rows(values: jax.Array, x: jax.Array) -> jax.Array:
    """A per-row ``[n]`` (or scalar) value shaped to broadcast against x ``[n, ...]``."""
    values = jnp.asarray(values)
    if values.ndim == 0:
        return values
    return values.reshape((-1,) + (1,) * (x.ndim - 1))


def make_sde(name: str, **options) -> SDE:
    """The SDE ``name`` (a key of ``SDES``) with its options (``beta_min``, ``sigma_max``, ...)."""
    factory = SDES.get(name)
    valid = [f.name for f in dataclasses.fields(factory)]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"SDE {name!r} has no option(s) {', '.join(unknown)}; valid options: "
                         f"{', '.join(valid)}")
    return factory(**options)


__all__ = ["NOISE_SCHEDULES", "SDE", "SDES", "Schedule", "VESDE", "VPSDE", "as_rows",
           "cosine_betas", "linear_betas", "make_schedule", "make_sde", "predict_x0",
           "q_mean_variance", "q_posterior", "q_sample", "schedule_from_betas"]
