"""Importance-sampling estimates along the tempering curve (Qiu and Wang, 2024).

The tempered target is p_beta(x) = f(x)^beta / U_beta with f = exp(-E) and
U_beta = ∫ f^beta unknown (QW below: Qiu and Wang, "Efficient Multimodal
Sampling via Tempered Distribution Flow", JASA 119 (2024), 1446-1460). Every
estimate here averages over draws Y_i of a reference density r (a frozen
copy of the flow) with weights f(Y_i)^beta / r(Y_i):

* **The normalizing constant** (``log_normalizer``):
  U_beta = E_{Y~r}[f(Y)^beta / r(Y)], by a log-sum-exp.

* **KL along the tempering curve** (QW Section 3.3, ``tempering_kl``): with
  E_beta the expectation under p_beta,

      kl(beta) = KL(p_beta || p_1) = (1 - beta) E_beta[E] + log U_1 - log U_beta,
      d kl / d beta = (beta - 1) Var_beta(E),

  both by self-normalized importance sampling; the adaptive schedule
  (``gmjax.samplers.temperflow.schedule``) picks the next beta from them.

* **How many draws an estimate rests on** (``terms_ess``): the effective
  sample size (sum w)^2 / sum w^2 of non-negative terms.

* **A defensive reference** (not in QW; Hesterberg, 1995, "Weighted average
  importance sampling and defensive mixture distributions", Technometrics 37,
  185-194). Mass the reference lacks is mass no estimate sees. Drawing the
  reference's latents from (1 - a) N(0, I) + a N(0, s^2 I) instead of N(0, I)
  pushes a share a of the draws into the flow's own tails; their density is
  the flow's Jacobian term plus the mixture's latent log-density
  (``defensive_latent_draws``, ``defensive_latent_log_prob``). a = 0 is the
  plain reference.

Functions take arrays: ``log_r`` are reference log-densities, ``energy`` or
``log_f`` target values at the same draws.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Tuple

import jax
import jax.numpy as jnp


def log_mean_exp(w: jax.Array) -> jax.Array:  # [n] -> []
    """``log (1/n) sum_i exp(w_i)``, by a log-sum-exp."""
    return jax.scipy.special.logsumexp(w) - math.log(w.shape[0])


def log_normalizer(log_f: jax.Array, log_r: jax.Array) -> jax.Array:  # [n], [n] -> []
    """Importance-sampling estimate of ``log U = log ∫ f``, draws from r.

    ``log U ≈ log (1/n) sum_i f(Y_i) / r(Y_i)``, computed with a log-sum-exp.
    Consistent as n grows when r covers the support of f; biased low in log
    space by about Var(w) / (2 n E[w]^2) (Jensen), which is negligible for the
    sample sizes used here.
    """
    return log_mean_exp(log_f - log_r)


def terms_ess(log_terms: jax.Array) -> jax.Array:
    """``(sum_i t_i)^2 / sum_i t_i^2`` for terms ``t_i = exp(log_terms_i) >= 0``: how many of
    the n draws an average of the terms effectively rests on (n when all are equal)."""
    w = jax.nn.softmax(log_terms)
    return 1.0 / jnp.sum(jnp.square(w))


def defensive_latent_draws(key: jax.Array, n: int, event_shape: Tuple[int, ...], scale: float,
                           share: float) -> jax.Array:
    """``n`` latents from the mixture (1 - share) N(0, I) + share N(0, scale^2 I), ``[n, *event]``.

    Stratified: the last ``round(share * n)`` draws are the wide component's, so
    the estimates that average f / r over them are unbiased for any ``n``
    (a deterministic-mixture estimator; with share = 0, plain N(0, I) draws).
    """
    z = jax.random.normal(key, (n, *event_shape))
    wide = int(round(share * n))
    if not wide:
        return z
    return z.at[n - wide:].multiply(scale)


def defensive_latent_log_prob(z: jax.Array, scale: float, share: float,
                              event_ndims: int = 1) -> jax.Array:
    """``log[(1 - share) N(z; 0, I) + share N(z; 0, scale^2 I)]``, summed over the event axes."""
    axes = tuple(range(z.ndim - event_ndims, z.ndim))
    dim = math.prod(z.shape[z.ndim - event_ndims:])
    sq = jnp.sum(jnp.square(z), axis=axes)
    log_narrow = -0.5 * sq - 0.5 * dim * math.log(2.0 * math.pi)
    if not share:
        return log_narrow
    # log N(z; 0, s^2 I) - log N(z; 0, I) = |z|^2 (1 - 1/s^2) / 2 - d log s
    log_ratio = 0.5 * sq * (1.0 - scale ** -2) - dim * math.log(scale)
    return log_narrow + jnp.logaddexp(math.log1p(-share), math.log(share) + log_ratio)


class TemperingKL(NamedTuple):
    """``kl = KL(p_beta || p_1)`` and ``grad = d kl / d beta`` (QW Section 3.3)."""

    kl: jax.Array
    grad: jax.Array
    log_u_beta: jax.Array
    log_u_one: jax.Array
    ess: jax.Array  # effective sample size of the p_beta weights, in draws


def tempering_kl(energy: jax.Array, log_r: jax.Array, beta: jax.Array) -> TemperingKL:
    """Self-normalized IS estimates of kl(beta) and its derivative, draws from r.

    With w_i ∝ exp(-beta E(Y_i) - log r(Y_i)) normalized to sum to one,

        E_beta[E] ≈ sum_i w_i E_i,  Var_beta(E) ≈ sum_i w_i (E_i - E_beta[E])^2,
        kl = (1 - beta) E_beta[E] + log U_1 - log U_beta,
        grad = (beta - 1) Var_beta(E),

    with log U_beta and log U_1 from ``log_normalizer``.
    """
    log_w = -beta * energy - log_r
    log_u_beta = log_mean_exp(log_w)
    log_u_one = log_mean_exp(-energy - log_r)
    w = jax.nn.softmax(log_w)
    mean_e = jnp.sum(w * energy)
    var_e = jnp.sum(w * jnp.square(energy - mean_e))
    kl = (1.0 - beta) * mean_e + log_u_one - log_u_beta
    return TemperingKL(kl=kl, grad=(beta - 1.0) * var_e, log_u_beta=log_u_beta,
                       log_u_one=log_u_one, ess=terms_ess(log_w))
