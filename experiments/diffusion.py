"""Diffusion and score models (DDPM / DDIM, NCSN, score SDEs): train, sample, evaluate, plot.

    python experiments/diffusion.py --config experiments/configs/diffusion_toy.py \
        --workdir runs/ddpm_8gaussians
    python experiments/diffusion.py --config experiments/configs/diffusion_toy.py \
        --workdir runs/sde_8gaussians --config.model.family=sde
    python experiments/diffusion.py --config experiments/configs/diffusion_fashion_mnist.py \
        --workdir runs/ddpm_fashion_mnist

``model.family`` picks the model, its loss and its samplers:

* ``ddpm`` (Ho et al. 2020): a discrete noise schedule ``model.schedule``
  (``NOISE_SCHEDULES``: linear, cosine) of ``model.num_steps`` steps T,
  trained by L_simple (``objectives.diffusion.ddpm_loss``); sampled by
  ancestral sampling (``eval.variance``: beta or beta_tilde) over all T
  steps or by DDIM (Song, Meng and Ermon 2021) with ``eval.ddim_steps`` steps
  and ``eval.eta``; both clip the predicted x_0 to [-c, c] with
  ``eval.clip_x0`` = c > 0 (images: 1, as Ho et al.'s sampler; 0: no
  clipping). Both samplers are always run and reported side by side
  (``ancestral_*``, ``ddim_*``); ``eval.sampler`` picks the headline one.
  Likelihood: the variational bound (``elbo``; images: ``bits_per_dim``).
* ``ncsn`` (Song and Ermon 2019): denoising score matching at
  ``model.num_levels`` geometric noise levels from ``model.sigma_max`` to
  ``model.sigma_min`` (``ncsn_loss``), sampled by annealed Langevin dynamics
  (``eval.langevin_steps`` per level, step ``eval.step_size``).
* ``sde`` (Song et al. 2021): the VP or VE SDE (``model.sde``), continuous-time
  DSM (``score_sde_loss``, ``model.weighting`` sigma2 or likelihood), sampled
  by reverse Euler-Maruyama, predictor-corrector (``eval.snr``,
  ``eval.corrector_steps``) or the probability-flow ODE (``eval.sampler=ode``);
  2-D test NLL by the probability-flow ODE with the exact trace
  (``eval.ode_solver``, ``eval.rtol``, ``eval.atol``; ``gmjax.flows.ode``).

``model.parameterization``: the network predicts the noise (``eps``; the score
is ``-eps / std``) or the score itself (``score``; ``eps = -std * score``).
Networks: a time-conditioned MLP (``model.hidden``) for 2-D data, a U-Net
(``model.channels``, ``model.num_res_blocks``) for images, which are scaled
to [-1, 1].

Writes the experiment contract into ``--workdir``: ``config.json``,
``metrics.jsonl`` (``loss``; ``test_loss`` at evaluations), ``metrics.json``,
``curves.png`` and ``checkpoints/``. 2-D data: ``metrics.json`` has the
two-sample distances of ``eval.num_samples`` samples to the test points
(``mmd``, ``energy_distance``, ``sliced_wasserstein``; ``adjusted_mmd`` and
``adjusted_w1`` against a second, independent test sample, so 0 is as good as
exact draws), ``sample_seconds``, and the likelihood: ``test_nll`` and
``nll_excess`` (the paired estimate of KL(p || q), where the density is
known) by the probability flow (``sde``), or ``elbo`` and
``nll_excess_bound`` (``-elbo`` minus the entropy, paired) by the bound
(``ddpm``); ``reverse.png`` shows samples along the reverse process as a row
of panels and ``score.png`` the learned score field on the plane at two noise
levels. Images: every sampler (``ddpm``: ancestral over all T steps and DDIM)
draws the same ``samples_drawn`` images -- ``eval.num_samples`` (at least 64)
with ``eval.feature_network`` (the workdir of a classifier run), else 64 --
and reports ``<sampler>_sample_seconds`` (compilation excluded) and, with the
feature network, ``<sampler>_frechet_distance`` of the first
``eval.num_samples`` draws to as many test images; ``samples.png`` is an 8x8
grid of the headline sampler's first draws; ``bits_per_dim`` and ``test_nll``
come from the bound on ``eval.nll_examples`` test images (``ddpm``;
``nll_seconds``, compilation included).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from typing import Any, Callable, Dict, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gmjax import experiment, viz
from gmjax import metrics as M
from gmjax.data import BatchIterator, load_dataset
from gmjax.data.toy import TOY_DENSITIES
from gmjax.flows.ode import ODE_SOLVERS, ODEOptions, integrate
from gmjax.nets.time_mlp import TimeMLP
from gmjax.nets.unet import UNet
from gmjax.objectives.diffusion import SDE_WEIGHTINGS, ddpm_loss, ddpm_vlb, ncsn_loss, \
    score_sde_loss
from gmjax.objectives.diffusion_process import (NOISE_SCHEDULES, SDE, SDES, Schedule, as_rows,
                                                make_schedule, make_sde)
from gmjax.samplers.diffusion import (ANCESTRAL_VARIANCES, ancestral_sample,
                                      annealed_langevin_sample, ddim_sample,
                                      ddim_timesteps,
                                      euler_maruyama_sample, geometric_sigmas,
                                      predictor_corrector_sample, probability_flow_log_prob,
                                      probability_flow_sample, probability_flow_velocity)
from gmjax.training import (OPTIMIZERS, SCHEDULES, TrainState, make_optimizer, make_train_step,
                            read_jsonl)

IMAGE_SHAPES = {"digits": (8, 8, 1), "fashion_mnist": (28, 28, 1), "mnist": (28, 28, 1)}
TOY_DIM = 2  # every toy density is 2-D
FAMILIES = ("ddpm", "ncsn", "sde")
PARAMETERIZATIONS = ("eps", "score")
# eval.sampler: "default" is the family's first sampler.
FAMILY_SAMPLERS = {"ddpm": ("ancestral", "ddim"), "ncsn": ("langevin",),
                   "sde": ("predictor_corrector", "euler_maruyama", "ode")}
SAMPLERS = ("default", *sorted({s for names in FAMILY_SAMPLERS.values() for s in names}))
GRID = 8           # samples.png of images: GRID x GRID
PATH_POINTS = 2000  # points drawn for reverse.png
QUIVER = 25        # score.png: QUIVER x QUIVER arrows
SCORE_LEVELS = (0.02, 0.2)  # score.png: noise levels, as fractions of the way to the prior


def data_names():
    """The image data sets and every toy density."""
    return [*IMAGE_SHAPES, *TOY_DENSITIES]


CHOICES = {"data.name": data_names, "model.family": FAMILIES,
           "model.parameterization": PARAMETERIZATIONS, "model.schedule": NOISE_SCHEDULES,
           "model.sde": SDES, "model.weighting": SDE_WEIGHTINGS, "eval.sampler": SAMPLERS,
           "eval.variance": ANCESTRAL_VARIANCES, "eval.ode_solver": ODE_SOLVERS,
           "optim.name": OPTIMIZERS, "optim.schedule": SCHEDULES}
POSITIVE = ("data.batch_size", "train.steps", "train.log_every", "train.checkpoint_every",
            "train.steps_per_call", "optim.lr", "model.embed_dim")


def is_image(config: ml_collections.ConfigDict) -> bool:
    return config.data.name in IMAGE_SHAPES


def data_shape(config: ml_collections.ConfigDict) -> Tuple[int, ...]:
    return IMAGE_SHAPES[config.data.name] if is_image(config) else (TOY_DIM,)


def _positive_int(config: ml_collections.ConfigDict, path: str, minimum: int = 1) -> int:
    value = experiment.get_field(config, path)
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise experiment.ConfigError(f"--config.{path}={value!r} must be an integer >= {minimum}")
    return int(value)


def _positive(config: ml_collections.ConfigDict, path: str) -> float:
    value = experiment.get_field(config, path)
    if not value > 0:
        raise experiment.ConfigError(f"--config.{path}={value!r} must be positive")
    return float(value)


# --- the model -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Diffusion:
    """A network with its forward process: the noise std at a conditioning value, the noise
    prediction ``eps`` and the score ``score`` of either parameterization, and the loss.

    The conditioning value ``c`` ``[n]`` is the step index (``ddpm``), the noise level sigma
    (``ncsn``) or the time t in [0, 1] (``sde``).
    """

    family: str
    net: nn.Module
    parameterization: str
    schedule: Optional[Schedule] = None
    sigmas: Optional[np.ndarray] = None  # ncsn: decreasing
    sde: Optional[SDE] = None
    t_min: float = 1e-5
    weighting: str = "sigma2"

    def std(self, c: jax.Array) -> jax.Array:  # [n]
        if self.family == "ddpm":
            return jnp.sqrt(1.0 - self.schedule.alpha_bars[c])
        if self.family == "ncsn":
            return c
        return self.sde.marginal(c)[1]

    def net_time(self, c: jax.Array) -> jax.Array:
        """What the network is conditioned on: the step, log sigma mapped to [0, 1], or t."""
        if self.family != "ncsn":
            return c
        lo, hi = float(np.log(self.sigmas[-1])), float(np.log(self.sigmas[0]))
        return (jnp.log(c) - lo) / max(hi - lo, 1e-12)

    def eps(self, params, x: jax.Array, c: jax.Array) -> jax.Array:
        out = self.net.apply(params, x, self.net_time(c))
        return out if self.parameterization == "eps" else -as_rows(self.std(c), x) * out

    def score(self, params, x: jax.Array, c: jax.Array) -> jax.Array:
        out = self.net.apply(params, x, self.net_time(c))
        return -out / as_rows(self.std(c), x) if self.parameterization == "eps" else out

    def loss(self):
        if self.family == "ddpm":
            return ddpm_loss(self.eps, self.schedule)
        if self.family == "ncsn":
            return ncsn_loss(self.score, self.sigmas)
        return score_sde_loss(self.score, self.sde, t_min=self.t_min, weighting=self.weighting)

    def level(self, fraction: float) -> float:
        """The conditioning value ``fraction`` of the way from the data to the prior."""
        if self.family == "ddpm":
            return int(round(fraction * (self.schedule.num_steps - 1)))
        if self.family == "ncsn":
            lo, hi = np.log(self.sigmas[-1]), np.log(self.sigmas[0])
            return float(np.exp(lo + fraction * (hi - lo)))
        return float(fraction)

    def describe_level(self, fraction: float) -> str:
        value = self.level(fraction)
        return {"ddpm": f"t = {value + 1}", "ncsn": f"sigma = {value:.3g}",
                "sde": f"t = {value:g}"}[self.family]


def build_model(config: ml_collections.ConfigDict) -> Diffusion:
    """The ``Diffusion`` of ``config.model`` for the config's data (reads exactly the model
    fields the run uses; raises ``ConfigError`` for a bad value)."""
    m = config.model
    family = m.family
    if family == "ddpm":
        steps = _positive_int(config, "model.num_steps")
        try:
            process = dict(schedule=make_schedule(m.schedule, steps))
        except ValueError as e:
            raise experiment.ConfigError(f"bad --config.model.schedule: {e}") from None
        max_time = float(steps)
    elif family == "ncsn":
        levels = _positive_int(config, "model.num_levels")
        try:
            process = dict(sigmas=geometric_sigmas(m.sigma_max, m.sigma_min, levels))
        except ValueError as e:
            raise experiment.ConfigError(f"bad --config.model.sigma_min / sigma_max: {e}") \
                from None
        max_time = 1.0
    else:
        options = ({"beta_min": m.beta_min, "beta_max": m.beta_max} if m.sde == "vp"
                   else {"sigma_min": m.sigma_min, "sigma_max": m.sigma_max})
        for name, value in options.items():
            if not value > 0:
                raise experiment.ConfigError(f"--config.model.{name}={value!r} must be positive")
        if m.sde == "vp" and not m.beta_min < m.beta_max:
            raise experiment.ConfigError(f"need --config.model.beta_min < beta_max, got "
                                         f"{m.beta_min} and {m.beta_max}")
        if m.sde == "ve" and not m.sigma_min < m.sigma_max:
            raise experiment.ConfigError(f"need --config.model.sigma_min < sigma_max, got "
                                         f"{m.sigma_min} and {m.sigma_max}")
        t_min = m.t_min
        if not 0 < t_min < 1:
            raise experiment.ConfigError(f"--config.model.t_min={t_min!r} must be in (0, 1)")
        process = dict(sde=make_sde(m.sde, **options), t_min=float(t_min),
                       weighting=m.weighting)
        max_time = 1.0
    shape = data_shape(config)
    if is_image(config):
        channels = tuple(m.channels)
        if not channels or min(channels) < 1:
            raise experiment.ConfigError(f"--config.model.channels={channels!r} must be "
                                         f"positive widths, one per level")
        factor = 2 ** (len(channels) - 1)
        if shape[0] % factor:
            raise experiment.ConfigError(
                f"--config.model.channels={channels!r} has {len(channels)} levels, which need "
                f"image sides divisible by {factor}; {config.data.name} images are "
                f"{shape[0]}x{shape[1]}")
        net = UNet(channels=channels, num_res_blocks=_positive_int(config,
                                                                   "model.num_res_blocks"),
                   embed_dim=m.embed_dim, max_time=max_time)
    else:
        hidden = tuple(m.hidden)
        if not hidden or min(hidden) < 1:
            raise experiment.ConfigError(f"--config.model.hidden={hidden!r} must be positive "
                                         f"widths")
        net = TimeMLP(features=(*hidden, shape[-1]), embed_dim=m.embed_dim, max_time=max_time)
    if m.embed_dim % 2:
        raise experiment.ConfigError(f"--config.model.embed_dim={m.embed_dim} must be even "
                                     f"(sine and cosine features)")
    return Diffusion(family=family, net=net, parameterization=m.parameterization, **process)


# --- the evaluation plan ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EvalPlan:
    """What the evaluation runs, read from ``config.eval`` (only the fields it uses)."""

    sampler: str
    options: Dict[str, Dict[str, Any]]   # sampler name -> its options
    num_samples: int                     # samples scored (0: none, images without features)
    nll_examples: int                    # test examples of the likelihood (0: none)
    ode: Optional[ODEOptions] = None     # the probability-flow ODE's solve
    t_min: Optional[float] = None        # sde: where sampling and likelihood stop
    panels: int = 0                      # 2-D: panels of reverse.png
    batch_size: int = 0                  # images: samples or examples per compiled call
    feature_network: str = ""            # images: a classifier workdir


def sampler_options(config: ml_collections.ConfigDict, name: str, model: Diffusion,
                    ode: Callable[[], ODEOptions], t_min: Callable[[], float]) -> Dict[str, Any]:
    e = config.eval
    if name in ("ancestral", "ddim"):
        clip = e.clip_x0
        if not clip >= 0:
            raise experiment.ConfigError(f"--config.eval.clip_x0={clip!r} must be >= 0 (0: no "
                                         f"clipping; images in [-1, 1]: 1)")
        clip = {"clip_x0": float(clip) if clip > 0 else None}
    if name == "ancestral":
        return {"variance": e.variance, **clip}
    if name == "ddim":
        steps = _positive_int(config, "eval.ddim_steps")
        total = model.schedule.num_steps
        if steps > total:
            raise experiment.ConfigError(
                f"--config.eval.ddim_steps={steps} must be at most the training steps "
                f"--config.model.num_steps={total} (DDIM visits a subsequence of them)")
        if not e.eta >= 0:
            raise experiment.ConfigError(f"--config.eval.eta={e.eta!r} must be >= 0 (0: "
                                         f"deterministic DDIM, 1: ancestral-like noise)")
        return {"num_steps": steps, "eta": float(e.eta), **clip}
    if name == "langevin":
        return {"steps_per_level": _positive_int(config, "eval.langevin_steps"),
                "step_size": _positive(config, "eval.step_size")}
    if name == "euler_maruyama":
        return {"num_steps": _positive_int(config, "eval.sample_steps"), "t_min": t_min()}
    if name == "predictor_corrector":
        return {"num_steps": _positive_int(config, "eval.sample_steps"),
                "snr": _positive(config, "eval.snr"),
                "num_corrector_steps": _positive_int(config, "eval.corrector_steps", 0),
                "t_min": t_min()}
    return {"options": ode(), "t_min": t_min()}  # the probability-flow ODE


def eval_plan(config: ml_collections.ConfigDict, model: Diffusion) -> EvalPlan:
    """The evaluation ``config.eval`` asks for (reads exactly the eval fields the run uses;
    raises ``ConfigError`` for a bad value or a sampler the family does not have)."""
    e = config.eval
    family = model.family
    valid = FAMILY_SAMPLERS[family]
    sampler = e.sampler
    if sampler == "default":
        sampler = valid[0]
    if sampler not in valid:
        raise experiment.ConfigError(
            f"--config.eval.sampler={e.sampler!r} is not a sampler of --config.model.family="
            f"{family!r}; valid choices: default, {', '.join(valid)}")
    cache: Dict[str, Any] = {}

    def ode() -> ODEOptions:
        if "ode" not in cache:
            solver = e.ode_solver
            spec = ODE_SOLVERS.get(solver)
            options = (dict(rtol=e.rtol, atol=e.atol) if spec.adaptive
                       else dict(num_steps=e.ode_steps))
            try:
                # Images: Hutchinson's estimator (the exact trace needs D Jacobian-vector
                # products per evaluation).
                trace = "hutchinson" if is_image(config) else "exact"
                cache["ode"] = ODEOptions(solver=solver, trace=trace, **options).check()
            except ValueError as error:
                raise experiment.ConfigError(f"bad --config.eval ODE options: {error}") \
                    from None
        return cache["ode"]

    def t_min() -> float:
        if "t_min" not in cache:
            value = e.t_min
            if not 0 < value < 1:
                raise experiment.ConfigError(f"--config.eval.t_min={value!r} must be in (0, 1)")
            cache["t_min"] = float(value)
        return cache["t_min"]

    run = valid if family == "ddpm" else (sampler,)  # DDPM: ancestral and DDIM side by side
    options = {name: sampler_options(config, name, model, ode, t_min) for name in run}
    image = is_image(config)
    likelihood = family in ("ddpm", "sde")
    nll_examples = _positive_int(config, "eval.nll_examples") if likelihood else 0
    if family == "sde" and likelihood:
        ode(), t_min()
    if image:
        batch_size = _positive_int(config, "eval.batch_size")
        network = e.feature_network
        if network and not os.path.isdir(network):
            raise experiment.ConfigError(
                f"--config.eval.feature_network={network!r} is not a directory; train the "
                f"feature network first (python experiments/classifier.py --config "
                f"experiments/configs/classifier_{config.data.name}.py --workdir {network}) "
                f"or leave it empty to skip the Fréchet distance")
        num_samples = _positive_int(config, "eval.num_samples") if network else 0
        return EvalPlan(sampler, options, num_samples, nll_examples, cache.get("ode"),
                        cache.get("t_min"), batch_size=batch_size, feature_network=network)
    return EvalPlan(sampler, options, _positive_int(config, "eval.num_samples"), nll_examples,
                    cache.get("ode"), cache.get("t_min"),
                    panels=_positive_int(config, "eval.panels", 2))


# --- checks and the contract -----------------------------------------------------------------


def check_data(config: ml_collections.ConfigDict) -> None:
    if is_image(config):
        for field in ("train_split", "test_split"):
            if field not in config.data:
                raise experiment.ConfigError(
                    f"--config.data.name={config.data.name!r} is an image data set: the config "
                    f"needs data.train_split and data.test_split (start from "
                    f"experiments/configs/diffusion_fashion_mnist.py)")
        if "channels" not in config.model:
            raise experiment.ConfigError(
                f"--config.data.name={config.data.name!r} is an image data set: the config "
                f"needs the U-Net's model.channels and model.num_res_blocks (start from "
                f"experiments/configs/diffusion_fashion_mnist.py)")
        experiment.check_splits(config)
        experiment.check_data_dir(config)
    else:
        for field in ("num_train", "num_test"):
            if field not in config.data:
                raise experiment.ConfigError(
                    f"--config.data.name={config.data.name!r} is a toy density: the config "
                    f"needs data.num_train and data.num_test (start from "
                    f"experiments/configs/diffusion_toy.py)")
        if "hidden" not in config.model:
            raise experiment.ConfigError(
                f"--config.data.name={config.data.name!r} is a toy density: the config needs "
                f"the MLP's model.hidden (start from experiments/configs/diffusion_toy.py)")
        for field in ("num_train", "num_test"):
            _positive_int(config, f"data.{field}", 2)


def check_config(config: ml_collections.ConfigDict) -> None:
    """What the run builds from ``config`` before it loads data: the model with its
    process and loss, the evaluation plan, the optimizer, mesh and fit options."""
    check_data(config)
    model = build_model(config)
    eval_plan(config, model)
    experiment.check_fit(config)


def unread_fields(config: ml_collections.ConfigDict) -> Dict[str, str]:
    """The fields a run of ``config`` does not read, and why (``gmjax.experiment.contract``)."""
    unread: Dict[str, str] = {}
    if is_image(config):
        unread.update({f"data.{f}": "image data sets are read by split (data.train_split, "
                       "data.test_split)" for f in ("num_train", "num_test") if f in config.data})
    else:
        unread["data.data_dir"] = "toy densities are sampled in memory; nothing is loaded"
        unread.update({f"data.{f}": "toy densities are drawn: data.num_train, data.num_test"
                       for f in ("train_split", "test_split") if f in config.data})
    family = config.model.family
    unread.update(experiment.unread_by(build_model, config, "model",
                                       f"not an option of model.family={family!r} on "
                                       f"{config.data.name}"))

    def plan(c):
        eval_plan(c, build_model(c))

    unread.update(experiment.unread_by(plan, config, "eval",
                                       f"not read by model.family={family!r} with eval.sampler="
                                       f"{config.eval.sampler!r} on {config.data.name}"))
    unread.update(experiment.unread_optimizer_fields(config))
    return unread


# --- data ------------------------------------------------------------------------------------


def load_data(config: ml_collections.ConfigDict):
    """``(train_x, test_x, test_dataset, num_levels)``: float32 in model space (images in
    [-1, 1])."""
    if is_image(config):
        data_dir = config.data.data_dir or None
        train = load_dataset(config.data.name, config.data.train_split, data_dir=data_dir)
        test = load_dataset(config.data.name, config.data.test_split, data_dir=data_dir)
    else:
        train = load_dataset(config.data.name, "train", n=config.data.num_train,
                             seed=config.seed)
        test = load_dataset(config.data.name, "test", n=config.data.num_test, seed=config.seed)

    def model_space(x):
        x = np.asarray(x)
        if x.dtype == np.uint8:
            x = x.astype(np.float32) / 255.0
        x = x.astype(np.float32)
        return 2.0 * x - 1.0 if is_image(config) else x

    return model_space(train.x), model_space(test.x), test, train.num_levels


# --- sampling --------------------------------------------------------------------------------


def sample_fn(model: Diffusion, name: str, options: Dict[str, Any], shape) -> Callable:
    """``(params, key) -> samples [shape]`` of sampler ``name``; jitted, params an argument."""

    def draw(params, key):
        eps = lambda x, t: model.eps(params, x, t)  # noqa: E731
        score = lambda x, c: model.score(params, x, c)  # noqa: E731
        if name == "ancestral":
            return ancestral_sample(eps, model.schedule, key, shape, **options)
        if name == "ddim":
            return ddim_sample(eps, model.schedule, key, shape, **options)
        if name == "langevin":
            return annealed_langevin_sample(score, model.sigmas, key, shape, **options)
        if name == "euler_maruyama":
            return euler_maruyama_sample(score, model.sde, key, shape, **options)
        if name == "predictor_corrector":
            return predictor_corrector_sample(score, model.sde, key, shape, **options)
        return probability_flow_sample(score, model.sde, key, shape, **options).y

    return jax.jit(draw)


def draw_samples(fn: Callable, params, key: jax.Array, n: int, chunk: int) -> np.ndarray:
    """``n`` samples from ``fn`` (drawing ``chunk`` per call, key folded per call)."""
    parts = []
    for i in range(0, n, chunk):
        parts.append(np.asarray(fn(params, jax.random.fold_in(key, i))))
    return np.concatenate(parts)[:n]


def timed_samples(fn: Callable, params, key: jax.Array, n: int, chunk: int
                  ) -> Tuple[np.ndarray, float]:
    """``draw_samples`` and its wall-clock seconds, compiled (ahead of time, without a
    warm-up draw) outside the timing."""
    if hasattr(fn, "lower"):
        fn = fn.lower(params, key).compile()
    else:
        jax.block_until_ready(fn(params, key))
    t0 = time.perf_counter()
    samples = draw_samples(fn, params, key, n, chunk)
    return samples, time.perf_counter() - t0


# --- likelihood ------------------------------------------------------------------------------


def in_chunks(fn: Callable, x: np.ndarray, chunk: int) -> np.ndarray:
    """``fn(part, i)`` over fixed-size chunks of the rows of ``x`` (the last one padded)."""
    out = []
    for i in range(0, len(x), chunk):
        part = x[i:i + chunk]
        padded = np.concatenate([part, np.repeat(part[-1:], chunk - len(part), 0)])
        out.append(np.asarray(fn(padded, i))[:len(part)])
    return np.concatenate(out)


def bound_nll(model: Diffusion, params, x: np.ndarray, key: jax.Array, variance: str,
              decoder: str, num_levels: int, chunk: int) -> np.ndarray:
    """DDPM's variational bound on ``-log p(x)`` per example, nats ``[n]``."""
    fn = jax.jit(lambda p, v, k: ddpm_vlb(model.eps, model.schedule, p, v, k, variance,
                                          decoder, num_levels)["nll"])
    return in_chunks(lambda part, i: fn(params, part, jax.random.fold_in(key, i)), x, chunk)


def flow_log_prob(model: Diffusion, params, x: np.ndarray, plan: EvalPlan, key: jax.Array,
                  chunk: int = 1000) -> Tuple[np.ndarray, float]:
    """``log p(x)`` by the probability-flow ODE (2-D: exact trace; images: Hutchinson's
    estimate, probes from ``key``), nats ``[n]``, and the mean velocity evaluations per
    solve."""

    @jax.jit
    def fn(p, v, k):
        log_p, result = probability_flow_log_prob(lambda y, t: model.score(p, y, t), model.sde,
                                                  v, options=plan.ode, key=k, t_min=plan.t_min)
        return log_p, result.nfe

    nfes = []

    def part(v, i):
        log_p, nfe = fn(params, v, jax.random.fold_in(key, i))
        nfes.append(int(nfe))
        return log_p

    return in_chunks(part, x, min(chunk, len(x))), float(np.mean(nfes))


# --- the run ---------------------------------------------------------------------------------


def two_sample_metrics(samples: np.ndarray, reference: np.ndarray, key: jax.Array
                       ) -> Dict[str, float]:
    """Distances of ``samples`` to the test points: MMD (median-heuristic RBF), energy
    distance, sliced W1 (as ``experiments/flow.py``), and ``adjusted_mmd`` /
    ``adjusted_w1``, which subtract the same distance between two disjoint test samples."""
    n = min(len(samples), len(reference) // 2)
    x = jnp.asarray(samples[:n])
    y1, y2 = jnp.asarray(reference[:n]), jnp.asarray(reference[n:2 * n])
    out = {name: float(M.METRICS.get(name)(x, y1, key))
           for name in ("mmd", "energy_distance", "sliced_wasserstein")}
    out["adjusted_mmd"] = float(M.adjusted_mmd(x, y1, y2))
    out["adjusted_w1"] = float(M.adjusted_w1(x, y1, y2, key))
    out["two_sample_points"] = n
    return out


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       progress: Optional[bool] = None) -> Dict[str, Any]:
    key = jax.random.PRNGKey(config.seed)
    init_key, train_key, eval_key, sample_key, nll_key = jax.random.split(key, 5)
    model = build_model(config)
    plan = eval_plan(config, model)
    train_x, test_x, test, num_levels = load_data(config)
    shape = data_shape(config)
    image = is_image(config)

    params = jax.jit(model.net.init)(init_key, jnp.asarray(train_x[:1]),
                                     jnp.zeros((1,), jnp.float32))
    optimizer = make_optimizer(config.optim, config.train.steps)
    mesh = experiment.config_mesh(config)
    state = TrainState.create(params, optimizer, train_key)
    loss = model.loss()
    step = make_train_step(loss, optimizer, mesh, steps_per_call=config.train.steps_per_call)
    batches = BatchIterator(train_x, config.data.batch_size, seed=config.seed,
                            process_index=jax.process_index(),
                            process_count=jax.process_count())
    eval_x = jnp.asarray(test_x[:min(len(test_x), 1000 if not image else 256)])
    eval_loss = jax.jit(loss)

    def evaluate(state, step_number):
        """The training loss on (up to 1,000; images 256) test examples, one fixed key."""
        value, _ = eval_loss(state.params, eval_x, eval_key)
        return {"test_loss": float(value)}

    name = f"{config.model.family} on {config.data.name}"
    result = experiment.fit_with_config(config, state, step, batches.batch, workdir, mesh,
                                        eval_fn=evaluate, progress=progress, desc=name)
    params = result.state.params

    metrics: Dict[str, Any] = {}
    headline = None
    if image:
        chunk = plan.batch_size
        network = None
        if plan.feature_network:
            from gmjax.models import load_feature_network

            network = load_feature_network(plan.feature_network)
            real = (test_x[:plan.num_samples] + 1.0) / 2.0
            real_features = network.features_and_probs(real)[0]
            metrics["feature_network"] = network.describe()
            metrics["frechet_samples"] = len(real)
        # Every sampler draws the same number: the Fréchet samples (at least the grid's).
        n = max(len(real), GRID * GRID) if network else GRID * GRID
        metrics["samples_drawn"] = n
        for sampler, options in plan.options.items():
            fn = sample_fn(model, sampler, options, (min(chunk, n), *shape))
            fake, seconds = timed_samples(fn, params, sample_key, n, min(chunk, n))
            metrics[f"{sampler}_sample_seconds"] = seconds
            metrics[f"{sampler}_sample_seconds_per_image"] = seconds / n
            if network:
                fake_features = network.features_and_probs(
                    np.clip((fake[:len(real)] + 1.0) / 2.0, 0, 1))[0]
                metrics[f"{sampler}_frechet_distance"] = M.frechet_distance(real_features,
                                                                           fake_features)
            if sampler == plan.sampler:
                headline = fake[:GRID * GRID]
                metrics["sample_seconds"] = seconds
                metrics["sample_seconds_per_image"] = seconds / n
                if network:
                    metrics["frechet_distance"] = metrics[f"{sampler}_frechet_distance"]
        if model.family == "ddpm":
            x = test_x[:plan.nll_examples]
            t0 = time.perf_counter()
            nll = bound_nll(model, params, x, nll_key, plan.options["ancestral"]["variance"],
                            "discretized", num_levels, min(chunk, len(x)))
            metrics["nll_seconds"] = time.perf_counter() - t0  # compilation included
            dims = math.prod(shape)
            metrics["test_nll"] = float(np.mean(nll))
            metrics["elbo"] = -metrics["test_nll"]
            metrics["bits_per_dim"] = metrics["test_nll"] / (dims * math.log(2.0))
            metrics["nll_examples"] = len(x)
        elif model.family == "sde":
            # Uniform dequantization u = (k + v) / L, y = 2u - 1 (so log p_U = log p_Y + D log 2)
            # and bits/dim = (-log p_U(u) + D log L) / (D log 2), as for the image flows.
            levels = num_levels
            x = test_x[:plan.nll_examples]
            k = np.rint((x + 1.0) / 2.0 * (levels - 1))
            v = np.asarray(jax.random.uniform(jax.random.fold_in(nll_key, 1), x.shape))
            y = (2.0 * (k + v) / levels - 1.0).astype(np.float32)
            log_p, nfe = flow_log_prob(model, params, y, plan, nll_key, min(chunk, len(y)))
            dims = math.prod(shape)
            log_p_u = log_p + dims * math.log(2.0)
            metrics["bits_per_dim"] = float(np.mean(-log_p_u + dims * math.log(levels))
                                            / (dims * math.log(2.0)))
            metrics["test_nll"] = metrics["bits_per_dim"] * dims * math.log(2.0)
            metrics["nfe"] = nfe
            metrics["nll_examples"] = len(x)
    else:
        n = plan.num_samples
        density = getattr(test, "density", None)
        known = density is not None and density.has_log_prob
        for sampler, options in plan.options.items():
            fn = sample_fn(model, sampler, options, (n, *shape))
            samples, seconds = timed_samples(fn, params, sample_key, n, n)
            scores = two_sample_metrics(samples, test_x, sample_key)
            if sampler == plan.sampler:
                headline = samples
                metrics.update(scores, sample_seconds=seconds)
            if len(plan.options) > 1:
                metrics.update({f"{sampler}_{k}": v for k, v in scores.items()
                                if k != "two_sample_points"})
                metrics[f"{sampler}_sample_seconds"] = seconds
        x = test_x[:plan.nll_examples]
        log_p_true = float(np.mean(np.asarray(density.log_prob(x)))) if known and len(x) \
            else None
        if model.family == "sde":
            log_p, nfe = flow_log_prob(model, params, x, plan, nll_key)
            metrics["test_nll"] = -float(np.mean(log_p))
            metrics["nfe"] = nfe
            metrics["nll_examples"] = len(x)
            if log_p_true is not None:
                # Paired on the test points: an unbiased estimate of KL(p || q).
                metrics["nll_excess"] = metrics["test_nll"] + log_p_true
        elif model.family == "ddpm":
            nll = bound_nll(model, params, x, nll_key, plan.options["ancestral"]["variance"],
                            "gaussian", 0, min(1000, len(x)))
            metrics["elbo"] = -float(np.mean(nll))
            metrics["nll_examples"] = len(x)
            if log_p_true is not None:
                metrics["nll_excess_bound"] = -metrics["elbo"] + log_p_true
    metrics.update(train_seconds=result.train_seconds, steps=result.steps)

    if jax.process_index() == 0:
        write_figures(config, workdir, name, model, plan, params, test_x, headline, metrics)
    experiment.write_metrics(workdir, metrics)
    return metrics


# --- figures ---------------------------------------------------------------------------------


def reverse_path(model: Diffusion, plan: EvalPlan, params, key: jax.Array, panels: int
                 ) -> list:
    """``[(label, points [PATH_POINTS, 2])]``: states along the reverse process, from the
    prior to the samples; ``panels`` of them."""
    shape = (PATH_POINTS, TOY_DIM)
    if model.family == "ddpm":
        name = plan.sampler
        options = dict(plan.options[name], return_path=True)
        fn = ancestral_sample if name == "ancestral" else ddim_sample
        _, path = jax.jit(lambda p, k: fn(lambda x, t: model.eps(p, x, t), model.schedule,
                                          k, shape, **options))(params, key)
        path = np.asarray(path)
        total = model.schedule.num_steps
        # The paper time of each state of the path: after the reverse step from index k the
        # state is x_k (ancestral: k = T-1, ..., 0; DDIM: the previous index of the
        # subsequence, + 1, down to x_0).
        if name == "ancestral":
            times = np.arange(total - 1, -1, -1)
        else:
            taus = ddim_timesteps(total, options["num_steps"])
            times = np.concatenate([[0], taus[:-1] + 1])[::-1]
        prior = np.asarray(jax.random.normal(jax.random.split(key)[1], shape))
        picks = np.unique(np.round(np.linspace(0, len(path) - 1, panels - 1)).astype(int))
        out = [(f"x_T ~ N(0, I), T = {total}", prior)]
        for i in picks:
            label = "x_0: the samples" if times[i] == 0 else f"x_t, t = {int(times[i])}"
            out.append((label, path[i]))
        return out
    if model.family == "sde":
        x1 = model.sde.prior_sample(key, shape)
        velocity = probability_flow_velocity(lambda y, t: model.score(params, y, t), model.sde)
        options = plan.ode or ODEOptions()
        times = np.linspace(1.0, plan.t_min, panels)
        out = [("x_1 ~ prior, t = 1", np.asarray(x1))]
        solve = jax.jit(lambda y, t1: integrate(velocity, y, 1.0, t1, options=options,
                                                log_det=False).y)
        for t in times[1:]:
            out.append((f"t = {t:.2g}" if t > plan.t_min else f"t = {t:g} (samples)",
                        np.asarray(solve(x1, t))))
        return out
    # NCSN: annealed Langevin stopped after the first i levels, one start for all panels.
    options = plan.options["langevin"]
    start = jax.random.uniform(key, shape)
    out = [("start: uniform noise", np.asarray(start))]
    levels = len(model.sigmas)
    picks = np.unique(np.round(np.linspace(1, levels, panels - 1)).astype(int))
    for i in picks:
        x = jax.jit(lambda p, k, s: annealed_langevin_sample(
            lambda y, c: model.score(p, y, c), s, k, shape, x_init=start,
            denoise=bool(i == levels), **options))(params, key, model.sigmas[:i])
        label = (f"after sigma = {model.sigmas[i - 1]:.3g}" if i < levels else
                 "samples (denoised)")
        out.append((label, np.asarray(x)))
    return out


def write_figures(config, workdir: str, name: str, model: Diffusion, plan: EvalPlan, params,
                  test_x: np.ndarray, samples: np.ndarray, metrics: Dict[str, Any]) -> None:
    path = lambda f: os.path.join(workdir, f)  # noqa: E731
    if is_image(config):
        headline = (f"{metrics['bits_per_dim']:.3f} bits/dim (bound)" if "bits_per_dim" in
                    metrics else f"{plan.sampler} sampler")
        viz.save_image_grid(path("samples.png"), np.clip((samples + 1.0) / 2.0, 0, 1), GRID,
                            title=f"{name}: {plan.sampler} samples\n{headline}")
    else:
        write_toy_figures(config, workdir, name, model, plan, params, test_x, metrics)
    if os.path.exists(path("metrics.jsonl")):
        viz.plot_curves(path("curves.png"), read_jsonl(path("metrics.jsonl")),
                        names=("loss", "test_loss"),
                        labels={"loss": f"{config.model.family} training loss",
                                "test_loss": "the loss on test points"}, title=name)


def write_toy_figures(config, workdir, name, model, plan, params, test_x, metrics) -> None:
    """``reverse.png`` (a row of panels from the prior to the samples) and ``score.png``
    (the learned score on the plane at two noise levels, over the test points)."""
    import matplotlib.pyplot as plt

    from gmjax.viz.figure import panels, plane_axes, save_figure

    lo, hi = test_x.min(0), test_x.max(0)
    pad = 0.15 * (hi - lo).max()
    bounds = (lo[0] - pad, hi[0] + pad, lo[1] - pad, hi[1] + pad)
    columns = reverse_path(model, plan, params, jax.random.PRNGKey(config.seed + 1),
                           plan.panels)
    fig, axes = panels(1, len(columns) + 1, (3.0, 3.0))
    for ax, (title, points) in zip(axes[0], [("test data", test_x[:PATH_POINTS])] + columns):
        ax.scatter(points[:, 0], points[:, 1], s=1.5, alpha=0.4,
                   color="0.4" if title == "test data" else "C0")
        plane_axes(ax, title, bounds)
    sampler = "probability-flow ODE" if model.family == "sde" else plan.sampler
    save_figure(fig, os.path.join(workdir, "reverse.png"),
                f"{name}: the reverse process ({sampler}), energy distance "
                f"{metrics['energy_distance']:.4f}")

    xs = np.linspace(bounds[0], bounds[1], QUIVER)
    ys = np.linspace(bounds[2], bounds[3], QUIVER)
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2).astype(np.float32)
    score = jax.jit(lambda p, x, c: model.score(p, x, c))
    fig, axes = panels(1, len(SCORE_LEVELS), (4.2, 4.0))
    for ax, fraction in zip(axes[0], SCORE_LEVELS):
        level = model.level(fraction)
        c = jnp.full((len(grid),), level, jnp.int32 if model.family == "ddpm" else jnp.float32)
        s = np.asarray(score(params, jnp.asarray(grid), c))
        norm = np.linalg.norm(s, axis=1, keepdims=True)
        unit = s / np.maximum(norm, 1e-12)
        ax.scatter(test_x[:1000, 0], test_x[:1000, 1], s=1, color="0.6", alpha=0.5)
        arrows = ax.quiver(grid[:, 0], grid[:, 1], unit[:, 0], unit[:, 1],
                           np.log10(np.maximum(norm[:, 0], 1e-12)), cmap="viridis",
                           angles="xy", pivot="mid", scale_units="xy",
                           scale=1.0 / (0.8 * (xs[1] - xs[0])), width=0.004)
        plane_axes(ax, f"score direction at {model.describe_level(fraction)}", bounds)
        fig.colorbar(arrows, ax=ax, label="log10 |score|")
    save_figure(fig, os.path.join(workdir, "score.png"),
                f"{name}: the learned score grad_x log p_t(x)")
    plt.close("all")


EXPERIMENT = experiment.Experiment(train_and_evaluate, choices=CHOICES, positive=POSITIVE,
                                   check=check_config, unread=unread_fields)

if __name__ == "__main__":
    experiment.main(EXPERIMENT)
