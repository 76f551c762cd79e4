"""Energy-based models: the energy network from a config, and a trained one from its workdir.

``build_energy(model_config, data_shape)`` makes the network ``E_theta``
(``gmjax.nets.energy``: ``mlp`` for vectors, ``conv`` for images);
``experiments/ebm.py`` trains it by contrastive divergence with Langevin
negatives from a replay buffer (``gmjax.objectives.ebm``).
``load_ebm(workdir)`` reads a trained run back, and
``learned_ebm_target(workdir)`` makes it a sampling target,
``p(x) ∝ exp(-E_theta(x))`` (``gmjax.targets.learned_ebm``), for TemperFlow
and the MCMC baselines.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Mapping, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from gmjax.data.toy import TOY_DENSITIES
from gmjax.models.restore import restore_state_fields, saved_steps
from gmjax.nets.energy import EnergyConv, EnergyMLP, energy_activation
from gmjax.targets.base import Modes
from gmjax.targets.learned_ebm import LearnedEBMTarget

PyTree = Any
ENERGY_NETS = ("mlp", "conv")
IMAGE_SHAPES = {"digits": (8, 8, 1), "fashion_mnist": (28, 28, 1), "mnist": (28, 28, 1)}


def data_shape_of(data_name: str) -> Tuple[int, ...]:
    """The shape of one example of ``data_name``: ``(2,)`` for the toy densities, ``(h, w,
    c)`` for the image data sets.

    Raises:
      ValueError: for any other name, listing the valid ones.
    """
    if data_name in IMAGE_SHAPES:
        return IMAGE_SHAPES[data_name]
    if data_name in TOY_DENSITIES.names():
        return (2,)
    raise ValueError(f"unknown data set {data_name!r} for an energy; valid choices: "
                     f"{', '.join([*TOY_DENSITIES.names(), *IMAGE_SHAPES])}")


def build_energy(model_config: Any, data_shape: Sequence[int]):
    """The energy network ``model.net`` names, for data of shape ``data_shape``.

    Reads ``model.net``, ``model.activation``, ``model.base_scale`` and
    ``model.hidden`` (``mlp``, vectors ``[d]``) or ``model.channels``
    (``conv``, images ``[h, w, c]``).

    Raises:
      ValueError: an unknown net or activation, a net that does not fit the
        data's shape, or a negative ``base_scale``.
    """
    name = model_config["net"]
    if name not in ENERGY_NETS:
        raise ValueError(f"unknown energy net {name!r}; valid choices: {', '.join(ENERGY_NETS)}")
    activation = model_config["activation"]
    energy_activation(activation)
    base_scale = float(model_config["base_scale"])
    if base_scale < 0:
        raise ValueError(f"base_scale must be >= 0 (0: no confining term), got {base_scale}")
    data_shape = tuple(int(s) for s in data_shape)
    if name == "mlp":
        if len(data_shape) != 1:
            raise ValueError(f"energy net 'mlp' takes vectors; data of shape {data_shape} "
                             f"need net 'conv'")
        hidden = tuple(int(h) for h in model_config["hidden"])
        if not hidden or min(hidden) < 1:
            raise ValueError(f"hidden must be a non-empty list of widths >= 1, got {hidden}")
        return EnergyMLP(hidden=hidden, activation=activation, base_scale=base_scale)
    if len(data_shape) != 3:
        raise ValueError(f"energy net 'conv' takes images [h, w, c]; data of shape "
                         f"{data_shape} need net 'mlp'")
    channels = tuple(int(c) for c in model_config["channels"])
    if not channels or min(channels) < 1:
        raise ValueError(f"channels must be a non-empty list of counts >= 1, got {channels}")
    return EnergyConv(channels=channels, activation=activation, base_scale=base_scale)


def abstract_params(net, data_shape: Sequence[int]) -> PyTree:
    """The parameters' shapes and dtypes (``jax.ShapeDtypeStruct`` leaves), built lazily."""
    x = jnp.zeros((1, *data_shape), jnp.float32)
    return jax.eval_shape(net.init, jax.random.PRNGKey(0), x)


def data_modes(data_name: str) -> Optional[Modes]:
    """The mode layout of a toy Gaussian mixture (``8gaussians``, ``25gaussians``): its
    centres, standard deviation and equal weights; ``None`` for other data."""
    density = TOY_DENSITIES.get(data_name) if data_name in TOY_DENSITIES.names() else None
    centres = getattr(density, "centers", None)
    if centres is None:
        return None
    k = len(centres)
    return Modes(jnp.asarray(centres, jnp.float32), jnp.asarray(density.sd, jnp.float32),
                 jnp.full((k,), 1.0 / k, jnp.float32))


class EBMWorkdirError(FileNotFoundError):
    """No trained energy at a path (missing, no checkpoint, unreadable); says what to run."""


@dataclasses.dataclass(frozen=True)
class TrainedEBM:
    """An energy network read back from a run of ``experiments/ebm.py``."""

    net: Any
    params: PyTree
    data_shape: Tuple[int, ...]
    step: int
    config: Mapping[str, Any]
    workdir: str

    def energy(self, x: jax.Array) -> jax.Array:  # [n, ...] -> [n]
        return self.net.apply(self.params, x)


def train_hint(workdir: str) -> str:
    """What trains (or, rerun, resumes) an energy into ``workdir``."""
    return f"the ebm experiment with config ebm_toy and --workdir {workdir}"


def load_ebm(workdir: str, step: Optional[int] = None) -> TrainedEBM:
    """Reads the energy trained in ``workdir`` (checkpoint ``step``, default the latest).

    Reads ``config.json`` (the network and the data) and only the ``params``
    field of the saved state; nothing in ``workdir`` is modified.

    Raises:
      EBMWorkdirError: the workdir, its ``config.json`` or the checkpoint is
        missing or unreadable; the message says what to run.
    """
    if not workdir:
        raise ValueError("load_ebm needs the workdir of a trained energy, e.g. "
                         "'runs/ebm_8gaussians'")
    workdir = os.path.abspath(os.fspath(workdir))
    config_path = os.path.join(workdir, "config.json")
    if not os.path.isfile(config_path):
        what = "does not exist" if not os.path.isdir(workdir) else "has no config.json"
        raise EBMWorkdirError(f"no trained energy in {workdir}: the directory {what}. Train "
                              f"one with {train_hint(workdir)}.")
    try:
        with open(config_path) as f:
            config = json.load(f)
        data_shape = data_shape_of(config["data"]["name"])
        net = build_energy(config["model"], data_shape)
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise EBMWorkdirError(f"{config_path} is not the config of an EBM run "
                              f"({type(e).__name__}: {e}); train one with "
                              f"{train_hint(workdir)}.") from e
    directory = os.path.join(workdir, "checkpoints")
    steps = saved_steps(directory)
    if not steps:
        raise EBMWorkdirError(f"{workdir} has no checkpoint yet (nothing in {directory}); "
                              f"train (or resume) with {train_hint(workdir)}.")
    step = max(steps) if step is None else int(step)
    if step not in steps:
        raise EBMWorkdirError(f"{directory} has no step {step}; it holds steps {steps}")
    try:
        params = restore_state_fields(directory, step,
                                      {"params": abstract_params(net, data_shape)})["params"]
    except Exception as e:  # orbax raises many types; all mean "unreadable"
        raise EBMWorkdirError(f"checkpoint {os.path.join(directory, str(step))} could not be "
                              f"read ({type(e).__name__}: {e}); move {workdir} away and "
                              f"retrain with {train_hint(workdir)}.") from e
    return TrainedEBM(net=net, params=params, data_shape=data_shape, step=step, config=config,
                      workdir=workdir)


def learned_ebm_target(workdir: str, step: Optional[int] = None) -> LearnedEBMTarget:
    """``p(x) ∝ exp(-E_theta(x))`` of the energy trained in ``workdir`` (vectors only),
    with the data's mode layout where the data are a toy Gaussian mixture.

    Raises:
      EBMWorkdirError: as ``load_ebm``.
      ValueError: the energy is over images (a target is a density on R^d).
    """
    run = load_ebm(workdir, step)
    if len(run.data_shape) != 1:
        raise ValueError(f"the energy in {run.workdir} is over images {run.data_shape}; a "
                         f"sampling target needs vectors (an 'mlp' energy)")
    return LearnedEBMTarget(run.net.apply, run.params, run.data_shape[0],
                            modes=data_modes(run.config["data"]["name"]),
                            source=f"{run.workdir} step {run.step}")


def energy_on_grid(energy_fn, bounds: Sequence[float], resolution: int = 200
                   ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(xs, ys, E [resolution, resolution])`` of a 2-D energy on a grid over ``bounds``."""
    xmin, xmax, ymin, ymax = bounds
    xs, ys = np.linspace(xmin, xmax, resolution), np.linspace(ymin, ymax, resolution)
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2).astype(np.float32)
    return xs, ys, np.asarray(energy_fn(grid)).reshape(resolution, resolution)


def grid_log_normalizer(energy_fn, bounds: Sequence[float], resolution: int = 400) -> float:
    """``log Z ≈ log sum_grid exp(-E) dx dy``, a Riemann sum over the box ``bounds`` (2-D).

    Exact up to the grid's error and the mass outside the box; with the
    confining term of ``gmjax.nets.energy`` that mass decays like a Gaussian's.
    """
    xs, ys, energy = energy_on_grid(energy_fn, bounds, resolution)
    cell = (xs[1] - xs[0]) * (ys[1] - ys[0])
    neg = -energy.astype(np.float64).ravel()
    top = neg.max()
    return float(top + np.log(np.exp(neg - top).sum() * cell))


__all__ = ["ENERGY_NETS", "IMAGE_SHAPES", "EBMWorkdirError", "TrainedEBM", "abstract_params",
           "build_energy", "data_modes", "data_shape_of", "energy_on_grid",
           "grid_log_normalizer", "learned_ebm_target", "load_ebm"]
