"""Diffusion and score-matching objectives, each ``loss(params, batch, key) -> (scalar, metrics)``.

The networks enter as ``apply`` functions with the parameters first:

* ``eps_apply(params, x_t [n, ...], t [n] int) -> [n, ...]``: DDPM's noise predictor;
* ``score_apply(params, x [n, ...], c [n]) -> [n, ...]``: a score conditioned on a noise
  level sigma (NCSN) or a time t (score SDEs), or unconditioned (``c`` ignored).

Losses (the forward processes are in ``objectives.diffusion_process``):

* ``ddpm_loss``: L_simple (Ho et al. 2020, eq. 14).
* ``ddpm_vlb`` / ``ddpm_vlb_loss``: the full variational bound
  L_T + sum_{t>1} L_{t-1} + L_0 in nats and bits per dimension, with the discretized
  Gaussian decoder for images (Ho et al. 2020, eqs. 5 and 13).
* ``dsm_loss``: denoising score matching at one noise level (Vincent, 2011).
* ``ncsn_loss``: DSM over many noise levels weighted by sigma^2 (Song and Ermon, 2019).
* ``score_sde_loss``: continuous-time DSM for an ``SDE`` (Song et al. 2021, eq. 7).
* ``sliced_score_matching_loss``: sliced score matching (Song, Garg, Shi and Ermon, 2019).

DSM-type losses sum over the data dimensions and average over the batch;
L_simple averages over both, as Ho et al. do.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from gmjax.objectives.diffusion_process import SDE, Schedule, as_rows, q_posterior, q_sample

PyTree = Any
Metrics = Dict[str, jax.Array]
Loss = Callable[[PyTree, jax.Array, jax.Array], Tuple[jax.Array, Metrics]]

VLB_VARIANCES = ("beta", "beta_tilde")
DECODERS = ("discretized", "gaussian")
PROBES = ("gaussian", "rademacher")
SDE_WEIGHTINGS = ("sigma2", "likelihood")


def _sum_rows(x: jax.Array) -> jax.Array:
    """Sum over every axis but the first: ``[n, ...] -> [n]``."""
    return jnp.sum(x.reshape(x.shape[0], -1), axis=1)


def _check(name: str, value: str, valid) -> None:
    if value not in valid:
        raise ValueError(f"unknown {name} {value!r}; valid choices: {', '.join(valid)}")


# --- DDPM ---------------------------------------------------------------------------------


def ddpm_loss(eps_apply: Callable, schedule: Schedule) -> Loss:
    """L_simple of Ho et al. (2020, eq. 14), the epsilon-prediction loss

        L_simple = E_{t ~ U{1..T}, x_0, eps ~ N(0, I)} || eps - eps_theta(x_t, t) ||^2 / D,
        x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps,

    averaged over the D dimensions and the batch.
    """

    def loss(params: PyTree, x0: jax.Array, key: jax.Array):
        t_key, noise_key = jax.random.split(key)
        t = jax.random.randint(t_key, (x0.shape[0],), 0, schedule.num_steps)
        noise = jax.random.normal(noise_key, x0.shape)
        xt = q_sample(schedule, x0, t, noise)
        mse = jnp.mean((eps_apply(params, xt, t) - noise) ** 2)
        return mse, {"loss": mse}

    return loss


def gaussian_kl(mean1: jax.Array, var1: jax.Array, mean2: jax.Array, var2: jax.Array
                ) -> jax.Array:
    """Elementwise ``KL(N(mean1, var1) || N(mean2, var2))`` in nats."""
    return 0.5 * (jnp.log(var2) - jnp.log(var1) + (var1 + (mean1 - mean2) ** 2) / var2 - 1.0)


def _std_normal_cdf(x: jax.Array) -> jax.Array:
    return 0.5 * (1.0 + jax.lax.erf(x / math.sqrt(2.0)))


def discretized_gaussian_log_likelihood(x: jax.Array, mean: jax.Array, log_scale: jax.Array,
                                        num_levels: int = 256) -> jax.Array:
    """Elementwise ``log P(x)`` of the discretized Gaussian decoder (Ho et al. 2020, eq. 13).

    Data on the grid of ``num_levels`` values spread over [-1, 1] (bin width
    ``2 / (L - 1)``); each value owns the Gaussian mass of its bin, the end bins
    extending to -inf and +inf:

        P(x) = Phi((x + 1/(L-1) - mean) / scale) - Phi((x - 1/(L-1) - mean) / scale).
    """
    half_bin = 1.0 / (num_levels - 1)
    inv_scale = jnp.exp(-log_scale)
    upper = _std_normal_cdf((x - mean + half_bin) * inv_scale)
    lower = _std_normal_cdf((x - mean - half_bin) * inv_scale)
    mass = jnp.where(x > 1.0 - half_bin, 1.0 - lower,
                     jnp.where(x < -1.0 + half_bin, upper, upper - lower))
    return jnp.log(jnp.maximum(mass, 1e-12))


def _p_mean(schedule: Schedule, xt: jax.Array, t: jax.Array, eps: jax.Array) -> jax.Array:
    """mu_theta(x_t, t) = (x_t - beta_t / sqrt(1 - abar_t) eps_theta) / sqrt(alpha_t)."""
    beta = as_rows(schedule.betas[t], xt)
    abar = as_rows(schedule.alpha_bars[t], xt)
    alpha = as_rows(schedule.alphas[t], xt)
    return (xt - beta / jnp.sqrt(1.0 - abar) * eps) / jnp.sqrt(alpha)


def _p_variance(schedule: Schedule, variance: str) -> jax.Array:
    """sigma_t^2 of the reverse process ``[T]``; with beta~ the t = 1 value (zero) is replaced
    by beta~_2 (Nichol and Dhariwal's clipped log-variance) so the decoder is not a point."""
    if variance == "beta":
        return schedule.betas
    post = schedule.posterior_variance
    if post.shape[0] == 1:
        return schedule.betas
    return post.at[0].set(post[1])


def ddpm_vlb(eps_apply: Callable, schedule: Schedule, params: PyTree, x0: jax.Array,
             key: jax.Array, variance: str = "beta", decoder: str = "discretized",
             num_levels: int = 256) -> Metrics:
    """The terms of DDPM's variational bound on ``-log p_theta(x_0)`` per example, in nats
    (Ho et al. 2020, eq. 5; Sohl-Dickstein et al. 2015):

        L = L_T + sum_{t=2}^T L_{t-1} + L_0,
        L_T     = KL(q(x_T | x_0) || N(0, I)),
        L_{t-1} = E_q KL(q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t)),
        L_0     = -E_q log p_theta(x_0 | x_1),

    each L_{t-1} estimated with one draw of x_t. ``p_theta(x_{t-1} | x_t) =
    N(mu_theta, sigma_t^2 I)`` with ``sigma_t^2 = beta_t`` or ``beta~_t``
    (``variance``). The decoder is the discretized Gaussian for images scaled to [-1, 1]
    with ``num_levels`` levels (``decoder="discretized"``, giving a bound on the discrete
    data's NLL) or the Gaussian density (``"gaussian"``, continuous data).

    Costs T network evaluations; use for evaluation.

    Returns:
      ``{"prior": L_T [n], "terms": L_{t-1} [n, T-1] (t = 2..T), "decoder": L_0 [n],
      "nll": the bound [n], "bits_per_dim": [n]}``.
    """
    _check("VLB variance", variance, VLB_VARIANCES)
    _check("decoder", decoder, DECODERS)
    n = x0.shape[0]
    dim = int(np.prod(x0.shape[1:]))
    sigma2 = _p_variance(schedule, variance)
    last = schedule.num_steps - 1
    abar_T = schedule.alpha_bars[last]
    prior = _sum_rows(gaussian_kl(jnp.sqrt(abar_T) * x0, (1.0 - abar_T) * jnp.ones_like(x0),
                                  jnp.zeros_like(x0), jnp.ones_like(x0)))

    def term(k, step_key):
        t = jnp.full((n,), k)
        xt = q_sample(schedule, x0, t, jax.random.normal(step_key, x0.shape))
        eps = eps_apply(params, xt, t)
        mean_q, var_q = q_posterior(schedule, x0, xt, t)
        mean_p = _p_mean(schedule, xt, t, eps)
        return _sum_rows(gaussian_kl(mean_q, var_q * jnp.ones_like(x0), mean_p,
                                     sigma2[k] * jnp.ones_like(x0)))

    keys = jax.random.split(key, schedule.num_steps)
    if schedule.num_steps > 1:
        terms = jax.lax.map(lambda a: term(*a), (jnp.arange(1, schedule.num_steps), keys[1:]))
        terms = terms.T  # [n, T-1]
    else:
        terms = jnp.zeros((n, 0))
    t0 = jnp.zeros((n,), jnp.int32)
    x1 = q_sample(schedule, x0, t0, jax.random.normal(keys[0], x0.shape))
    mean = _p_mean(schedule, x1, t0, eps_apply(params, x1, t0))
    if decoder == "discretized":
        log_scale = 0.5 * jnp.log(sigma2[0]) * jnp.ones_like(x0)
        log_lik = discretized_gaussian_log_likelihood(x0, mean, log_scale, num_levels)
    else:
        log_lik = -0.5 * ((x0 - mean) ** 2 / sigma2[0] + jnp.log(2 * math.pi * sigma2[0]))
    dec = -_sum_rows(log_lik)
    nll = prior + jnp.sum(terms, axis=1) + dec
    return {"prior": prior, "terms": terms, "decoder": dec, "nll": nll,
            "bits_per_dim": nll / (dim * math.log(2.0))}


def ddpm_vlb_loss(eps_apply: Callable, schedule: Schedule, variance: str = "beta",
                  decoder: str = "discretized", num_levels: int = 256) -> Loss:
    """``ddpm_vlb`` averaged over the batch as a loss: ``(mean bound in nats, metrics)`` with
    ``nll``, ``bits_per_dim``, ``prior`` (L_T) and ``decoder`` (L_0) batch means."""
    _check("VLB variance", variance, VLB_VARIANCES)
    _check("decoder", decoder, DECODERS)

    def loss(params: PyTree, x0: jax.Array, key: jax.Array):
        terms = ddpm_vlb(eps_apply, schedule, params, x0, key, variance, decoder, num_levels)
        metrics = {name: jnp.mean(terms[name])
                   for name in ("nll", "bits_per_dim", "prior", "decoder")}
        return metrics["nll"], metrics

    return loss


# --- score matching -----------------------------------------------------------------------


def dsm_loss(score_apply: Callable, sigma: float) -> Loss:
    """Denoising score matching at one noise level (Vincent, 2011), weighted by sigma^2:

        L(theta) = (1/2) E_{x, eps} || sigma s_theta(x + sigma eps, sigma) + eps ||^2,

    whose minimiser is the score of the noised data p_sigma = p * N(0, sigma^2 I); the
    minimum is ``(sigma^2 / 2) (E||eps / sigma||^2 - E||grad log p_sigma||^2)`` (for
    Gaussian data N(mu, S): ``(D - sigma^2 tr((S + sigma^2 I)^-1)) / 2``).
    """
    if not sigma > 0:
        raise ValueError(f"dsm sigma must be > 0, got {sigma}")

    def loss(params: PyTree, x: jax.Array, key: jax.Array):
        noise = jax.random.normal(key, x.shape)
        sig = jnp.full((x.shape[0],), sigma, x.dtype)
        score = score_apply(params, x + sigma * noise, sig)
        value = 0.5 * jnp.mean(_sum_rows((sigma * score + noise) ** 2))
        return value, {"loss": value}

    return loss


def ncsn_loss(score_apply: Callable, sigmas) -> Loss:
    """DSM over noise levels sigma_1 > ... > sigma_L (Song and Ermon, 2019, eq. 6), each
    example at a uniformly drawn level, with the weighting lambda(sigma) = sigma^2:

        L = (1/2) E_{i, x, eps} || sigma_i s_theta(x + sigma_i eps, sigma_i) + eps ||^2.
    """
    sigmas = jnp.asarray(sigmas, jnp.float32)
    if sigmas.ndim != 1 or sigmas.shape[0] < 1:
        raise ValueError(f"sigmas must be a non-empty 1-D sequence, got shape {sigmas.shape}")

    def loss(params: PyTree, x: jax.Array, key: jax.Array):
        level_key, noise_key = jax.random.split(key)
        sig = sigmas[jax.random.randint(level_key, (x.shape[0],), 0, sigmas.shape[0])]
        noise = jax.random.normal(noise_key, x.shape)
        s = as_rows(sig, x)
        score = score_apply(params, x + s * noise, sig)
        value = 0.5 * jnp.mean(_sum_rows((s * score + noise) ** 2))
        return value, {"loss": value}

    return loss


def score_sde_loss(score_apply: Callable, sde: SDE, t_min: float = 1e-5,
                   weighting: str = "sigma2") -> Loss:
    """Continuous-time denoising score matching for an SDE (Song et al. 2021, eq. 7):

        L = (1/2) E_{t ~ U(t_min, 1), x_0, eps} lambda(t) || s_theta(x_t, t) + eps / s(t) ||^2,
        x_t = m(t) x_0 + s(t) eps,

    with lambda(t) = s(t)^2 (``"sigma2"``) or g(t)^2 (``"likelihood"``: Song, Durkan, Murray
    and Ermon, 2021, which makes L bound the negative log-likelihood up to a constant).
    """
    _check("score SDE weighting", weighting, SDE_WEIGHTINGS)

    def loss(params: PyTree, x0: jax.Array, key: jax.Array):
        t_key, noise_key = jax.random.split(key)
        t = jax.random.uniform(t_key, (x0.shape[0],), minval=t_min, maxval=1.0)
        noise = jax.random.normal(noise_key, x0.shape)
        mean, std = sde.marginal(t)
        std_rows = as_rows(std, x0)
        score = score_apply(params, as_rows(mean, x0) * x0 + std_rows * noise, t)
        if weighting == "sigma2":
            per_row = _sum_rows((std_rows * score + noise) ** 2)
        else:
            per_row = sde.diffusion(t) ** 2 * _sum_rows((score + noise / std_rows) ** 2)
        value = 0.5 * jnp.mean(per_row)
        return value, {"loss": value}

    return loss


def sliced_score_matching_loss(score_apply: Callable, num_projections: int = 1,
                               probe: str = "gaussian", variance_reduced: bool = True) -> Loss:
    """Sliced score matching (Song, Garg, Shi and Ermon, 2019, eq. 8):

        J(theta) = E_{x, v} [ v^T (ds_theta/dx) v + (1/2) (v^T s_theta(x))^2 ],

    equal to Hyvarinen's score-matching objective E[tr(ds/dx) + ||s||^2 / 2] in expectation
    over projections v with E[v v^T] = I; ``variance_reduced`` replaces (v^T s)^2 by its
    expectation ||s||^2 (SSM-VR). One Jacobian-vector product per projection. At the true
    score the objective equals ``-E||grad log p||^2 / 2`` (for N(mu, S): ``-tr(S^-1) / 2``).
    ``score_apply(params, x, c)`` is called with ``c`` zeros (an unconditioned score).
    """
    _check("probe", probe, PROBES)
    if not isinstance(num_projections, int) or num_projections < 1:
        raise ValueError(f"num_projections must be an integer >= 1, got {num_projections!r}")

    def loss(params: PyTree, x: jax.Array, key: jax.Array):
        n = x.shape[0]
        shape = (num_projections,) + x.shape
        v = (jax.random.normal(key, shape) if probe == "gaussian"
             else jax.random.rademacher(key, shape, dtype=x.dtype))
        c = jnp.zeros((n,), x.dtype)
        field = lambda y: score_apply(params, y, c)  # noqa: E731

        def one(direction):
            score, jvp = jax.jvp(field, (x,), (direction,))
            quad = _sum_rows(direction * jvp)
            if variance_reduced:
                second = 0.5 * _sum_rows(score ** 2)
            else:
                second = 0.5 * _sum_rows(direction * score) ** 2
            return quad + second

        value = jnp.mean(jax.vmap(one)(v))
        return value, {"loss": value}

    return loss


__all__ = ["DECODERS", "PROBES", "SDE_WEIGHTINGS", "VLB_VARIANCES", "ddpm_loss", "ddpm_vlb",
           "ddpm_vlb_loss", "discretized_gaussian_log_likelihood", "dsm_loss", "gaussian_kl",
           "ncsn_loss", "score_sde_loss", "sliced_score_matching_loss"]
