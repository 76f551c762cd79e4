"""Sampler objectives: fit a flow density q_theta to an unnormalized target.

The target is p_beta(x) = exp(-beta E(x)) / U_beta with U_beta = ∫ exp(-beta E)
unknown (Qiu and Wang, 2024, "Efficient Multimodal Sampling via Tempered
Distribution Flow", JASA 119, 1446-1460; equations referenced as QW below).
Writing log f(x) = -beta E(x) for the unnormalized tempered log-density:

* **Reverse KL** (the "KL sampler", QW Section 2.2; Rezende and Mohamed, 2015):

      KL(q_theta || p_beta) = E_{X~q}[log q(X) - log f(X)] + log U_beta,

  minimized with reparameterized draws X = T_theta(Z). Mode-seeking: once the
  flow has missed a well-separated mode, the gradient carries no signal
  about it (QW Theorem 1).

* **L2 distance** (the "L2 sampler", QW Section 3.2):

      ||q - p||^2 = ∫ (q - p)^2 = E_{X~q}[q(X) - 2 p(X)] + ∫ p^2.

  Two estimators are given. The *reparameterized* one averages
  q(X) - 2 f(X) / U over draws of the flow itself; it is exact in
  expectation but overflows as soon as densities leave the float range.
  The *reference* one is the numerically stable form used for training:
  with draws Y ~ r from a frozen reference flow (the previous stage's q),

      ||q - p||^2 = E_{Y~r}[(q(Y) - p(Y))^2 / r(Y)],

  evaluated entirely in log space, log |e^a - e^b| = max(a, b) +
  log(1 - e^{-|a - b|}), and the loss is the *log* of the estimate (same
  minimizer, scale-free gradients). The option ``upweight`` multiplies each
  term by max(1, p(Y)/q(Y))^2, which leans on points where the flow still
  underestimates the target. The authors' released code computes this
  up-weighted form, written through the ratio as 2 max(log p, log q) +
  2 log|p/q - 1| - log r (equal to 2 log|p - q| + 2 max(0, log p - log q) -
  log r); see docs/temperflow.md for when it matters.

* **The normalizing constant** U_beta = E_{Y~r}[f(Y) / r(Y)], estimated by
  importance sampling with a log-sum-exp (``log_normalizer``).

* **A defensive reference** (not in QW; Hesterberg, 1995, "Weighted average
  importance sampling and defensive mixture distributions", Technometrics 37,
  185-194). Every estimate above averages over Y ~ r, so mass the reference
  flow lacks is mass no estimate sees: U_beta comes out low and the L2 loss
  has no term there. Drawing the reference's latents from the mixture
  (1 - a) N(0, I) + a N(0, s^2 I) instead of N(0, I) pushes a share a of the
  draws further into the flow's own tails; the density of the mixture pushed
  through the flow is the flow's Jacobian term plus the mixture's latent
  log-density (``defensive_latent_draws``, ``defensive_latent_log_prob``), so no
  inverse pass is needed. At a = 0 it is the plain reference.

* **The angle** (not in QW; an ablation): -log cos(q, f) = 1/2 log ∫q^2 +
  1/2 log ∫f^2 - log ∫q f, from the same reference draws
  (``log_angle_reference``). Minimized at q = f / U_beta without knowing U_beta.

* **The forward KL from the reference** (not in QW; an ablation):
  KL(p || q) = -E_p[log q] + const, with E_p by self-normalized importance
  sampling from r (weights ∝ f / r, ``forward_kl_reference``). Its terms weigh
  a draw by p / r, where the L2 distance's weigh it by about p^2 / r: in d
  dimensions log p spreads over a range growing like sqrt(d), so the L2
  estimate rests on the few densest draws (``terms_ess``; docs/temperflow.md),
  the forward KL on many more. Like the angle, it needs no U_beta.

* **KL along the tempering curve** (QW Section 3.3): with E_beta the
  expectation under p_beta,

      kl(beta) = KL(p_beta || p_1) = (1 - beta) E_beta[E] + log U_1 - log U_beta,
      d kl / d beta = (beta - 1) Var_beta(E),

  both estimated by self-normalized importance sampling from r
  (``tempering_kl``); the adaptive schedule uses them to pick the next beta.

Every function takes arrays, not modules: ``log_q`` and ``log_r`` are flow
log-densities, ``log_f`` target log-densities at the same points. The loss
builders at the bottom wrap them in the ``loss(params, cond, key) -> (loss,
metrics)`` signature of the train-step builders.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp

PyTree = Any
Metrics = Dict[str, jax.Array]
SampleFn = Callable[[PyTree, jax.Array, int], Tuple[jax.Array, jax.Array]]
LogProbFn = Callable[[PyTree, jax.Array], jax.Array]


def log_abs_diff_exp(a: jax.Array, b: jax.Array, min_gap: float = 1e-6) -> jax.Array:
    """``log |e^a - e^b|`` without leaving log space.

    ``max(a, b) + log(1 - e^{-|a - b|})``; the gap is floored at ``min_gap`` so
    the value and its gradient stay finite where ``a == b`` (there the exact
    value is -inf and the term does not matter).
    """
    gap = jnp.maximum(jnp.abs(a - b), min_gap)
    return jnp.maximum(a, b) + jnp.log(-jnp.expm1(-gap))


def _log_mean_exp(w: jax.Array) -> jax.Array:  # [n] -> []
    return jax.scipy.special.logsumexp(w) - math.log(w.shape[0])


def log_normalizer(log_f: jax.Array, log_r: jax.Array) -> jax.Array:  # [n], [n] -> []
    """Importance-sampling estimate of ``log U = log ∫ f``, draws from r.

    ``log U ≈ log (1/n) sum_i f(Y_i) / r(Y_i)``, computed with a log-sum-exp.
    Consistent as n grows when r covers the support of f; biased low in log
    space by about Var(w) / (2 n E[w]^2) (Jensen), which is negligible for the
    sample sizes used here.
    """
    return _log_mean_exp(log_f - log_r)


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
    return _log_mean_exp(l2_reference_terms(log_q, log_f, log_r, log_u, upweight=upweight))


def terms_ess(log_terms: jax.Array) -> jax.Array:
    """``(sum_i t_i)^2 / sum_i t_i^2`` for terms ``t_i = exp(log_terms_i) >= 0``: how many of
    the n draws an average of the terms effectively rests on (n when all are equal)."""
    w = jax.nn.softmax(log_terms)
    return 1.0 / jnp.sum(jnp.square(w))


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
    log_qq = _log_mean_exp(2.0 * log_q - log_r)
    log_qf = _log_mean_exp(log_q + log_f - log_r)
    log_ff = _log_mean_exp(2.0 * log_f - log_r)
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
    log_u_beta = _log_mean_exp(log_w)
    log_u_one = _log_mean_exp(-energy - log_r)
    w = jax.nn.softmax(log_w)
    mean_e = jnp.sum(w * energy)
    var_e = jnp.sum(w * jnp.square(energy - mean_e))
    kl = (1.0 - beta) * mean_e + log_u_one - log_u_beta
    return TemperingKL(kl=kl, grad=(beta - 1.0) * var_e, log_u_beta=log_u_beta,
                       log_u_one=log_u_one, ess=terms_ess(log_w))


# Train-step losses: ``loss(params, cond, key) -> (loss, metrics)``. ``cond`` is
# the stage's conditioning, replicated on every device: ``beta`` and, for the
# L2 loss, the reference flow's parameters ``ref_params`` and ``log_u``.


def make_reverse_kl_loss(sample_and_log_prob: SampleFn, target_log_prob: Callable,
                         num_samples: int) -> Callable:
    """Reverse KL to ``exp(beta * target_log_prob)``, reparameterized (the KL sampler).

    Args:
      sample_and_log_prob: ``(params, key, n) -> (x [n, d], log q(x) [n])``,
        differentiable in ``params`` through x (reparameterization).
      target_log_prob: ``x [n, d] -> [n]``, the untempered log f (= -E).
      num_samples: draws per device per step.

    The loss is ``E_q[log q - beta log f]``; metric ``kl_plus_log_u`` is the
    same number, i.e. KL(q || p_beta) - log U_beta.
    """

    def loss(params: PyTree, cond: PyTree, key: jax.Array) -> Tuple[jax.Array, Metrics]:
        x, log_q = sample_and_log_prob(params, key, num_samples)
        value = reverse_kl(log_q, cond["beta"] * target_log_prob(x))
        return value, {"kl_plus_log_u": value}

    return loss


# The L2 stage's loss: QW's log ||q - f / U||^2; or, as ablations that need no U (not
# in QW), the angle -log cos(q, f) or the forward KL from the reference.
L2_FORMS = ("distance", "angle", "forward_kl")


def make_l2_loss(sample_and_log_prob: SampleFn, log_prob: LogProbFn,
                 target_log_prob: Callable, num_samples: int, *,
                 upweight: bool = False, kl_weight: float = 0.0,
                 form: str = "distance",
                 reference_sample: Optional[SampleFn] = None) -> Callable:
    """``log ||q - p_beta||^2`` with draws from the frozen reference flow (the L2 sampler).

    The reference draws and their log-density carry no gradient
    (``stop_gradient``): only ``log q(Y)`` depends on ``params``. ``cond``
    holds ``beta``, ``ref_params`` and ``log_u`` (log U_beta, estimated once per
    stage from many reference draws; see ``log_normalizer``).

    With ``kl_weight`` w > 0 the loss is ``log ||q - p||^2 + w E_q[log q - beta log f]``
    with the second term from ``num_samples`` reparameterized draws of q itself
    (the authors' ``"l2+kl"`` option at w = 1). The L2 estimate only sees q where
    the reference draws points; the reverse-KL term charges q for mass it puts
    where p_beta has none, which is how the L2 sampler fails in high dimension
    (docs/temperflow.md). Metrics ``log_l2`` and ``kl_plus_log_u`` report the two
    terms, and ``l2_terms_ess`` how many of the draws the L2 estimate effectively
    rests on (``terms_ess``): a few means its gradient comes from a few points.

    ``form="angle"`` replaces ``log ||q - p||^2`` by ``-log cos(q, f)``
    (``log_angle_reference``, metric ``log_angle``) and ``form="forward_kl"`` by
    ``-E_p[log q]`` (``forward_kl_reference``, metrics ``cross_entropy`` and
    ``is_ess``); neither uses ``log_u``; ``upweight`` applies to the distance only.

    ``reference_sample(ref_params, key, n) -> (y, log r(y))`` draws the reference
    points (default: ``sample_and_log_prob``, the reference flow itself; a
    defensive reference passes its own, see ``defensive_latent_log_prob``).
    """
    if form not in L2_FORMS:
        raise ValueError(f"unknown L2 form {form!r}; expected one of {L2_FORMS}")
    if form != "distance" and upweight:
        raise ValueError(f"upweight is the authors' variant of the L2 distance; it has no "
                         f"meaning for form={form!r}")

    kl_loss = make_reverse_kl_loss(sample_and_log_prob, target_log_prob, num_samples)
    reference_sample = reference_sample or sample_and_log_prob

    def loss(params: PyTree, cond: PyTree, key: jax.Array) -> Tuple[jax.Array, Metrics]:
        # The reference draws use ``key`` itself, as they did before the KL term existed.
        y, log_r = reference_sample(cond["ref_params"], key, num_samples)
        y, log_r = jax.lax.stop_gradient(y), jax.lax.stop_gradient(log_r)
        log_q = log_prob(params, y)
        log_f = cond["beta"] * target_log_prob(y)
        if form == "angle":
            value = log_angle_reference(log_q, log_f, log_r)
            metrics = {"log_angle": value}
        elif form == "forward_kl":
            value = forward_kl_reference(log_q, log_f, log_r)
            metrics = {"cross_entropy": value, "is_ess": terms_ess(log_f - log_r)}
        else:
            terms = l2_reference_terms(log_q, log_f, log_r, cond["log_u"], upweight=upweight)
            value = _log_mean_exp(terms)
            metrics = {"log_l2": value, "l2_terms_ess": terms_ess(jax.lax.stop_gradient(terms))}
        if kl_weight:
            kl, kl_metrics = kl_loss(params, cond, jax.random.fold_in(key, 1))
            metrics.update(kl_metrics)
            value = value + kl_weight * kl
        return value, metrics

    return loss
