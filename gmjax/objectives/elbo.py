"""Variational bounds on log p(x), their gradient estimators, and the autoencoder losses.

A latent-variable model p_theta(x, z) = p_theta(z) p_theta(x | z) is fitted
through an approximate posterior q_phi(z | x) (Kingma & Welling, 2014,
"Auto-encoding variational Bayes"; Rezende, Mohamed & Wierstra, 2014). With
k samples z_i ~ q_phi(z | x) and the (beta-weighted) log weights

    f_i = log p(x | z_i) + beta [log p(z_i) - log q(z_i | x)],

the bounds here are

* the ELBO (``ELBO``): ``L = (1/k) sum_i f_i``, whose expectation is
  ``E_q[log p(x | z)] - beta KL(q(z | x) || p(z)) <= log p(x)`` for beta = 1.
  With ``analytic_kl`` the KL term is the closed form for a diagonal
  Gaussian q and a standard normal prior (``kl_standard_normal``), and
  ``f_i = log p(x | z_i) - beta KL``. beta != 1 is the beta-VAE objective
  (Higgins et al., 2017, "beta-VAE: Learning basic visual concepts with a
  constrained variational framework"), a bound only for beta >= 1;
* the IWAE bound (``IWAE``): ``L_k = log (1/k) sum_i exp(f_i)`` with beta = 1
  (Burda, Grosse & Salakhutdinov, 2016, "Importance weighted autoencoders"),
  ``E[L_1] = ELBO <= E[L_k] <= E[L_{k+1}] -> log p(x)`` as k grows.

Gradient estimators (``GRADIENT_ESTIMATORS``, picked by name) return a
*surrogate* whose value is the bound's estimate and whose gradient is the
estimator's gradient:

* ``"total"``: the reparameterization trick, z = mu + sigma eps, and the total
  derivative of the estimate (Kingma & Welling, 2014);
* ``"stl"``: the path derivative, "sticking the landing" (Roeder, Wu &
  Duvenaud, 2017): log q(z | x) is evaluated with the variational
  parameters under stop-gradient, so z carries the only dependence on phi;
  this drops the score term ``-E_q[d log q_phi(z)/d phi] = 0`` and gives zero
  variance when q is the exact posterior. Unbiased for the ELBO; for IWAE
  with k > 1 it is biased (Tucker et al., 2019, Sec. 3);
* ``"score"``: the score function / REINFORCE estimator (Williams, 1992,
  "Simple statistical gradient-following algorithms for connectionist
  reinforcement learning"), no reparameterization: for an estimate
  F(phi, z_{1:k}) with z_i ~ q_phi,

      grad_phi E[F] = E[grad_phi F |_z] + E[sum_i c_i (A_i - b(x)) grad_phi log q_phi(z_i | x)],

  with A_i = f_i, c_i = 1/k for the ELBO (each sample's own signal) and
  A_i = L_k, c_i = 1 for IWAE, and a baseline b(x)
  (``BASELINES``: none, a running mean, or a learned input-dependent network
  as in NVIL, Mnih & Gregor, 2014) that leaves the estimate unbiased;
* ``"dreg"``: doubly reparameterized gradients (Tucker, Lawson, Gu &
  Maddison, 2019, "Doubly reparameterized gradient estimators for Monte
  Carlo objectives"): for IWAE, with normalized weights w~_i = softmax(f)_i,

      grad_phi L_k = sum_i w~_i^2  d f_i / d z_i  d z_i / d phi       (log q at stopped phi),
      grad_theta L_k = sum_i w~_i  d f_i / d theta,

  unbiased and with a signal-to-noise ratio that grows with k; for the
  ELBO its weights are 1/k and it is the path derivative.

Losses (``elbo_loss``, ``iwae_loss``, ``variational_loss``,
``autoencoder_loss``) follow the repository's convention
``loss(params, x, key) -> (scalar, metrics)`` for ``make_train_step``; the
scalar is the negative bound (its value equals -metrics of the bound) and
the metrics are ``elbo``, ``iwae_k`` (IWAE only), ``kl`` and
``reconstruction`` (``E_q log p(x | z)``), batch means in nats.

The model is anything with the methods of ``LatentVariableModel``; its
posterior's ``stop_gradient()`` stops every variational parameter phi (the
path-derivative estimators evaluate log q through it), and its ``params``
are a dict whose ``"baseline"`` entry, if any, holds the score-function
baseline.
"""

from __future__ import annotations

import dataclasses
import math
from typing import (Any, Callable, Dict, NamedTuple, Optional, Protocol, Sequence, Tuple,
                    Union)

import jax
import jax.numpy as jnp
import optax

from gmjax.nets.mlp import MLP
from gmjax.registry import Registry

PyTree = Any
Metrics = Dict[str, jax.Array]
LossFn = Callable[[PyTree, jax.Array, jax.Array], Tuple[jax.Array, Metrics]]
Preprocess = Callable[[jax.Array, jax.Array], jax.Array]  # (key, x) -> x

LOG_2PI = math.log(2.0 * math.pi)
BASELINE_KEY = "baseline"  # params[BASELINE_KEY]: the score-function baseline's parameters
KL_CHOICES = ("analytic", "mc")

sg = jax.lax.stop_gradient


# --- densities ---------------------------------------------------------------------------


def _sum_event(values: jax.Array, event_ndims: int) -> jax.Array:
    return jnp.sum(values, axis=tuple(range(values.ndim - event_ndims, values.ndim)))


def gaussian_log_prob(x: jax.Array, mean: jax.Array, log_scale: jax.Array,
                      event_ndims: int = 1) -> jax.Array:
    """``log N(x; m, diag(s^2)) = sum_j [-(x_j - m_j)^2 / (2 s_j^2) - log s_j - log(2 pi) / 2]``,
    summed over the last ``event_ndims`` axes (arguments broadcast)."""
    eps = (x - mean) * jnp.exp(-log_scale)
    return _sum_event(jnp.broadcast_to(-0.5 * eps * eps - log_scale - 0.5 * LOG_2PI,
                                       eps.shape), event_ndims)


def bernoulli_log_prob(x: jax.Array, logits: jax.Array, event_ndims: int = 1) -> jax.Array:
    """``log Bernoulli(x; sigmoid(l)) = sum_j [x_j l_j - log(1 + exp(l_j))]``, the negative
    binary cross-entropy, summed over the last ``event_ndims`` axes; x in {0, 1}
    (values in [0, 1] give the cross-entropy, not a normalized density)."""
    return _sum_event(x * logits - jax.nn.softplus(logits), event_ndims)


def kl_standard_normal(mean: jax.Array, log_scale: jax.Array) -> jax.Array:
    """The KL divergence of a diagonal Gaussian from the standard normal, over the last axis,

        KL(N(mu, diag(sigma^2)) || N(0, I)) = (1/2) sum_j [mu_j^2 + sigma_j^2 - 1 - 2 log sigma_j]

    (Kingma & Welling, 2014, Appendix B): ``[..., d] -> [...]``."""
    return 0.5 * jnp.sum(mean * mean + jnp.exp(2.0 * log_scale) - 1.0 - 2.0 * log_scale,
                         axis=-1)


class DiagonalGaussian(NamedTuple):
    """``q(z | x) = N(z; mu, diag(sigma^2))`` for a batch: ``mean``, ``log_scale`` ``[n, d]``.

    Samples are reparameterized, ``z = mu + sigma eps`` with eps ~ N(0, I), so
    gradients reach mu and sigma through z.
    """

    mean: jax.Array
    log_scale: jax.Array

    def sample_and_log_prob(self, key: jax.Array, num_samples: int
                            ) -> Tuple[jax.Array, jax.Array]:  # -> [k, n, d], [k, n]
        eps = jax.random.normal(key, (num_samples,) + self.mean.shape, self.mean.dtype)
        z = self.mean + jnp.exp(self.log_scale) * eps
        log_q = jnp.sum(-0.5 * eps * eps - self.log_scale - 0.5 * LOG_2PI, axis=-1)
        return z, log_q

    def sample(self, key: jax.Array, num_samples: int) -> jax.Array:  # -> [k, n, d]
        return self.sample_and_log_prob(key, num_samples)[0]

    def log_prob(self, z: jax.Array) -> jax.Array:  # [k, n, d] -> [k, n]
        return gaussian_log_prob(z, self.mean, self.log_scale)

    def stop_gradient(self) -> "DiagonalGaussian":
        """The same density with its parameters under ``stop_gradient``."""
        return DiagonalGaussian(sg(self.mean), sg(self.log_scale))

    def kl_to_standard_normal(self) -> jax.Array:  # -> [n]
        return kl_standard_normal(self.mean, self.log_scale)


class Posterior(Protocol):
    """An approximate posterior for a batch of n examples (``DiagonalGaussian``, IAF ones)."""

    def sample_and_log_prob(self, key: jax.Array, num_samples: int
                            ) -> Tuple[jax.Array, jax.Array]: ...  # [k, n, d], [k, n]

    def sample(self, key: jax.Array, num_samples: int) -> jax.Array: ...  # [k, n, d]

    def log_prob(self, z: jax.Array) -> jax.Array: ...  # [k, n, d] -> [k, n]

    def stop_gradient(self) -> "Posterior": ...


class LatentVariableModel(Protocol):
    """What the bounds need of a model; ``gmjax.models.vae.VAE`` is one.

    ``analytic_kl`` says whether ``kl_divergence`` has a closed form (diagonal
    Gaussian posterior, standard normal prior).
    """

    analytic_kl: bool

    def posterior(self, params: PyTree, x: jax.Array) -> Posterior: ...

    def log_likelihood(self, params: PyTree, x: jax.Array, z: jax.Array
                       ) -> jax.Array: ...  # x [n, ...], z [k, n, d] -> [k, n]

    def log_prior(self, params: PyTree, z: jax.Array) -> jax.Array: ...  # [k, n, d] -> [k, n]

    def kl_divergence(self, params: PyTree, posterior: Posterior) -> jax.Array: ...  # -> [n]


# --- bounds ------------------------------------------------------------------------------


class Terms(NamedTuple):
    """Per-sample terms of a bound, for k samples of n examples.

    Attributes:
      log_likelihood: ``[k, n]`` log p(x | z_i).
      log_prior: ``[k, n]`` log p(z_i), or None with an analytic KL.
      log_q: ``[k, n]`` log q(z_i | x), or None with an analytic KL.
      kl: ``[n]`` analytic KL(q || p), or None.
    """

    log_likelihood: jax.Array
    log_prior: Optional[jax.Array] = None
    log_q: Optional[jax.Array] = None
    kl: Optional[jax.Array] = None

    def kl_estimate(self) -> jax.Array:  # -> [n]
        """The analytic KL, or its Monte Carlo estimate (1/k) sum_i [log q(z_i) - log p(z_i)]."""
        if self.kl is not None:
            return self.kl
        return jnp.mean(self.log_q - self.log_prior, axis=0)

    def log_weights(self) -> jax.Array:  # -> [k, n]
        """``log w_i = log p(x, z_i) - log q(z_i | x)`` (beta = 1)."""
        if self.kl is not None:
            return self.log_likelihood - self.kl
        return self.log_likelihood + self.log_prior - self.log_q


def elbo(log_likelihood: jax.Array, log_prior: jax.Array, log_q: jax.Array,
         beta: float = 1.0) -> jax.Array:
    """``(1/k) sum_i [log p(x | z_i) + beta (log p(z_i) - log q(z_i | x))]``: ``[k, n] -> [n]``.

    The Monte Carlo ELBO of Kingma & Welling (2014), beta-weighted as in
    Higgins et al. (2017).
    """
    return jnp.mean(log_likelihood + beta * (log_prior - log_q), axis=0)


def elbo_analytic_kl(log_likelihood: jax.Array, kl: jax.Array, beta: float = 1.0
                     ) -> jax.Array:
    """``(1/k) sum_i log p(x | z_i) - beta KL(q || p)``: ``[k, n], [n] -> [n]``
    (Kingma & Welling, 2014, Eq. 10)."""
    return jnp.mean(log_likelihood, axis=0) - beta * kl


def iwae_bound(log_w: jax.Array) -> jax.Array:
    """``L_k = log (1/k) sum_i exp(log w_i) = logsumexp_i(log w_i) - log k``: ``[k, n] -> [n]``
    (Burda et al., 2016, Eq. 8)."""
    return jax.nn.logsumexp(log_w, axis=0) - math.log(log_w.shape[0])


@dataclasses.dataclass(frozen=True)
class ELBO:
    """The (beta-weighted) ELBO from ``num_samples`` samples, Monte Carlo or analytic KL."""

    num_samples: int = 1
    beta: float = 1.0
    analytic_kl: bool = False

    def __post_init__(self):
        _check_num_samples(self.num_samples)
        if not self.beta >= 0:
            raise ValueError(f"beta must be >= 0, got {self.beta}")

    def log_weights(self, t: Terms) -> jax.Array:  # -> [k, n]: f_i
        if self.analytic_kl:
            return t.log_likelihood - self.beta * t.kl
        return t.log_likelihood + self.beta * (t.log_prior - t.log_q)

    def value(self, f: jax.Array) -> jax.Array:  # [k, n] -> [n]
        return jnp.mean(f, axis=0)

    def weights(self, f: jax.Array) -> jax.Array:  # [k, n]: d value / d f_i
        return jnp.full_like(f, 1.0 / f.shape[0])

    def path_scale(self, f: jax.Array) -> jax.Array:  # [k, n]: DReG's extra factor
        return jnp.ones_like(f)

    def score_credit(self, f: jax.Array, baseline: jax.Array) -> jax.Array:  # [k, n]
        """``(f_i - b) / k``: each sample's own learning signal."""
        return (f - baseline) / f.shape[0]


@dataclasses.dataclass(frozen=True)
class IWAE:
    """The importance-weighted bound ``L_k`` from ``num_samples = k`` samples."""

    num_samples: int = 5
    analytic_kl = False
    beta = 1.0

    def __post_init__(self):
        _check_num_samples(self.num_samples)

    def log_weights(self, t: Terms) -> jax.Array:  # -> [k, n]
        return t.log_likelihood + t.log_prior - t.log_q

    def value(self, f: jax.Array) -> jax.Array:  # [k, n] -> [n]
        return iwae_bound(f)

    def weights(self, f: jax.Array) -> jax.Array:  # [k, n]: w~_i = softmax(f)_i
        return jax.nn.softmax(f, axis=0)

    def path_scale(self, f: jax.Array) -> jax.Array:  # [k, n]: w~_i (so w~_i^2 in all)
        return jax.nn.softmax(f, axis=0)

    def score_credit(self, f: jax.Array, baseline: jax.Array) -> jax.Array:  # [k, n]
        """``L_k - b``, the same for every sample of an example."""
        return jnp.broadcast_to(iwae_bound(f) - baseline, f.shape)


Bound = Union[ELBO, IWAE]


def _check_num_samples(k: int) -> None:
    if int(k) != k or k < 1:
        raise ValueError(f"num_samples must be a positive integer, got {k}")


# --- gradient estimators -----------------------------------------------------------------


def scale_gradient(x: jax.Array, scale: jax.Array) -> jax.Array:
    """``x`` in value; gradients flowing back through it are multiplied by ``scale``."""
    return sg(x) + scale * (x - sg(x))


def model_terms(model: LatentVariableModel, params: PyTree, x: jax.Array, z: jax.Array,
                log_q: jax.Array, bound: Bound, posterior: Optional[Posterior] = None) -> Terms:
    """The ``Terms`` of ``bound`` at samples ``z [k, n, d]`` with ``log_q [k, n]``."""
    log_lik = model.log_likelihood(params, x, z)
    if bound.analytic_kl:
        return Terms(log_lik, kl=model.kl_divergence(params, posterior), log_q=log_q)
    return Terms(log_lik, model.log_prior(params, z), log_q)


Surrogate = Tuple[jax.Array, jax.Array, Terms]  # (surrogate [n], f [k, n], terms)


@dataclasses.dataclass(frozen=True)
class GradientEstimator:
    """A gradient estimator: ``surrogate(model, params, x, key, bound, baseline) -> Surrogate``.

    The surrogate ``[n]`` has the bound's value and the estimator's gradient;
    ``baseline [n]`` (stopped) is read by the score-function estimator only.
    ``needs_mc_kl``: the estimator works on log q(z | x) per sample, so an
    analytic KL is refused.
    """

    surrogate: Callable[..., Surrogate]
    needs_mc_kl: bool = False
    uses_baseline: bool = False


GRADIENT_ESTIMATORS: Registry[GradientEstimator] = Registry("gradient estimator")


def _total(model, params, x, key, bound, baseline) -> Surrogate:
    del baseline
    q = model.posterior(params, x)
    z, log_q = q.sample_and_log_prob(key, bound.num_samples)
    t = model_terms(model, params, x, z, log_q, bound, q)
    f = bound.log_weights(t)
    return bound.value(f), f, t


def _stl(model, params, x, key, bound, baseline) -> Surrogate:
    del baseline
    q = model.posterior(params, x)
    z = q.sample(key, bound.num_samples)
    log_q = q.stop_gradient().log_prob(z)  # phi reaches log q only through z
    t = model_terms(model, params, x, z, log_q, bound, q)
    f = bound.log_weights(t)
    return bound.value(f), f, t


def _score(model, params, x, key, bound, baseline) -> Surrogate:
    q = model.posterior(params, x)
    z = sg(q.sample(key, bound.num_samples))  # no path from phi to z
    log_q = q.log_prob(z)  # phi enters through q's density at the fixed samples
    t = model_terms(model, params, x, z, log_q, bound, q)
    f = bound.log_weights(t)  # grad_phi F |_z and grad_theta F come from here
    credit = sg(bound.score_credit(f, baseline))  # [k, n]
    # Value 0; gradient sum_i credit_i grad_phi log q(z_i | x).
    score = jnp.sum(credit * (log_q - sg(log_q)), axis=0)
    return bound.value(f) + score, f, t


def _dreg(model, params, x, key, bound, baseline) -> Surrogate:
    del baseline
    q = model.posterior(params, x)
    q_stopped = q.stop_gradient()
    z = q.sample(key, bound.num_samples)
    # The weights first, from a forward pass that differentiates nothing.
    f_values = sg(bound.log_weights(model_terms(model, sg(params), x, sg(z),
                                                q_stopped.log_prob(sg(z)), bound, q_stopped)))
    # theta: sum_i w_i df_i/dtheta; phi, through z only: sum_i w_i * scale_i df_i/dz dz/dphi.
    z = scale_gradient(z, bound.path_scale(f_values)[..., None])
    t = model_terms(model, params, x, z, q_stopped.log_prob(z), bound, q_stopped)
    f = bound.log_weights(t)
    weights = bound.weights(f_values)
    return bound.value(f_values) + jnp.sum(weights * (f - sg(f)), axis=0), f, t


GRADIENT_ESTIMATORS.register("total")(GradientEstimator(_total))
GRADIENT_ESTIMATORS.register("stl")(GradientEstimator(_stl, needs_mc_kl=True))
GRADIENT_ESTIMATORS.register("score")(GradientEstimator(_score, uses_baseline=True))
GRADIENT_ESTIMATORS.register("dreg")(GradientEstimator(_dreg, needs_mc_kl=True))


# --- baselines for the score-function estimator ------------------------------------------


class Baseline(Protocol):
    """``b(x) [n]`` from its own parameters ``params["baseline"]`` (None: no parameters)."""

    def init(self, key: jax.Array, x: jax.Array) -> Optional[PyTree]: ...

    def __call__(self, params: Optional[PyTree], x: jax.Array) -> jax.Array: ...


@dataclasses.dataclass(frozen=True)
class NoBaseline:
    """b = 0."""

    def init(self, key: jax.Array, x: jax.Array) -> None:
        return None

    def __call__(self, params: None, x: jax.Array) -> jax.Array:
        return jnp.zeros(x.shape[:1], x.dtype)


@dataclasses.dataclass(frozen=True)
class RunningMean:
    """b = m, one number for all x, kept at an exponential running mean of the bound.

    The loss adds ``(1/2)(m - mean_batch L)^2`` (with value 0), whose gradient
    in m is ``m - mean_batch L``; plain SGD with learning rate ``1 - decay``
    then gives ``m <- decay m + (1 - decay) mean_batch L``, the running mean,
    as the train step applies it. ``running_mean_optimizer`` gives m that
    optimizer and the other parameters theirs; with any other optimizer m is
    a learned constant baseline.
    """

    def init(self, key: jax.Array, x: jax.Array) -> Dict[str, jax.Array]:
        return {"mean": jnp.zeros((), jnp.float32)}

    def __call__(self, params: Dict[str, jax.Array], x: jax.Array) -> jax.Array:
        return jnp.broadcast_to(params["mean"].astype(x.dtype), x.shape[:1])


@dataclasses.dataclass(frozen=True)
class LearnedBaseline:
    """b(x) from an MLP on the flattened x, fitted by least squares to the bound
    (the input-dependent baseline of NVIL, Mnih & Gregor, 2014)."""

    hidden: Sequence[int] = (100,)

    def net(self) -> MLP:
        return MLP(features=tuple(self.hidden) + (1,), activation=jnp.tanh)

    def init(self, key: jax.Array, x: jax.Array) -> PyTree:
        return self.net().init(key, x.reshape(x.shape[0], -1))

    def __call__(self, params: PyTree, x: jax.Array) -> jax.Array:
        return self.net().apply(params, x.reshape(x.shape[0], -1))[:, 0]


BASELINES: Registry[Callable[[], Baseline]] = Registry("score-function baseline")
BASELINES.register("none")(NoBaseline)
BASELINES.register("running_mean")(RunningMean)
BASELINES.register("learned")(LearnedBaseline)


def as_baseline(baseline: Union[str, Baseline]) -> Baseline:
    """A ``Baseline`` from a name in ``BASELINES`` or as is."""
    return BASELINES.get(baseline)() if isinstance(baseline, str) else baseline


def running_mean_optimizer(optimizer: optax.GradientTransformation, decay: float = 0.9
                           ) -> optax.GradientTransformation:
    """``optimizer`` for everything but ``params["baseline"]``, SGD at ``1 - decay`` for it.

    With the ``RunningMean`` baseline this makes ``params["baseline"]["mean"]``
    an exponential running mean of the bound with factor ``decay`` (see
    ``RunningMean``): the baseline is state, carried in the train state and
    its checkpoints, while the loss stays a pure function.
    """
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"the running mean's decay must be in [0, 1), got {decay}")

    def labels(params: PyTree) -> Dict[str, str]:
        return {name: BASELINE_KEY if name == BASELINE_KEY else "model" for name in params}

    return optax.multi_transform({"model": optimizer, BASELINE_KEY: optax.sgd(1.0 - decay)},
                                 labels)


# --- losses ------------------------------------------------------------------------------


def _metrics(bound: Bound, f: jax.Array, value: jax.Array, t: Terms) -> Metrics:
    """Batch means in nats: ``elbo``, ``kl``, ``reconstruction`` (and ``iwae_k``)."""
    t = jax.tree.map(sg, t)
    kl = t.kl_estimate()
    reconstruction = jnp.mean(t.log_likelihood, axis=0)
    metrics = {"elbo": jnp.mean(reconstruction - kl), "kl": jnp.mean(kl),
               "reconstruction": jnp.mean(reconstruction)}
    if isinstance(bound, IWAE):
        metrics["iwae_k"] = jnp.mean(sg(value))
    elif bound.beta != 1.0:
        metrics["beta_elbo"] = jnp.mean(sg(value))
    return metrics


def variational_loss(model: LatentVariableModel, bound: Bound, estimator: str = "total",
                     baseline: Union[str, Baseline] = "none",
                     preprocess: Optional[Preprocess] = None) -> LossFn:
    """``loss(params, x, key) -> (-mean bound, metrics)`` with the gradient of ``estimator``.

    Args:
      model: a ``LatentVariableModel``; ``params["encoder"]`` holds phi.
      bound: ``ELBO(...)`` or ``IWAE(...)``.
      estimator: a name in ``GRADIENT_ESTIMATORS``.
      baseline: for ``"score"``: a name in ``BASELINES`` or a ``Baseline``; its
        parameters are ``params["baseline"]`` (``init_baseline``). The loss adds
        ``(1/2) mean (b(x) - L(x))^2`` with value 0, so the train step fits it.
      preprocess: ``preprocess(key, x) -> x`` applied first with its own key
        (e.g. ``gmjax.data.binarize_dynamic``).

    Raises:
      ValueError: unknown names, an analytic KL the model has no closed form
        for or the estimator cannot use, a baseline without ``"score"``.
    """
    spec = GRADIENT_ESTIMATORS.get(estimator)
    base = as_baseline(baseline)
    if bound.analytic_kl and not getattr(model, "analytic_kl", False):
        raise ValueError("kl='analytic' needs a diagonal Gaussian posterior and a standard "
                         "normal prior; this model has no closed-form KL: use kl='mc'")
    if bound.analytic_kl and spec.needs_mc_kl:
        raise ValueError(f"the {estimator!r} estimator differentiates log q(z | x) per "
                         "sample: use kl='mc' with it")
    if not isinstance(base, NoBaseline) and not spec.uses_baseline:
        raise ValueError(f"a baseline enters only the 'score' estimator, not {estimator!r}: "
                         "use baseline='none'")

    def loss(params: PyTree, x: jax.Array, key: jax.Array) -> Tuple[jax.Array, Metrics]:
        if preprocess is not None:
            pre_key, key = jax.random.split(key)
            x = preprocess(pre_key, x)
        b = base(params.get(BASELINE_KEY), x)  # [n]
        surrogate, f, t = spec.surrogate(model, params, x, key, bound, sg(b))
        value = sg(bound.value(f))
        fit = 0.5 * jnp.mean(jnp.square(b - value))  # the baseline's least squares
        metrics = _metrics(bound, f, value, t)
        if spec.uses_baseline and not isinstance(base, NoBaseline):
            metrics["baseline_mse"] = 2.0 * fit
        return -jnp.mean(surrogate) + (fit - sg(fit)), metrics

    return loss


def elbo_loss(model: LatentVariableModel, *, num_samples: int = 1, beta: float = 1.0,
              kl: str = "analytic", estimator: str = "total",
              baseline: Union[str, Baseline] = "none",
              preprocess: Optional[Preprocess] = None) -> LossFn:
    """The negative (beta-)ELBO from ``num_samples`` samples as a train-step loss.

        L(x) = (1/k) sum_i log p(x | z_i) - beta KL(q(z | x) || p(z)),   z_i ~ q(z | x),

    with KL in closed form (``kl="analytic"``, Kingma & Welling, 2014, Eq. 10)
    or estimated on the same samples (``kl="mc"``, their Eq. 6); ``beta``
    as in Higgins et al. (2017). See ``variational_loss`` for the rest.

    Returns:
      ``loss(params, x, key) -> (-mean L, {"elbo", "kl", "reconstruction", ...})``;
      ``elbo`` is the beta = 1 ELBO, ``beta_elbo`` the objective when beta != 1.
    """
    if kl not in KL_CHOICES:
        raise ValueError(f"unknown kl {kl!r}; valid choices: {', '.join(KL_CHOICES)}")
    bound = ELBO(num_samples=num_samples, beta=float(beta), analytic_kl=kl == "analytic")
    return variational_loss(model, bound, estimator, baseline, preprocess)


def iwae_loss(model: LatentVariableModel, *, num_samples: int = 5, estimator: str = "total",
              baseline: Union[str, Baseline] = "none",
              preprocess: Optional[Preprocess] = None) -> LossFn:
    """The negative IWAE bound with ``k = num_samples`` as a train-step loss.

        L_k(x) = log (1/k) sum_i p(x, z_i) / q(z_i | x),   z_i ~ q(z | x)

    (Burda et al., 2016); ``estimator="dreg"`` gives the doubly
    reparameterized gradient (Tucker et al., 2019). See ``variational_loss``.

    Returns:
      ``loss(params, x, key) -> (-mean L_k, {"iwae_k", "elbo", "kl", "reconstruction"})``.
    """
    return variational_loss(model, IWAE(num_samples=num_samples), estimator, baseline,
                            preprocess)


def init_baseline(params: PyTree, baseline: Union[str, Baseline], key: jax.Array,
                  x: jax.Array) -> PyTree:
    """``params`` with ``params["baseline"]`` initialized (unchanged for no baseline)."""
    baseline_params = as_baseline(baseline).init(key, x)
    if baseline_params is None:
        return params
    return {**params, BASELINE_KEY: baseline_params}


# --- evaluation --------------------------------------------------------------------------


def log_importance_weights(model: LatentVariableModel, params: PyTree, x: jax.Array,
                           key: jax.Array, num_samples: int) -> jax.Array:
    """``log w_i = log p(x, z_i) - log q(z_i | x)``, ``z_i ~ q(z | x)``: ``[k, n]``.

    ``log (1/k) sum_i w_i`` estimates log p(x) (its mean is ``L_k``); the mean
    of ``log w_i`` estimates the ELBO.
    """
    q = model.posterior(params, x)
    z, log_q = q.sample_and_log_prob(key, num_samples)
    return model.log_likelihood(params, x, z) + model.log_prior(params, z) - log_q


# --- autoencoders ------------------------------------------------------------------------


class CodeModel(Protocol):
    """A deterministic autoencoder: ``code(params, x) -> [n, d]`` and ``log_likelihood``."""

    def code(self, params: PyTree, x: jax.Array) -> jax.Array: ...

    def log_likelihood(self, params: PyTree, x: jax.Array, z: jax.Array) -> jax.Array: ...


def gaussian_corruption(key: jax.Array, x: jax.Array, level: float) -> jax.Array:
    """``x + level * eps``, eps ~ N(0, I): additive isotropic Gaussian noise."""
    return x + level * jax.random.normal(key, x.shape, x.dtype)


def masking_corruption(key: jax.Array, x: jax.Array, level: float) -> jax.Array:
    """``x`` with each entry set to 0 with probability ``level``: the masking noise of
    Vincent, Larochelle, Bengio & Manzagol (2008), "Extracting and composing robust
    features with denoising autoencoders", Sec. 3."""
    keep = jax.random.bernoulli(key, 1.0 - level, x.shape)
    return jnp.where(keep, x, jnp.zeros_like(x))


CORRUPTIONS: Registry[Callable[[jax.Array, jax.Array, float], jax.Array]] = Registry(
    "corruption")
CORRUPTIONS.register("gaussian")(gaussian_corruption)
CORRUPTIONS.register("masking")(masking_corruption)


def autoencoder_loss(model: CodeModel, *, corruption: Optional[str] = None,
                     noise_level: float = 0.0,
                     preprocess: Optional[Preprocess] = None) -> LossFn:
    """The reconstruction loss of a plain or denoising autoencoder.

        loss = -(1/n) sum_i log p(x_i | z = f(x~_i)),     x~_i = C(x_i),

    with f the encoder's mean (a point code, no KL term: not a bound on
    log p(x)), C the identity for a plain autoencoder and a random corruption
    (``CORRUPTIONS``) for a denoising one (Vincent et al., 2008); log p(x | z)
    is the decoder's Bernoulli cross-entropy or Gaussian log-density (a
    squared error for a fixed variance).

    Returns:
      ``loss(params, x, key) -> (loss, {"reconstruction": mean log p(x | f(x~))})``.
    """
    corrupt = None
    if corruption is not None:
        corrupt = CORRUPTIONS.get(corruption)
        if not 0.0 <= noise_level:
            raise ValueError(f"noise_level must be >= 0, got {noise_level}")
        if corruption == "masking" and not noise_level < 1.0:
            raise ValueError(f"a masking noise_level must be < 1, got {noise_level}")

    def loss(params: PyTree, x: jax.Array, key: jax.Array) -> Tuple[jax.Array, Metrics]:
        pre_key, noise_key = jax.random.split(key)
        if preprocess is not None:
            x = preprocess(pre_key, x)
        x_in = x if corrupt is None else corrupt(noise_key, x, noise_level)
        z = model.code(params, x_in)[None]  # [1, n, d]
        reconstruction = jnp.mean(model.log_likelihood(params, x, z))
        return -reconstruction, {"reconstruction": reconstruction}

    return loss
