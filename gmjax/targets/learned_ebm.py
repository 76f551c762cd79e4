"""A learned energy-based model as a target: p(x) ∝ exp(-E_theta(x)) on R^d.

An energy network trained on data by contrastive divergence
(``experiments/ebm.py``; Du and Mordatch, "Implicit generation and modeling
with energy-based models", NeurIPS 2019) defines an unnormalized density

    log_prob(x) = -E_theta(x),

with an unknown normalizing constant (``log_normalizer = None``) and no exact
sampler, which is what TemperFlow (Qiu and Wang, JASA 2024) and the MCMC
baselines are built to sample. Trained on a mixture such as ``8gaussians``
it is multimodal, with modes near the data's; ``modes`` (optional) gives
that layout to ``quality_metrics``.

The target takes the energy as a pure function with its parameters, so it
knows nothing of how it was trained or stored;
``gmjax.models.ebm.learned_ebm_target(workdir)`` builds it from a trained run.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp

from gmjax.targets.base import Modes, Target
from gmjax.targets.registry import TARGETS

PyTree = Any
EnergyFn = Callable[[PyTree, jax.Array], jax.Array]  # (params, x [m, d]) -> energies [m]


@functools.lru_cache(maxsize=16)
def _compiled(energy_fn: EnergyFn) -> Callable:
    """The jitted ``(params, x [..., d]) -> -E(x) [...]`` of one energy function.

    Keyed by the function, so targets built on one network (the checkpoints
    of a run) share the compilation; inside an outer ``jit`` it is inlined.
    """

    @jax.jit
    def log_prob(params, x):
        flat = x.reshape(-1, x.shape[-1])
        return -energy_fn(params, flat).reshape(x.shape[:-1])

    return log_prob


class LearnedEBMTarget(Target):
    """``p(x) ∝ exp(-E_theta(x))`` for an energy network ``E_theta: R^d -> R``.

    Args:
      energy_fn: ``(params, x [m, d]) -> [m]`` (e.g. a Flax module's ``apply``).
      params: its parameters.
      dim: d.
      modes: the mode layout for ``quality_metrics`` (the data's mixture
        components, for an energy trained on one), or ``None``.
      source: where the energy came from (a workdir), for ``repr``.
    """

    name = "learned_ebm"
    log_normalizer: Optional[float] = None

    def __init__(self, energy_fn: EnergyFn, params: PyTree, dim: int,
                 modes: Optional[Modes] = None, source: str = ""):
        super().__init__(dim)
        self.energy_fn, self.params = energy_fn, params
        self._modes, self.source = modes, source
        self._log_prob = _compiled(energy_fn)

    def log_prob(self, x: jax.Array) -> jax.Array:  # [..., d] -> [...]
        """``-E_theta(x)``, unnormalized."""
        x = jnp.asarray(x, jnp.float32)
        if x.shape[-1:] != (self.dim,):
            raise ValueError(f"learned_ebm takes x [..., {self.dim}], got shape {x.shape}")
        return self._log_prob(self.params, x)

    def modes(self) -> Optional[Modes]:
        return self._modes

    def __repr__(self) -> str:
        where = f", {self.source}" if self.source else ""
        return f"LearnedEBMTarget(dim={self.dim}{where})"


@TARGETS.register("learned_ebm")
def learned_ebm(energy_fn: Optional[EnergyFn] = None, params: PyTree = None,
                dim: Optional[int] = None, **options: Any) -> LearnedEBMTarget:
    """``build_target("learned_ebm", energy_fn=..., params=..., dim=...)``.

    The options are those of `LearnedEBMTarget`. An energy trained into a
    workdir gives them through ``gmjax.models.ebm.learned_ebm_target(workdir)``
    (which ``experiments/temperflow.py`` calls for ``data.options.workdir``).
    """
    hint = ("to sample the energy trained into a workdir, use "
            "gmjax.models.ebm.learned_ebm_target(workdir)")
    if "workdir" in options:
        raise ValueError(f"target learned_ebm takes the network, not a workdir; {hint}")
    given = dict(energy_fn=energy_fn, params=params, dim=dim)
    missing = [name for name, value in given.items() if value is None]
    if missing:
        raise ValueError(f"target learned_ebm needs the options {', '.join(given)} (missing "
                         f"{', '.join(missing)}); {hint}")
    return LearnedEBMTarget(energy_fn, params, dim, **options)


__all__ = ["LearnedEBMTarget", "learned_ebm"]
