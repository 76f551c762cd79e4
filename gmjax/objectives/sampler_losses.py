"""Sampler objectives: fit a flow density q_theta to an unnormalized target.

The target is p_beta(x) = f(x)^beta / U_beta, known up to U_beta (Qiu and
Wang, "Efficient Multimodal Sampling via Tempered Distribution Flow", JASA
119 (2024), 1446-1460; QW below). Writing log f for the tempered
unnormalized log-density beta * target.log_prob:

* **Reverse KL** (the "KL sampler", QW Section 2.2; Rezende and Mohamed, 2015;
  ``reverse_kl``):

      KL(q_theta || p_beta) = E_{X~q}[log q(X) - log f(X)] + log U_beta,

  with reparameterized draws X = T_theta(Z). Mode-seeking: once the flow has
  missed a well-separated mode, the gradient carries no signal about it
  (QW Theorem 1).

* **L2 distance** (the "L2 sampler", QW Section 3.2): ||q - p||^2 =
  E_{X~q}[q(X) - 2 p(X)] + ∫ p^2 (``l2_reparameterized``, exact in expectation
  but out of float range for sharp densities). Training uses the reference
  form: with draws Y ~ r of a frozen reference flow,

      ||q - p||^2 = E_{Y~r}[(q(Y) - p(Y))^2 / r(Y)],

  in log space throughout, log |e^a - e^b| = max(a, b) + log(1 - e^{-|a - b|})
  (``log_abs_diff_exp``), and the loss is the log of the estimate
  (``log_l2_reference``; same minimizer, scale-free gradients). U_beta comes
  from ``gmjax.objectives.tempering.log_normalizer``. ``upweight`` multiplies
  each term by max(1, p/q)^2, the form the authors' code computes.

* **The angle** (not in QW): -log cos(q, f) = 1/2 log ∫q^2 + 1/2 log ∫f^2 -
  log ∫q f from the same reference draws (``log_angle_reference``); minimized
  at q = f / U_beta without knowing U_beta.

* **Forward KL from the reference** (not in QW): KL(p || q) = -E_p[log q] +
  const, E_p by self-normalized importance sampling from r, weights ∝ f / r
  (``forward_kl_reference``). Its terms weigh a draw by p / r where the L2
  distance's weigh it by about p^2 / r, so in higher dimension its estimate
  rests on many more draws (``terms_ess``).

``STAGE_LOSSES`` names the stage objectives a tempered sampler trains with:
``reverse_kl``, ``l2_distance``, ``l2_angle`` and ``forward_kl``. Each entry
builds a train-step loss ``loss(params, cond, key) -> (loss, metrics)``, where
``cond`` is the stage's conditioning, replicated on every device: ``beta``,
the reference flow's parameters ``ref_params`` and ``log_u`` (log U_beta).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, NamedTuple, Tuple

import jax
import jax.numpy as jnp

from gmjax.objectives.tempering import log_mean_exp, terms_ess
from gmjax.registry import Registry
from gmjax.targets.base import Target, Tempered

PyTree = Any
Metrics = Dict[str, jax.Array]
SampleFn = Callable[[PyTree, jax.Array, int], Tuple[jax.Array, jax.Array]]
LogProbFn = Callable[[PyTree, jax.Array], jax.Array]
StageLoss = Callable[[PyTree, PyTree, jax.Array], Tuple[jax.Array, Metrics]]


def log_abs_diff_exp(a: jax.Array, b: jax.Array, min_gap: float = 1e-6) -> jax.Array:
    """``log |e^a - e^b|`` without leaving log space.

    ``max(a, b) + log(1 - e^{-|a - b|})``; the gap is floored at ``min_gap`` so
    the value and its gradient stay finite where ``a == b`` (there the exact
    value is -inf and the term does not matter).
    """
    gap = jnp.maximum(jnp.abs(a - b), min_gap)
    return jnp.maximum(a, b) + jnp.log(-jnp.expm1(-gap))


def reverse_kl(log_q: jax.Array, log_f: jax.Array) -> jax.Array:  # [n], [n] -> []
    """``E_q[log q - log f] = KL(q || p) - log U`` from draws of q itself."""
    return jnp.mean(log_q - log_f)


def l2_reparameterized(log_q: jax.Array, log_f: jax.Array, log_u: jax.Array) -> jax.Array:
    """``E_{X~q}[q(X) - 2 f(X) / U]``: ||q - p||^2 up to the constant ∫ p^2.

    ``log_q`` and ``log_f`` at reparameterized draws of q. The plain objective
    of QW eq. (5); it overflows or underflows where densities leave the float
    range, which is why training uses ``log_l2_reference``.
    """
    return jnp.mean(jnp.exp(log_q) - 2.0 * jnp.exp(log_f - log_u))


def l2_reference_terms(log_q: jax.Array, log_f: jax.Array, log_r: jax.Array,
                       log_u: jax.Array, *, upweight: bool = False) -> jax.Array:
    """The log terms ``log (q(Y_i) - p(Y_i))^2 / r(Y_i)`` of ``log_l2_reference``, ``[n]``."""
    log_p = log_f - log_u
    w = 2.0 * log_abs_diff_exp(log_q, log_p) - log_r
    if upweight:
        w = w + 2.0 * jax.nn.relu(log_p - log_q)
    return w


def log_l2_reference(log_q: jax.Array, log_f: jax.Array, log_r: jax.Array, log_u: jax.Array,
                     *, upweight: bool = False) -> jax.Array:
    """``log ||q - p||^2`` by importance sampling from a reference r.

    ``log (1/n) sum_i (q(Y_i) - p(Y_i))^2 / r(Y_i)`` with Y_i ~ r and
    p = f / U. With ``upweight`` each term is multiplied by
    ``max(1, p(Y_i) / q(Y_i))^2`` (the authors' variant, see module doc).
    """
    return log_mean_exp(l2_reference_terms(log_q, log_f, log_r, log_u, upweight=upweight))


def log_angle_reference(log_q: jax.Array, log_f: jax.Array, log_r: jax.Array) -> jax.Array:
    """``-log cos(q, f)``, the angle between q and f in L^2, by importance sampling from r.

        cos(q, f) = ∫ q f / sqrt(∫ q^2 ∫ f^2),

    each integral estimated from the same draws Y_i ~ r (weights 1 / r(Y_i)).
    Not in QW: a variant of the L2 loss that needs no U_beta. By Cauchy-Schwarz
    it is >= 0 (on the draws themselves too) and 0 exactly when q ∝ f, so its
    minimizer is p_beta = f / U_beta whatever U_beta is. Its gradient is the L2
    distance's with U_beta replaced by ∫ q f / ∫ q^2, a ratio of two estimates
    from the same draws: mass the reference misses biases neither the way it
    biases ``log_normalizer`` (low), which makes ||q - f / U||^2 favour q's
    highest modes.
    """
    log_qq = log_mean_exp(2.0 * log_q - log_r)
    log_qf = log_mean_exp(log_q + log_f - log_r)
    log_ff = log_mean_exp(2.0 * log_f - log_r)
    return 0.5 * (log_qq + log_ff) - log_qf


def forward_kl_reference(log_q: jax.Array, log_f: jax.Array, log_r: jax.Array) -> jax.Array:
    """``-E_p[log q]`` (KL(p || q) up to p's entropy) by self-normalized IS from r.

    ``-sum_i w_i log q(Y_i)`` with ``w_i ∝ f(Y_i) / r(Y_i)``, Y_i ~ r. The weights
    carry no gradient; the gradient, ``-sum_i w_i grad log q(Y_i)``, is the
    maximum-likelihood one on the reweighted draws, so it pulls q up wherever a
    draw lands on mass of p that q lacks. Not in QW: an ablation of the L2 stage.
    """
    w = jax.lax.stop_gradient(jax.nn.softmax(log_f - log_r))
    return -jnp.sum(w * log_q)


class FlowFunctions(NamedTuple):
    """A flow as functions of its parameters, as the stage losses use it.

    ``sample_and_log_prob(params, key, n) -> (x [n, d], log q(x) [n])``,
    differentiable through x (reparameterization); ``log_prob(params, x)``;
    ``reference_sample(ref_params, key, n) -> (y, log r(y))`` draws the
    reference points (the flow itself, or a defensive mixture pushed through
    it: ``gmjax.objectives.tempering.defensive_latent_log_prob``).
    """

    sample_and_log_prob: SampleFn
    log_prob: LogProbFn
    reference_sample: SampleFn


# Builders: (flow, target, num_samples, upweight) -> the loss of one stage.
STAGE_LOSSES: Registry[Callable[..., StageLoss]] = Registry("stage loss")


@STAGE_LOSSES.register("reverse_kl")
def _reverse_kl_loss(flow: FlowFunctions, target: Target, num_samples: int,
                     upweight: bool = False) -> StageLoss:
    """``E_q[log q - beta log f]`` = KL(q || p_beta) - log U_beta (metric ``kl_plus_log_u``)."""

    def loss(params, cond, key):
        x, log_q = flow.sample_and_log_prob(params, key, num_samples)
        value = reverse_kl(log_q, Tempered(target, cond["beta"]).log_prob(x))
        return value, {"kl_plus_log_u": value}

    return loss


def _reference_loss(objective: Callable) -> Callable[..., StageLoss]:
    """A loss on draws of the frozen reference: only ``log q(Y)`` depends on ``params``."""

    def build(flow: FlowFunctions, target: Target, num_samples: int,
              upweight: bool = False) -> StageLoss:
        def loss(params, cond, key):
            y, log_r = flow.reference_sample(cond["ref_params"], key, num_samples)
            y, log_r = jax.lax.stop_gradient(y), jax.lax.stop_gradient(log_r)
            log_q = flow.log_prob(params, y)
            log_f = Tempered(target, cond["beta"]).log_prob(y)
            return objective(log_q, log_f, log_r, cond["log_u"], upweight)

        return loss

    build.__doc__ = objective.__doc__
    return build


def _l2_distance(log_q, log_f, log_r, log_u, upweight):
    """``log ||q - f / U_beta||^2`` from reference draws (QW's L2 sampler).

    Metrics: ``log_l2`` and ``l2_terms_ess``, how many draws the estimate rests on."""
    terms = l2_reference_terms(log_q, log_f, log_r, log_u, upweight=upweight)
    value = log_mean_exp(terms)
    return value, {"log_l2": value, "l2_terms_ess": terms_ess(jax.lax.stop_gradient(terms))}


def _l2_angle(log_q, log_f, log_r, log_u, upweight):
    """``-log cos(q, f)`` from reference draws (needs no U_beta; metric ``log_angle``)."""
    value = log_angle_reference(log_q, log_f, log_r)
    return value, {"log_angle": value}


def _forward_kl(log_q, log_f, log_r, log_u, upweight):
    """``-E_p[log q]`` by self-normalized IS from the reference (needs no U_beta).

    Metrics: ``cross_entropy`` and ``is_ess``, the importance weights' effective sample size."""
    value = forward_kl_reference(log_q, log_f, log_r)
    return value, {"cross_entropy": value, "is_ess": terms_ess(log_f - log_r)}


STAGE_LOSSES.register("l2_distance")(_reference_loss(_l2_distance))
STAGE_LOSSES.register("l2_angle")(_reference_loss(_l2_angle))
STAGE_LOSSES.register("forward_kl")(_reference_loss(_forward_kl))


def make_stage_loss(name: str, flow: FlowFunctions, target: Target, num_samples: int,
                    *, upweight: bool = False, kl_weight: float = 0.0) -> StageLoss:
    """The stage loss ``name`` from ``STAGE_LOSSES`` for ``Tempered(target, cond["beta"])``,
    on ``num_samples`` draws per device.

    ``upweight`` (the authors' max(1, p/q)^2 terms) applies to ``l2_distance``
    only. With ``kl_weight`` w > 0 a reference loss L becomes
    ``L + w E_q[log q - beta log f]`` on draws of q itself (the authors'
    ``"l2+kl"`` at w = 1): the reference draws only show q where r puts mass,
    the reverse-KL term charges q for mass where p_beta has none.
    """
    build = STAGE_LOSSES.get(name)
    if upweight and name != "l2_distance":
        raise ValueError(f"upweight is the authors' variant of the L2 distance; it has no "
                         f"meaning for the {name!r} stage loss")
    loss = build(flow, target, num_samples, upweight)
    if not kl_weight or name == "reverse_kl":
        return loss
    kl_loss = _reverse_kl_loss(flow, target, num_samples)

    def with_kl(params, cond, key):
        value, metrics = loss(params, cond, key)  # reference draws from ``key`` itself
        kl, kl_metrics = kl_loss(params, cond, jax.random.fold_in(key, 1))
        return value + kl_weight * kl, {**metrics, **kl_metrics}

    return with_kl
