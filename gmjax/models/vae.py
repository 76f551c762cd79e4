"""Variational autoencoders and their baselines: VAE, IWAE, IAF-VAE, plain and denoising AEs.

A ``VAE`` ties an encoder and a decoder of ``gmjax.nets.vae`` (``VAE_NETS``:
``mlp``, ``conv``) to a prior p(z) and, for the IAF-VAE, a posterior flow:

* ``vae`` (Kingma & Welling, 2014) and ``iwae`` (Burda et al., 2016): the same
  model, q(z | x) = N(mu(x), diag(sigma(x)^2)), trained on the ELBO or the
  IWAE bound (``gmjax.objectives.elbo``);
* ``iaf_vae`` (Kingma et al., 2016, "Improved variational inference with
  inverse autoregressive flow"): z_0 ~ N(mu(x), diag(sigma(x)^2)) refined by
  T IAF steps that also read the encoder's context h(x),

      z_t = z_{t-1} exp(s_t(z_{t-1}, h)) + m_t(z_{t-1}, h),
      log q(z_T | x) = log N(z_0; mu, sigma^2) - sum_t sum_j s_{t,j},

  the IAF layers of ``gmjax.flows`` (MADE with a context input), identity at
  initialization;
* any of them with a learned flow prior p(z) (``prior``: a flow recipe of
  ``gmjax.flows``, e.g. ``maf`` or ``realnvp``) in place of N(0, I);
* ``autoencoder`` and ``denoising_autoencoder`` (Vincent et al., 2008): the
  same networks with the encoder's mean as a point code, trained on
  reconstruction alone. They define no density over x; ``fit_code_gaussian``
  / ``sample_code_gaussian`` sample them the only way they can be, through a
  Gaussian fitted to their codes, whose samples show how far such codes are
  from a generative model.

Parameters are one dict: ``{"encoder": {"net", ["flow"]}, "decoder",
["prior"]}`` (plus ``"baseline"`` for a score-function baseline, added by
``VAEObjective.init``). ``build_vae(config.model, data_shape)`` builds the
model and ``build_objective(model, config.objective)`` its loss; a script
needs little else::

    model = build_vae(config.model, (8, 8, 1))
    objective = build_objective(model, config.objective)
    params = objective.init(key, x[:1])
    optimizer = objective.optimizer(make_optimizer(config.optim, steps))
    step = make_train_step(objective.loss, optimizer, mesh)

Evaluation (``importance_sampled_log_likelihood``, ``bound_metrics``,
``amortization_gap``) and the arrays behind figures (``VAE.reconstruct``,
``VAE.sample``, ``VAE.interpolate``, ``VAE.latent_grid``) are here too.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable, Dict, Mapping, NamedTuple, Optional, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.scipy.special import ndtri

import gmjax.flows  # noqa: F401  (registers every layer and recipe)
from gmjax.data.transforms import binarize_dynamic
from gmjax.flows.base import Flow
from gmjax.flows.registry import FLOWS, build_layer
from gmjax.models.flow import build_flow
from gmjax.nets.vae import (ConvDecoder, ConvEncoder, DecoderOutput, Encoding, MLPDecoder,
                            MLPEncoder, check_observation)
from gmjax.objectives.elbo import (CORRUPTIONS, ELBO, GRADIENT_ESTIMATORS, Baseline,
                                   DiagonalGaussian, LossFn, NoBaseline, Posterior,
                                   RunningMean, as_baseline, autoencoder_loss,
                                   bernoulli_log_prob, elbo_loss, gaussian_log_prob,
                                   init_baseline, iwae_loss, running_mean_optimizer)
from gmjax.registry import Registry

PyTree = Any
sg = jax.lax.stop_gradient
STANDARD_NORMAL = "standard_normal"


# --- the IAF posterior -------------------------------------------------------------------


class IAFPosteriorFlow(nn.Module):
    """T IAF steps ``z_0 -> z_T`` conditioned on a context h (Kingma et al., 2016, Sec. 4).

    Step t is ``gmjax.flows``' ``iaf`` layer (index t, so orders reverse
    between steps) with ``context_dim`` context inputs; each starts as the
    identity.

    Attributes:
      latent_dim: d.
      num_steps: T.
      hidden: MADE hidden widths of each step.
      context_dim: width of h (0: steps without a context).
    """

    latent_dim: int
    num_steps: int = 2
    hidden: Sequence[int] = (64, 64)
    context_dim: int = 0

    def setup(self):
        self.steps = [build_layer("iaf", (self.latent_dim,), t, hidden=tuple(self.hidden),
                                  context_dim=self.context_dim)
                      for t in range(self.num_steps)]

    def __call__(self, z0: jax.Array, context: Optional[jax.Array]
                 ) -> Tuple[jax.Array, jax.Array]:
        """``z_0 [k, n, d] -> (z_T, sum_t log|det dz_t/dz_{t-1}| [k, n])``, h ``[n, C]``."""
        z, log_det = z0, jnp.zeros(z0.shape[:-1], z0.dtype)
        for step in self.steps:
            z, ld = step.bijector(context).forward_and_log_det(z)
            log_det = log_det + ld
        return z, log_det

    def inverse_and_log_det(self, z: jax.Array, context: Optional[jax.Array]
                            ) -> Tuple[jax.Array, jax.Array]:
        """``z_T -> (z_0, log|det dz_0/dz_T|)`` (d MADE passes per step)."""
        log_det = jnp.zeros(z.shape[:-1], z.dtype)
        for step in reversed(self.steps):
            z, ld = step.bijector(context).inverse_and_log_det(z)
            log_det = log_det + ld
        return z, log_det


@dataclasses.dataclass(frozen=True)
class IAFPosterior:
    """``q(z_T | x)``: a ``DiagonalGaussian`` base pushed through ``IAFPosteriorFlow``."""

    base: DiagonalGaussian
    flow: IAFPosteriorFlow
    flow_params: PyTree
    context: Optional[jax.Array]

    def sample_and_log_prob(self, key: jax.Array, num_samples: int
                            ) -> Tuple[jax.Array, jax.Array]:  # -> [k, n, d], [k, n]
        z0, log_q0 = self.base.sample_and_log_prob(key, num_samples)
        z, log_det = self.flow.apply(self.flow_params, z0, self.context)
        return z, log_q0 - log_det

    def sample(self, key: jax.Array, num_samples: int) -> jax.Array:  # -> [k, n, d]
        return self.sample_and_log_prob(key, num_samples)[0]

    def log_prob(self, z: jax.Array) -> jax.Array:  # [k, n, d] -> [k, n]
        z0, log_det = self.flow.apply(self.flow_params, z, self.context,
                                      method=IAFPosteriorFlow.inverse_and_log_det)
        return self.base.log_prob(z0) + log_det

    def stop_gradient(self) -> "IAFPosterior":
        context = None if self.context is None else sg(self.context)
        return IAFPosterior(self.base.stop_gradient(), self.flow, sg(self.flow_params), context)


# --- the model ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class VAE:
    """A latent-variable model p(z) p(x | z) with an amortized posterior q(z | x).

    Implements ``gmjax.objectives.elbo.LatentVariableModel`` (and ``CodeModel``
    for the autoencoders). Every method is pure in ``params``; latents are
    ``[..., d]`` with any leading axes (samples first, then the batch).

    Attributes:
      encoder: ``x [n, *data_shape] -> Encoding``.
      decoder: ``z [..., d] -> DecoderOutput``.
      data_shape: shape of one example.
      latent_dim: d.
      likelihood: ``"bernoulli"`` or ``"gaussian"`` (the decoder's).
      posterior_flow: the IAF steps of an IAF-VAE, or None.
      prior: a ``Flow`` density over z, or None for N(0, I).
      kind: the ``VAE_MODELS`` name it was built as.
      corruption: a denoising autoencoder's ``CORRUPTIONS`` name, or None.
      noise_level: the corruption's level.
    """

    encoder: nn.Module
    decoder: nn.Module
    data_shape: Tuple[int, ...]
    latent_dim: int
    likelihood: str = "bernoulli"
    posterior_flow: Optional[IAFPosteriorFlow] = None
    prior: Optional[Flow] = None
    kind: str = "vae"
    corruption: Optional[str] = None
    noise_level: float = 0.0

    def __post_init__(self):
        if self.prior is not None and not isinstance(self.prior.layers, tuple):
            # A tuple keeps the model hashable, so it can be a static argument of jit.
            object.__setattr__(self, "prior", self.prior.clone(layers=tuple(self.prior.layers)))

    @property
    def analytic_kl(self) -> bool:
        """KL(q || p) has a closed form: diagonal Gaussian q, standard normal p."""
        return self.posterior_flow is None and self.prior is None

    def init(self, key: jax.Array, x: Optional[jax.Array] = None) -> PyTree:
        """Parameters from the networks' initializers (``x``: an example batch, default zeros)."""
        if x is None:
            x = jnp.zeros((1,) + tuple(self.data_shape))
        enc_key, dec_key, flow_key, prior_key = jax.random.split(key, 4)
        encoder = {"net": self.encoder.init(enc_key, x)}
        z = jnp.zeros((1, x.shape[0], self.latent_dim), x.dtype)
        if self.posterior_flow is not None:
            encoding = self.encoder.apply(encoder["net"], x)
            encoder["flow"] = self.posterior_flow.init(flow_key, z, encoding.context)
        params = {"encoder": encoder, "decoder": self.decoder.init(dec_key, z)}
        if self.prior is not None:
            params["prior"] = self.prior.init(prior_key, jax.random.normal(
                prior_key, (16, self.latent_dim), x.dtype))
        return params

    # -- the posterior

    def encode(self, params: PyTree, x: jax.Array) -> Encoding:
        """The encoder's ``(mu, log sigma, h)`` for ``x [n, *data_shape]``."""
        return self.encoder.apply(params["encoder"]["net"], x)

    def posterior_from_encoding(self, params: PyTree, encoding: Encoding) -> Posterior:
        """q(z | x) with the given ``(mu, log sigma, h)`` (and ``params``' IAF steps)."""
        base = DiagonalGaussian(encoding.mean, encoding.log_scale)
        if self.posterior_flow is None:
            return base
        return IAFPosterior(base, self.posterior_flow, params["encoder"]["flow"],
                            encoding.context)

    def posterior(self, params: PyTree, x: jax.Array) -> Posterior:
        """q(z | x) for a batch ``x [n, *data_shape]``."""
        return self.posterior_from_encoding(params, self.encode(params, x))

    def code(self, params: PyTree, x: jax.Array) -> jax.Array:  # [n, *data_shape] -> [n, d]
        """The encoder's mean mu(x): an autoencoder's code, a VAE's posterior mean before IAF."""
        return self.encode(params, x).mean

    # -- the generative model

    def decode(self, params: PyTree, z: jax.Array) -> DecoderOutput:
        """The parameters of p(x | z) for ``z [..., d]``."""
        return self.decoder.apply(params["decoder"], z)

    def log_likelihood(self, params: PyTree, x: jax.Array, z: jax.Array) -> jax.Array:
        """``log p(x | z)``: x ``[n, *data_shape]``, z ``[k, n, d]`` -> ``[k, n]``."""
        out = self.decode(params, z)
        event_ndims = len(self.data_shape)
        if self.likelihood == "bernoulli":
            return bernoulli_log_prob(x, out.loc, event_ndims)
        return gaussian_log_prob(x, out.loc, out.log_scale, event_ndims)

    def log_prior(self, params: PyTree, z: jax.Array) -> jax.Array:  # [..., d] -> [...]
        """``log p(z)``: standard normal, or the flow prior's density."""
        if self.prior is None:
            return gaussian_log_prob(z, jnp.zeros((), z.dtype), jnp.zeros((), z.dtype))
        flat = z.reshape(-1, self.latent_dim)
        return self.prior.apply(params["prior"], flat).reshape(z.shape[:-1])

    def kl_divergence(self, params: PyTree, posterior: Posterior) -> jax.Array:  # -> [n]
        """The closed-form ``KL(q(z | x) || N(0, I))`` (``analytic_kl`` models only)."""
        if not self.analytic_kl:
            raise ValueError("KL(q || p) has a closed form only for a diagonal Gaussian "
                             "posterior and a standard normal prior")
        return posterior.kl_to_standard_normal()

    def mean(self, params: PyTree, z: jax.Array) -> jax.Array:  # [..., d] -> [..., *data_shape]
        """``E[x | z]``: ``sigmoid(logits)`` (Bernoulli) or the Gaussian mean."""
        out = self.decode(params, z)
        return jax.nn.sigmoid(out.loc) if self.likelihood == "bernoulli" else out.loc

    def sample_latent(self, params: PyTree, key: jax.Array, n: int) -> jax.Array:  # -> [n, d]
        """``n`` draws of z from the prior."""
        if self.prior is None:
            return jax.random.normal(key, (n, self.latent_dim))
        return self.prior.apply(params["prior"], key, n, method=Flow.sample)

    def sample(self, params: PyTree, key: jax.Array, n: int, mean: bool = True
               ) -> jax.Array:  # -> [n, *data_shape]
        """``n`` draws of x: ``E[x | z]`` (``mean``) or a draw of ``p(x | z)``, z from the prior."""
        z_key, x_key = jax.random.split(key)
        z = self.sample_latent(params, z_key, n)
        if mean:
            return self.mean(params, z)
        out = self.decode(params, z)
        if self.likelihood == "bernoulli":
            return jax.random.bernoulli(x_key, jax.nn.sigmoid(out.loc)).astype(out.loc.dtype)
        noise = jax.random.normal(x_key, out.loc.shape, out.loc.dtype)
        return out.loc + jnp.exp(out.log_scale) * noise

    # -- arrays for figures

    def reconstruct(self, params: PyTree, x: jax.Array, key: Optional[jax.Array] = None
                    ) -> jax.Array:  # [n, *data_shape] -> [n, *data_shape]
        """``E[x | z]`` at z = mu(x) (no key; an autoencoder's reconstruction) or at
        one draw z ~ q(z | x)."""
        if key is None:
            return self.mean(params, self.code(params, x))
        return self.mean(params, self.posterior(params, x).sample(key, 1)[0])

    def interpolate(self, params: PyTree, x_a: jax.Array, x_b: jax.Array, num: int = 8,
                    spherical: bool = False) -> jax.Array:
        """``E[x | z_t]`` along the path from mu(x_a) to mu(x_b): ``[num, *data_shape]``.

        Linear, ``z_t = (1 - t) z_a + t z_b``, or spherical (``spherical``:
        slerp, which keeps the norm typical of a Gaussian's samples; White,
        2016, "Sampling generative networks"), t evenly spaced in [0, 1].
        """
        codes = self.code(params, jnp.stack([x_a, x_b]))
        t = jnp.linspace(0.0, 1.0, num)[:, None]
        return self.mean(params, interpolate_latents(codes[0], codes[1], t, spherical))

    def latent_grid(self, params: PyTree, num: int = 20, dims: Tuple[int, int] = (0, 1)
                    ) -> jax.Array:  # -> [num, num, *data_shape]
        """``E[x | z]`` on a ``num x num`` grid of the prior's quantiles in latent ``dims``.

        z takes the values ``Phi^{-1}(p)``, p evenly spaced in (0, 1), in the two
        latent dimensions ``dims`` and 0 in the others: the learned 2-D data
        manifold of Kingma & Welling (2014, Fig. 4) for ``latent_dim = 2``.
        Row i holds the i-th value of ``dims[0]``.
        """
        if self.latent_dim < 2:
            raise ValueError(f"a latent grid needs latent_dim >= 2, got {self.latent_dim}")
        values = ndtri(jnp.linspace(0.0, 1.0, num + 2)[1:-1])  # [num]
        z = jnp.zeros((num, num, self.latent_dim))
        z = z.at[:, :, dims[0]].set(values[:, None]).at[:, :, dims[1]].set(values[None, :])
        return self.mean(params, z)


def interpolate_latents(z_a: jax.Array, z_b: jax.Array, t: jax.Array,
                        spherical: bool = False) -> jax.Array:
    """``(1 - t) z_a + t z_b``, or slerp ``sin((1-t) w)/sin(w) z_a + sin(t w)/sin(w) z_b`` with
    ``cos w = <z_a, z_b> / (|z_a| |z_b|)``; ``t [m, 1]``, z ``[d]`` -> ``[m, d]``."""
    if not spherical:
        return (1.0 - t) * z_a + t * z_b
    cos = jnp.dot(z_a, z_b) / (jnp.linalg.norm(z_a) * jnp.linalg.norm(z_b))
    omega = jnp.arccos(jnp.clip(cos, -1.0, 1.0))
    safe = jnp.maximum(jnp.sin(omega), 1e-6)
    slerp = (jnp.sin((1.0 - t) * omega) * z_a + jnp.sin(t * omega) * z_b) / safe
    # Nearly parallel codes: slerp is linear interpolation.
    return jnp.where(jnp.sin(omega) > 1e-6, slerp, (1.0 - t) * z_a + t * z_b)


# --- building from a config --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class VAEKind:
    """What a ``model.name`` builds: its default objective, an IAF posterior, a corruption."""

    objective: str
    iaf: bool = False
    denoising: bool = False


VAE_MODELS: Registry[VAEKind] = Registry("VAE model")
VAE_MODELS.register("vae")(VAEKind("elbo"))
VAE_MODELS.register("iwae")(VAEKind("iwae"))
VAE_MODELS.register("iaf_vae")(VAEKind("elbo", iaf=True))
VAE_MODELS.register("autoencoder")(VAEKind("reconstruction"))
VAE_MODELS.register("denoising_autoencoder")(VAEKind("reconstruction", denoising=True))

VAE_NETS: Registry[Callable[..., Tuple[nn.Module, nn.Module]]] = Registry("VAE network")


@VAE_NETS.register("mlp")
def _mlp_nets(model: Mapping[str, Any], data_shape: Tuple[int, ...], latent_dim: int,
              context_dim: int, likelihood: Dict[str, Any]) -> Tuple[nn.Module, nn.Module]:
    hidden = tuple(int(h) for h in model.get("hidden", (500, 500)))
    act = str(model.get("activation", "tanh"))
    return (MLPEncoder(latent_dim=latent_dim, hidden=hidden, activation=act,
                       context_dim=context_dim),
            MLPDecoder(data_shape=data_shape, hidden=tuple(reversed(hidden)), activation=act,
                       **likelihood))


@VAE_NETS.register("conv")
def _conv_nets(model: Mapping[str, Any], data_shape: Tuple[int, ...], latent_dim: int,
               context_dim: int, likelihood: Dict[str, Any]) -> Tuple[nn.Module, nn.Module]:
    if len(data_shape) != 3 or data_shape[0] % 4 or data_shape[1] % 4:
        raise ValueError("model.net='conv' takes images [h, w, c] with h and w divisible by 4, "
                         f"got data shape {tuple(data_shape)}")
    channels = int(model.get("channels", 32))
    hidden = tuple(int(h) for h in model.get("hidden", (256,)))
    return (ConvEncoder(latent_dim=latent_dim, channels=channels, hidden=hidden,
                        context_dim=context_dim),
            ConvDecoder(data_shape=tuple(data_shape), channels=channels,
                        hidden=tuple(reversed(hidden)), **likelihood))


def prior_names() -> list[str]:
    """Valid ``model.prior`` values: ``standard_normal`` and every vector flow recipe."""
    return [STANDARD_NORMAL, *FLOWS.recipe_names(event_rank=1)]


def build_vae(model: Mapping[str, Any], data_shape: Sequence[int]) -> VAE:
    """The model a ``model`` config block describes, on examples of ``data_shape``.

    Fields (defaults in brackets; only those the model uses are read):

    * ``name``: a ``VAE_MODELS`` name (vae, iwae, iaf_vae, autoencoder,
      denoising_autoencoder);
    * ``net`` [mlp]: a ``VAE_NETS`` name; mlp: ``hidden`` [(500, 500)] (the
      decoder mirrors it), ``activation`` [tanh]; conv: ``channels`` [32],
      ``hidden`` [(256,)];
    * ``latent_dim`` [50];
    * ``likelihood`` [bernoulli] or gaussian, then ``variance`` [fixed] or
      learned, and ``scale`` [1.0] (the fixed or initial standard deviation);
    * iaf_vae: ``iaf_steps`` [2], ``iaf_hidden`` [(64, 64)], ``context_dim`` [16];
    * ``prior`` [standard_normal] or a vector flow recipe (``prior_names()``),
      then ``prior_layers`` [4] and ``prior_hidden`` [(64, 64)];
    * denoising_autoencoder: ``corruption`` [gaussian] or masking and
      ``noise_level`` [0.3].

    Raises:
      ValueError: an unknown name or a field out of range, naming the valid choices.
    """
    kind = VAE_MODELS.get(str(model["name"]))
    data_shape = tuple(int(s) for s in data_shape)
    latent_dim = int(model.get("latent_dim", 50))
    if latent_dim < 1:
        raise ValueError(f"model.latent_dim must be >= 1, got {latent_dim}")
    likelihood = {"likelihood": str(model.get("likelihood", "bernoulli"))}
    if likelihood["likelihood"] == "gaussian":
        likelihood.update(variance=str(model.get("variance", "fixed")),
                          scale=float(model.get("scale", 1.0)))
    check_observation(**likelihood)
    context_dim, posterior_flow = 0, None
    if kind.iaf:
        context_dim = int(model.get("context_dim", 16))
        steps = int(model.get("iaf_steps", 2))
        if steps < 1 or context_dim < 0:
            raise ValueError(f"model.iaf_steps must be >= 1 and model.context_dim >= 0, "
                             f"got {steps} and {context_dim}")
        posterior_flow = IAFPosteriorFlow(
            latent_dim=latent_dim, num_steps=steps, context_dim=context_dim,
            hidden=tuple(int(h) for h in model.get("iaf_hidden", (64, 64))))
    encoder, decoder = VAE_NETS.get(str(model.get("net", "mlp")))(
        model, data_shape, latent_dim, context_dim, likelihood)
    prior = None
    prior_name = str(model.get("prior", STANDARD_NORMAL))
    if prior_name != STANDARD_NORMAL:
        if prior_name not in prior_names():
            raise ValueError(f"unknown prior {prior_name!r}; valid choices: "
                             f"{', '.join(prior_names())}")
        prior = build_flow({"name": prior_name,
                            "num_layers": int(model.get("prior_layers", 4)),
                            "hidden": tuple(int(h) for h in model.get("prior_hidden", (64, 64)))},
                           latent_dim)
    corruption, noise_level = None, 0.0
    if kind.denoising:
        corruption = str(model.get("corruption", "gaussian"))
        CORRUPTIONS.get(corruption)
        noise_level = float(model.get("noise_level", 0.3))
    return VAE(encoder=encoder, decoder=decoder, data_shape=data_shape, latent_dim=latent_dim,
               likelihood=likelihood["likelihood"], posterior_flow=posterior_flow, prior=prior,
               kind=str(model["name"]), corruption=corruption, noise_level=noise_level)


# --- the objective -----------------------------------------------------------------------

OBJECTIVES = ("elbo", "iwae", "reconstruction")
KL_OPTIONS = ("auto", "analytic", "mc")
BINARIZATIONS: Dict[str, Optional[Callable[[jax.Array, jax.Array], jax.Array]]] = {
    "none": None, "dynamic": binarize_dynamic}


@dataclasses.dataclass(frozen=True)
class VAEObjective:
    """A model's train-step loss and what it needs beside the model's parameters.

    Attributes:
      model: the ``VAE``.
      loss: ``loss(params, x, key) -> (scalar, metrics)`` for ``make_train_step``.
      name: ``elbo``, ``iwae`` or ``reconstruction``.
      baseline: the score-function baseline (``NoBaseline`` otherwise).
      baseline_decay: the running mean's decay, for ``optimizer``.
    """

    model: VAE
    loss: LossFn
    name: str
    baseline: Baseline = NoBaseline()
    baseline_decay: float = 0.9

    def init(self, key: jax.Array, x: Optional[jax.Array] = None) -> PyTree:
        """The model's parameters, with ``params["baseline"]`` where the estimator has one."""
        model_key, baseline_key = jax.random.split(key)
        params = self.model.init(model_key, x)
        if x is None:
            x = jnp.zeros((1,) + tuple(self.model.data_shape))
        return init_baseline(params, self.baseline, baseline_key, x)

    def optimizer(self, optimizer: optax.GradientTransformation
                  ) -> optax.GradientTransformation:
        """``optimizer``, with the running-mean baseline's own update where there is one."""
        if isinstance(self.baseline, RunningMean):
            return running_mean_optimizer(optimizer, self.baseline_decay)
        return optimizer


def build_objective(model: VAE, objective: Optional[Mapping[str, Any]] = None) -> VAEObjective:
    """The loss an ``objective`` config block describes, for ``model``.

    Fields (defaults in brackets; only those the objective uses are read):

    * ``name`` [the model's: elbo for vae and iaf_vae, iwae for iwae,
      reconstruction for the autoencoders];
    * ``binarize`` [none] or dynamic: a fresh Bernoulli(x) draw of the pixels
      at every step (Burda et al., 2016);
    * elbo and iwae: ``num_samples`` [1 for elbo, 5 for iwae], ``estimator``
      [total] (a ``GRADIENT_ESTIMATORS`` name: total, stl, score, dreg);
      for score: ``baseline`` [none] (``BASELINES``: none, running_mean,
      learned) and for running_mean its ``baseline_decay`` [0.9];
    * elbo: ``beta`` [1.0] and ``kl`` [auto]: analytic where the model has a
      closed form and the estimator uses it, mc otherwise.
    """
    objective = {} if objective is None else objective
    kind = VAE_MODELS.get(model.kind)
    name = str(objective.get("name", kind.objective))
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; valid choices: {', '.join(OBJECTIVES)}")
    if (name == "reconstruction") != (kind.objective == "reconstruction"):
        raise ValueError(f"model {model.kind!r} is trained on "
                         f"{'reconstruction' if kind.objective == 'reconstruction' else 'a bound'}"
                         f", not objective {name!r}")
    binarize = str(objective.get("binarize", "none"))
    if binarize not in BINARIZATIONS:
        raise ValueError(f"unknown binarize {binarize!r}; valid choices: "
                         f"{', '.join(BINARIZATIONS)}")
    preprocess = BINARIZATIONS[binarize]
    if name == "reconstruction":
        loss = autoencoder_loss(model, corruption=model.corruption,
                                noise_level=model.noise_level, preprocess=preprocess)
        return VAEObjective(model, loss, name)
    estimator = str(objective.get("estimator", "total"))
    spec = GRADIENT_ESTIMATORS.get(estimator)
    baseline: Baseline = NoBaseline()
    decay = 0.9
    if spec.uses_baseline:
        baseline = as_baseline(str(objective.get("baseline", "none")))
        if isinstance(baseline, RunningMean):
            decay = float(objective.get("baseline_decay", 0.9))
            if not 0.0 <= decay < 1.0:
                raise ValueError(f"objective.baseline_decay must be in [0, 1), got {decay}")
    num_samples = int(objective.get("num_samples", 1 if name == "elbo" else 5))
    if name == "iwae":
        loss = iwae_loss(model, num_samples=num_samples, estimator=estimator,
                         baseline=baseline, preprocess=preprocess)
        return VAEObjective(model, loss, name, baseline, decay)
    kl = str(objective.get("kl", "auto"))
    if kl not in KL_OPTIONS:
        raise ValueError(f"unknown kl {kl!r}; valid choices: {', '.join(KL_OPTIONS)}")
    if kl == "auto":
        kl = "analytic" if model.analytic_kl and not spec.needs_mc_kl else "mc"
    loss = elbo_loss(model, num_samples=num_samples, beta=float(objective.get("beta", 1.0)),
                     kl=kl, estimator=estimator, baseline=baseline, preprocess=preprocess)
    return VAEObjective(model, loss, name, baseline, decay)


# --- evaluation --------------------------------------------------------------------------


class LogLikelihoodEstimate(NamedTuple):
    """An importance-sampled log-likelihood: the mean over examples and per example, in nats.

    Attributes:
      mean: ``(1/n) sum_i log p_hat(x_i)``.
      stderr: its Monte Carlo standard error, ``sqrt(sum_i se_i^2) / n``.
      per_example: ``[n]`` log p_hat(x_i).
      per_example_stderr: ``[n]`` se_i, the delta-method standard errors.
      elbo: ``[n]`` the mean of the same log weights, an ELBO estimate.
    """

    mean: float
    stderr: float
    per_example: np.ndarray
    per_example_stderr: np.ndarray
    elbo: np.ndarray


def _accumulate(posterior: Posterior, model: VAE, params: PyTree, x: jax.Array,
                key: jax.Array, num_chunks: int, chunk_size: int, carry: Tuple[jax.Array, ...]
                ) -> Tuple[jax.Array, ...]:
    """Adds ``num_chunks * chunk_size`` log weights to the running
    ``(logsumexp log w, logsumexp 2 log w, sum log w)``, each ``[n]``."""

    def body(carry, chunk_key):
        lse, lse2, total = carry
        z, log_q = posterior.sample_and_log_prob(chunk_key, chunk_size)
        log_w = model.log_likelihood(params, x, z) + model.log_prior(params, z) - log_q
        return (jnp.logaddexp(lse, jax.nn.logsumexp(log_w, axis=0)),
                jnp.logaddexp(lse2, jax.nn.logsumexp(2.0 * log_w, axis=0)),
                total + jnp.sum(log_w, axis=0)), None

    carry, _ = jax.lax.scan(body, carry, jax.random.split(key, num_chunks))
    return carry


@functools.partial(jax.jit, static_argnames=("model", "num_samples", "chunk_size"))
def _log_weight_sums(model: VAE, params: PyTree, x: jax.Array, key: jax.Array,
                     num_samples: int, chunk_size: int,
                     encoding: Optional[Encoding] = None) -> Tuple[jax.Array, ...]:
    """``(logsumexp log w, logsumexp 2 log w, sum log w)`` over ``num_samples`` draws from
    q (the encoder's, or the one of ``encoding``), ``chunk_size`` at a time."""
    if encoding is None:
        encoding = model.encode(params, x)
    posterior = model.posterior_from_encoding(params, encoding)
    n = x.shape[0]
    carry = (jnp.full((n,), -jnp.inf), jnp.full((n,), -jnp.inf), jnp.zeros((n,)))
    full, rest = divmod(num_samples, chunk_size)
    key_full, key_rest = jax.random.split(key)
    if full:
        carry = _accumulate(posterior, model, params, x, key_full, full, chunk_size, carry)
    if rest:
        carry = _accumulate(posterior, model, params, x, key_rest, 1, rest, carry)
    return carry


def _batches(n: int, batch_size: int):
    for start in range(0, n, batch_size):
        yield start, min(start + batch_size, n)


def _pad(a: jax.Array, size: int) -> jax.Array:
    """``a [m, ...]`` padded with copies of its last row to ``[size, ...]`` (one compiled shape)."""
    if a.shape[0] == size:
        return a
    return jnp.concatenate([a, jnp.repeat(a[-1:], size - a.shape[0], axis=0)])


def importance_sampled_log_likelihood(model: VAE, params: PyTree, x: jax.Array, key: jax.Array,
                                      *, num_samples: int = 5000, chunk_size: int = 500,
                                      batch_size: int = 100,
                                      encodings: Optional[Encoding] = None
                                      ) -> LogLikelihoodEstimate:
    """``log p(x)`` by importance sampling with the posterior as the proposal.

        log p_hat(x) = log (1/k) sum_i p(x, z_i) / q(z_i | x),   z_i ~ q(z | x),

    with k = ``num_samples`` (5000 as in Burda et al., 2016, Sec. 5), drawn
    ``chunk_size`` at a time for ``batch_size`` examples at a time, and
    combined with running log-sum-exps, so memory does not grow with k. The
    per-example standard error is the delta method's,
    ``se^2 = (k / (k - 1)) (sum_i w~_i^2 - 1/k)`` with w~ the normalized
    weights (``gmjax.metrics.is_log_likelihood_per_example``). Its mean is
    ``L_k``, below log p(x) by a bias that shrinks as 1/k.

    Args:
      model, params: the model.
      x: ``[n, *data_shape]`` examples.
      key: for the draws (example i of batch b uses ``fold_in(key, b)``).
      num_samples: k >= 2.
      chunk_size: draws per vectorized chunk.
      batch_size: examples per compiled call.
      encodings: an ``Encoding`` of all n examples to use as the proposal's
        ``(mu, log sigma, h)`` in place of the encoder's (locally optimized ones).

    Returns:
      A ``LogLikelihoodEstimate``.
    """
    if num_samples < 2:
        raise ValueError(f"num_samples must be >= 2 for a standard error, got {num_samples}")
    n = x.shape[0]
    batch_size = min(batch_size, n)
    chunk_size = min(chunk_size, num_samples)
    parts = []
    for b, (start, stop) in enumerate(_batches(n, batch_size)):
        xb = _pad(x[start:stop], batch_size)
        enc = None
        if encodings is not None:
            enc = jax.tree.map(lambda a: _pad(a[start:stop], batch_size), encodings)
        sums = _log_weight_sums(model, params, xb, jax.random.fold_in(key, b),
                                num_samples, chunk_size, enc)
        parts.append([np.asarray(s)[:stop - start] for s in sums])
    lse, lse2, total = (np.concatenate(p).astype(np.float64) for p in zip(*parts))
    k = num_samples
    log_p = lse - math.log(k)
    sum_w2 = np.exp(lse2 - 2.0 * lse)  # sum of squared normalized weights
    se = np.sqrt(np.maximum(k / (k - 1) * (sum_w2 - 1.0 / k), 0.0))
    return LogLikelihoodEstimate(float(np.mean(log_p)), float(np.sqrt(np.sum(se ** 2)) / n),
                                 log_p, se, total / k)


def bound_metrics(model: VAE, params: PyTree, x: jax.Array, key: jax.Array, *,
                  num_samples: int = 64, batch_size: int = 100) -> Dict[str, float]:
    """``{"elbo", "iwae_k"}`` on ``x``: the ELBO (mean log weight) and ``L_k`` with
    ``k = num_samples`` draws per example, averaged over the examples, in nats."""
    estimate = importance_sampled_log_likelihood(
        model, params, x, key, num_samples=num_samples, chunk_size=num_samples,
        batch_size=batch_size)
    return {"elbo": float(np.mean(estimate.elbo)), "iwae_k": estimate.mean}


class LocalModel(NamedTuple):
    """The model with per-example variational parameters: ``params = {"model", "local"}``,
    ``params["local"]`` an ``Encoding`` ``[n, ...]`` used in place of the encoder's."""

    vae: VAE
    analytic_kl = False

    def posterior(self, params: PyTree, x: jax.Array) -> Posterior:
        return self.vae.posterior_from_encoding(params["model"], params["local"])

    def log_likelihood(self, params: PyTree, x: jax.Array, z: jax.Array) -> jax.Array:
        return self.vae.log_likelihood(params["model"], x, z)

    def log_prior(self, params: PyTree, z: jax.Array) -> jax.Array:
        return self.vae.log_prior(params["model"], z)

    def kl_divergence(self, params: PyTree, posterior: Posterior) -> jax.Array:
        raise ValueError("the local model uses a Monte Carlo KL")


@functools.partial(jax.jit, static_argnames=("model", "steps", "num_samples", "estimator"))
def optimize_local_posteriors(model: VAE, params: PyTree, x: jax.Array, key: jax.Array,
                              steps: int = 500, learning_rate: float = 1e-2,
                              num_samples: int = 8, estimator: str = "stl"
                              ) -> Tuple[Encoding, jax.Array]:
    """Per-example variational parameters maximizing the ELBO, starting at the encoder's.

    The encoder's output ``(mu, log sigma, h)`` for each example becomes a
    free parameter (the IAF weights and the decoder stay fixed), optimized
    by Adam on the ELBO with ``num_samples`` reparameterized draws per step
    and the gradient ``estimator``: by default the path derivative (Roeder
    et al., 2017), whose variance vanishes as q approaches the posterior
    (for an IAF posterior it inverts the flow, d passes per step; ``"total"``
    does not). The ELBO is a sum over examples and Adam acts per coordinate,
    so this is n independent optimizations. The local posteriors of Cremer,
    Li & Duvenaud (2018), "Inference suboptimality in variational autoencoders".

    Returns:
      ``(encoding, elbo_trace)``: the optimized ``Encoding [n, ...]`` and the
      mean ELBO estimate at each step ``[steps]``.
    """
    local_model = LocalModel(model)
    bound = ELBO(num_samples=num_samples)
    surrogate_fn = GRADIENT_ESTIMATORS.get(estimator).surrogate
    optimizer = optax.adam(learning_rate)
    local = model.encode(params, x)

    def negative_elbo(local, step_key):
        surrogate, _, _ = surrogate_fn(local_model, {"model": params, "local": local}, x,
                                       step_key, bound, jnp.zeros(x.shape[:1], x.dtype))
        return -jnp.sum(surrogate), jnp.mean(surrogate)

    def step(carry, step_key):
        local, opt_state = carry
        grads, elbo_value = jax.grad(negative_elbo, has_aux=True)(local, step_key)
        updates, opt_state = optimizer.update(grads, opt_state, local)
        return (optax.apply_updates(local, updates), opt_state), elbo_value

    (local, _), trace = jax.lax.scan(step, (local, optimizer.init(local)),
                                     jax.random.split(key, steps))
    return local, trace


class AmortizationGap(NamedTuple):
    """The inference gaps of Cremer et al. (2018), means over examples in nats.

        log p(x) - ELBO[q_amortized] = (log p(x) - ELBO[q*]) + (ELBO[q*] - ELBO[q_amortized])
                                     = approximation gap     + amortization gap,

    q* the best posterior of the variational family for each x (here: found
    by ``optimize_local_posteriors``).
    """

    log_likelihood: float
    log_likelihood_stderr: float
    amortized_elbo: float
    local_elbo: float
    approximation_gap: float
    amortization_gap: float


def amortization_gap(model: VAE, params: PyTree, x: jax.Array, key: jax.Array, *,
                     steps: int = 500, learning_rate: float = 1e-2, num_samples: int = 8,
                     estimator: str = "stl", eval_samples: int = 1000, is_samples: int = 5000,
                     chunk_size: int = 500, batch_size: int = 100) -> AmortizationGap:
    """Splits the gap between log p(x) and the amortized ELBO (Cremer et al., 2018).

    The amortized ELBO is that of the encoder's q(z | x); the local ELBO
    that of per-example posteriors optimized from it
    (``optimize_local_posteriors`` with ``steps``, ``learning_rate``,
    ``num_samples``, ``estimator``); both are estimated with ``eval_samples``
    draws. log p(x) is the importance-sampled estimate with ``is_samples``
    draws from the local posteriors, the better proposal of the two.
    """
    opt_key, amortized_key, local_key, is_key = jax.random.split(key, 4)
    encodings = []
    for b, (start, stop) in enumerate(_batches(x.shape[0], min(batch_size, x.shape[0]))):
        xb = _pad(x[start:stop], min(batch_size, x.shape[0]))
        local, _ = optimize_local_posteriors(model, params, xb, jax.random.fold_in(opt_key, b),
                                             steps, learning_rate, num_samples, estimator)
        encodings.append(jax.tree.map(lambda a: a[:stop - start], local))
    local = jax.tree.map(lambda *a: jnp.concatenate(a), *encodings)
    common = dict(chunk_size=chunk_size, batch_size=batch_size)
    amortized = importance_sampled_log_likelihood(model, params, x, amortized_key,
                                                  num_samples=eval_samples, **common)
    local_elbo = importance_sampled_log_likelihood(model, params, x, local_key,
                                                   num_samples=eval_samples, encodings=local,
                                                   **common)
    log_p = importance_sampled_log_likelihood(model, params, x, is_key,
                                              num_samples=is_samples, encodings=local, **common)
    amortized_elbo = float(np.mean(amortized.elbo))
    local_value = float(np.mean(local_elbo.elbo))
    return AmortizationGap(log_p.mean, log_p.stderr, amortized_elbo, local_value,
                           log_p.mean - local_value, local_value - amortized_elbo)


# --- sampling the autoencoders -----------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("model",))
def _codes(model: VAE, params: PyTree, x: jax.Array) -> jax.Array:
    return model.code(params, x)


def fit_code_gaussian(model: VAE, params: PyTree, x: jax.Array, batch_size: int = 500
                      ) -> Tuple[jax.Array, jax.Array]:
    """The mean ``[d]`` and covariance ``[d, d]`` of the codes mu(x) of ``x``.

    An autoencoder has no prior; a Gaussian fitted to its training codes is
    the simplest way to draw new codes, and decoding its samples shows how
    little of the code space decodes to data.
    """
    n = x.shape[0]
    batch_size = min(batch_size, n)
    codes = jnp.concatenate([_codes(model, params, _pad(x[start:stop], batch_size))[:stop - start]
                             for start, stop in _batches(n, batch_size)])
    return jnp.mean(codes, axis=0), jnp.cov(codes, rowvar=False).reshape(
        model.latent_dim, model.latent_dim)


@functools.partial(jax.jit, static_argnames=("model", "n"))
def sample_code_gaussian(model: VAE, params: PyTree, key: jax.Array, n: int,
                         mean: jax.Array, cov: jax.Array) -> jax.Array:
    """``E[x | z]`` for ``n`` codes ``z ~ N(mean, cov)``: ``[n, *data_shape]``."""
    z = jax.random.multivariate_normal(key, mean, cov, (n,))
    return model.mean(params, z)
