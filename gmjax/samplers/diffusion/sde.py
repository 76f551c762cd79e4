"""Reverse-time SDE and probability-flow ODE samplers, and the probability-flow likelihood.

Song et al. (2021, "Score-based generative modeling through stochastic
differential equations"): the forward SDE ``dx = f dt + g dw`` has the
reverse-time SDE (Anderson, 1982)

    dx = [f(x, t) - g(t)^2 s(x, t)] dt + g(t) dw_bar,   s = grad_x log p_t,

and the probability-flow ODE with the same marginals

    dx/dt = v(x, t) = f(x, t) - g(t)^2 s(x, t) / 2.

``score_fn(x [n, ...], t [n] float) -> [n, ...]`` is the (learned) score.
Sampling runs from t = 1 to ``t_min``; the ODE solve and its divergence come
from ``gmjax.flows.ode`` (the continuous flows' solver), so
``log p_{t_min}(x) = log p_1(x(1)) + int_{t_min}^1 tr(dv/dx) dt``.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp

from gmjax.flows.ode import ODEOptions, ODEResult, integrate
from gmjax.objectives.diffusion_process import SDE, as_rows

ScoreFn = Callable[[jax.Array, jax.Array], jax.Array]

DEFAULT_T_MIN = 1e-3


def _check_steps(num_steps: int, what: str = "num_steps") -> None:
    if not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"{what} must be an integer >= 1, got {num_steps!r}")


def _reverse_drift(sde: SDE, score_fn: ScoreFn, x: jax.Array, t: jax.Array) -> jax.Array:
    g = as_rows(sde.diffusion(t), x)
    return sde.drift(x, t) - g ** 2 * score_fn(x, t)


def euler_maruyama_sample(score_fn: ScoreFn, sde: SDE, key: jax.Array, shape: Sequence[int],
                          num_steps: int = 1000, t_min: float = DEFAULT_T_MIN) -> jax.Array:
    """Euler-Maruyama on the reverse-time SDE from ``x_1 ~ prior`` to ``t_min``:

        x <- x - [f - g^2 s] dt + g sqrt(dt) z,   dt = (1 - t_min) / N,

    the last step without noise (returns its mean, Song et al.'s "denoising" step).
    """
    _check_steps(num_steps)
    key, init_key = jax.random.split(key)
    x = sde.prior_sample(init_key, tuple(shape))
    n = x.shape[0]
    times = jnp.linspace(1.0, t_min, num_steps + 1)
    dt = (1.0 - t_min) / num_steps

    def step(x, inputs):
        i, step_key = inputs
        t = jnp.full((n,), times[i])
        mean = x - _reverse_drift(sde, score_fn, x, t) * dt
        g = as_rows(sde.diffusion(t), x)
        noise = g * jnp.sqrt(dt) * jax.random.normal(step_key, x.shape)
        return jnp.where(i < num_steps - 1, mean + noise, mean), None

    x, _ = jax.lax.scan(step, x, (jnp.arange(num_steps), jax.random.split(key, num_steps)))
    return x


def langevin_corrector(score_fn: ScoreFn, x: jax.Array, t: jax.Array, key: jax.Array,
                       snr: float, num_corrector_steps: int) -> jax.Array:
    """Langevin corrector steps at a fixed t (Song et al. 2021, Algorithm 4 with alpha = 1):
    ``x <- x + eps s + sqrt(2 eps) z``, ``eps = 2 (snr ||z|| / ||s||)^2`` with the norms
    averaged over the batch."""

    def step(x, step_key):
        score = score_fn(x, t)
        noise = jax.random.normal(step_key, x.shape)
        axes = tuple(range(1, x.ndim))
        # Batch-mean norms, as Song et al. do: a per-row ratio would take huge steps at
        # points where the score is nearly zero.
        score_norm = jnp.mean(jnp.sqrt(jnp.sum(score ** 2, axis=axes)))
        noise_norm = jnp.mean(jnp.sqrt(jnp.sum(noise ** 2, axis=axes)))
        eps = 2.0 * (snr * noise_norm / jnp.maximum(score_norm, 1e-12)) ** 2
        return x + eps * score + jnp.sqrt(2.0 * eps) * noise, None

    x, _ = jax.lax.scan(step, x, jax.random.split(key, num_corrector_steps))
    return x


def predictor_corrector_sample(score_fn: ScoreFn, sde: SDE, key: jax.Array,
                               shape: Sequence[int], num_steps: int = 1000,
                               snr: float = 0.16, num_corrector_steps: int = 1,
                               t_min: float = DEFAULT_T_MIN) -> jax.Array:
    """Predictor-corrector sampling (Song et al. 2021, Algorithm 1): at each time, a reverse
    Euler-Maruyama predictor step then ``num_corrector_steps`` Langevin corrector steps
    (``langevin_corrector``) at signal-to-noise ratio ``snr``."""
    _check_steps(num_steps)
    if not isinstance(num_corrector_steps, int) or num_corrector_steps < 0:
        raise ValueError(f"num_corrector_steps must be an integer >= 0, got "
                         f"{num_corrector_steps!r}")
    key, init_key = jax.random.split(key)
    x = sde.prior_sample(init_key, tuple(shape))
    n = x.shape[0]
    times = jnp.linspace(1.0, t_min, num_steps + 1)
    dt = (1.0 - t_min) / num_steps

    def step(x, inputs):
        i, step_key = inputs
        corrector_key, noise_key = jax.random.split(step_key)
        t = jnp.full((n,), times[i])
        if num_corrector_steps:
            x = langevin_corrector(score_fn, x, t, corrector_key, snr, num_corrector_steps)
        mean = x - _reverse_drift(sde, score_fn, x, t) * dt
        g = as_rows(sde.diffusion(t), x)
        noise = g * jnp.sqrt(dt) * jax.random.normal(noise_key, x.shape)
        return jnp.where(i < num_steps - 1, mean + noise, mean), None

    x, _ = jax.lax.scan(step, x, (jnp.arange(num_steps), jax.random.split(key, num_steps)))
    return x


def probability_flow_velocity(score_fn: ScoreFn, sde: SDE
                              ) -> Callable[[jax.Array, jax.Array, object], jax.Array]:
    """``v(x, t) = f(x, t) - g(t)^2 s(x, t) / 2`` in ``gmjax.flows.ode``'s velocity form."""

    def velocity(x, t, args):
        del args
        tt = jnp.full((x.shape[0],), t)
        g = as_rows(sde.diffusion(tt), x)
        return sde.drift(x, tt) - 0.5 * g ** 2 * score_fn(x, tt)

    return velocity


def probability_flow_sample(score_fn: ScoreFn, sde: SDE, key: jax.Array, shape: Sequence[int],
                            options: ODEOptions = ODEOptions(), t_min: float = DEFAULT_T_MIN
                            ) -> ODEResult:
    """Samples by solving the probability-flow ODE from ``x_1 ~ prior`` back to ``t_min``;
    returns the ``ODEResult`` (samples in ``.y``, ``.nfe``), without the divergence."""
    x1 = sde.prior_sample(key, tuple(shape))
    return integrate(probability_flow_velocity(score_fn, sde), x1, 1.0, t_min,
                     options=options, log_det=False)


def probability_flow_log_prob(score_fn: ScoreFn, sde: SDE, x: jax.Array,
                              options: ODEOptions = ODEOptions(),
                              key: Optional[jax.Array] = None, t_min: float = DEFAULT_T_MIN,
                              prior_log_prob: Optional[Callable[[jax.Array], jax.Array]] = None
                              ) -> tuple[jax.Array, ODEResult]:
    """``log p_{t_min}(x)`` in nats by the probability-flow ODE (Song et al. 2021, Sec. 4.3):

        log p_{t_min}(x) = log p_1(x(1)) + int_{t_min}^1 tr(dv/dx (x(t), t)) dt,

    exact up to the solver tolerance with ``options.trace="exact"``, unbiased with
    ``"hutchinson"`` (``key`` draws the probes).

    Args:
      x: ``[n, ...]`` data.
      prior_log_prob: ``log p_1``; the SDE's prior by default.

    Returns:
      ``(log_prob [n], ODEResult)``.
    """
    result = integrate(probability_flow_velocity(score_fn, sde), x, t_min, 1.0,
                       options=options, key=key)
    prior = sde.prior_log_prob if prior_log_prob is None else prior_log_prob
    return prior(result.y) + result.log_det, result


__all__ = ["DEFAULT_T_MIN", "ScoreFn", "euler_maruyama_sample", "langevin_corrector",
           "predictor_corrector_sample", "probability_flow_log_prob",
           "probability_flow_sample", "probability_flow_velocity"]
