"""Targets: densities known up to a constant, p(x) ∝ exp(-E(x)) on R^d.

A sampler sees a target only through its unnormalized ``log_prob(x) = -E(x)``
(and its gradient). For evaluation the synthetic targets also carry what a
sampler must not use: an exact sampler, the log normalizing constant
``log Z = log ∫ exp(-E)`` where it is known, and the mode layout scored by
``gmjax.metrics.mode_metrics``.

Targets are ``distrax.Distribution`` subclasses, as the design card asks, so
``target.log_prob(x)`` and ``target.sample(seed=key, sample_shape=n)`` read
as they do for any distribution; ``Tempered(target, beta)`` is the tempered
density p_beta(x) ∝ exp(-beta E(x)) of TemperFlow (Qiu and Wang, 2024).
"""

from __future__ import annotations

from typing import Dict, NamedTuple, Optional, Tuple

import distrax
import jax
import jax.numpy as jnp
import numpy as np

from gmjax.metrics.modes import mode_metrics


class Modes(NamedTuple):
    """Where a multimodal target's modes sit, for ``mode_metrics``.

    ``centres [K, d]``, ``sd`` (scalar or ``[K]``: the radius unit of the
    high-quality ball) and the true ``weights [K]``. For targets whose modes
    are regions rather than points (the Clayton copula's sign orthants),
    ``centres`` are representative points and the experiment scores modes by
    its own rule (see the target's docstring).
    """

    centres: jax.Array
    sd: jax.Array
    weights: jax.Array


class Target(distrax.Distribution):
    """An unnormalized density on ``R^dim``: subclasses define ``log_prob``.

    ``log_prob`` may omit the normalizing constant; ``log_normalizer`` is
    ``log ∫ exp(log_prob(x)) dx`` when known (0.0 for a normalized density)
    and ``None`` otherwise. ``sample`` draws exact samples when the target
    has an exact sampler and raises ``NotImplementedError`` otherwise.
    """

    name: str = "target"
    log_normalizer: Optional[float] = None

    def __init__(self, dim: int):
        self._dim = int(dim)

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def event_shape(self) -> Tuple[int, ...]:
        return (self._dim,)

    @property
    def batch_shape(self) -> Tuple[int, ...]:
        return ()

    def energy(self, x: jax.Array) -> jax.Array:  # [..., d] -> [...]
        """``E(x) = -log_prob(x)``."""
        return -self.log_prob(x)

    def modes(self) -> Optional[Modes]:
        """The mode layout for mode metrics, or ``None`` when it has none."""
        return None

    def weight_indicators(self, x: jax.Array) -> Optional[jax.Array]:
        """``[n, k]`` 0/1 indicators whose means are the mode weights a sampler should hit.

        Default: the nearest mode centre (for targets with ``modes()``), else
        ``None``. Their means under the target are ``true_weights()``.
        """
        modes = self.modes()
        if modes is None:
            return None
        d2 = jnp.sum(jnp.square(x[:, None, :] - modes.centres[None]), axis=-1)
        return jax.nn.one_hot(jnp.argmin(d2, axis=1), len(modes.centres))

    def true_weights(self) -> Optional[np.ndarray]:
        """The means of ``weight_indicators`` under the target (``None`` where unknown)."""
        modes = self.modes()
        if modes is None:
            return None
        w = np.asarray(modes.weights, np.float64)
        return w / w.sum()

    def quality_metrics(self, samples: np.ndarray) -> Dict[str, float]:
        """How well ``samples`` cover this target's modes (metric name -> value).

        Default, for targets with ``modes()``: the VEEGAN / PacGAN mode metrics
        (``gmjax.metrics.mode_metrics``) and ``mode_weight_max_error``, the
        largest |q_k - w_k|; ``{}`` for targets without modes.
        """
        modes = self.modes()
        if modes is None:
            return {}
        mm = mode_metrics(jnp.asarray(samples), modes.centres, modes.sd, modes.weights)
        w = self.true_weights()
        return {"modes_captured": int(mm.modes_captured), "num_modes": int(len(w)),
                "high_quality_frac": float(mm.high_quality_frac),
                "mode_weight_tv": float(mm.mode_weight_tv),
                "mode_weight_max_error": float(np.max(np.abs(np.asarray(mm.mode_weights) - w)))}

    def _sample_n(self, key: jax.Array, n: int) -> jax.Array:
        raise NotImplementedError(f"target {self.name!r} has no exact sampler")


class Tempered(distrax.Distribution):
    """``p_beta(x) ∝ exp(-beta E(x))``: the tempered target, unnormalized.

    ``log_prob(x) = beta * target.log_prob(x)``. For ``beta < 1`` the modes of
    the target are flattened and joined, which is what lets a flow fitted at
    small beta see all of them (Qiu and Wang, 2024, Section 3). Exact samples
    exist only at ``beta = 1`` (from the target itself).
    """

    def __init__(self, target: Target, beta: jax.Array | float):
        self.target = target
        self.beta = beta

    @property
    def event_shape(self) -> Tuple[int, ...]:
        return self.target.event_shape

    @property
    def batch_shape(self) -> Tuple[int, ...]:
        return ()

    def log_prob(self, x: jax.Array) -> jax.Array:  # [..., d] -> [...]
        return jnp.asarray(self.beta) * self.target.log_prob(x)

    def energy(self, x: jax.Array) -> jax.Array:
        return -self.log_prob(x)

    def _sample_n(self, key: jax.Array, n: int) -> jax.Array:
        raise NotImplementedError("tempered targets have no exact sampler; sample the target "
                                  "itself at beta = 1")
