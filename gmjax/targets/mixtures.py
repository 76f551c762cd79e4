"""Gaussian-mixture targets: the circle, grid and cross examples of TemperFlow.

A mixture of K Gaussians on R^d,

    p(x) = sum_k w_k N(x; mu_k, Sigma_k),
    log N(x; mu, Sigma) = -(d/2) log(2 pi) - sum_i log L_ii - |L^{-1}(x - mu)|^2 / 2,

with Sigma = L L^T (Cholesky). ``log_prob`` is the normalized log density
(``log_normalizer = 0``), evaluated as a logsumexp over components so that
points far from every mode give large negative but finite values (and finite
gradients) instead of log(0).

``gaussian_mixture`` is any such mixture from its options (``means``,
``scales``, ``weights``), e.g. in a config::

    config.data.name = "gaussian_mixture"
    config.data.options.means = ((-4.0, 0.0), (4.0, 0.0))
    config.data.options.scales = (0.5, 1.0)
    config.data.options.weights = (0.7, 0.3)

The other three registered targets are the two-dimensional multimodal
examples of Qiu and Wang (2024), "Efficient multimodal sampling via tempered
distribution flow", JASA, Section 5.1:

* ``circle``: 8 equally weighted modes at 5 (cos 2 pi i / 8, sin 2 pi i / 8),
  isotropic sd 0.5;
* ``grid``: 25 equally weighted modes at linspace(-5, 5, 5)^2, sd 0.3;
* ``cross``: at each of the centres (+-3, +-3) two components with covariances
  [[1, 0.9], [0.9, 1]] and [[1, -0.9], [-0.9, 1]] (8 components, weight 1/8
  each), so each centre carries an "X"-shaped mode of weight 1/4.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from gmjax.targets.base import Modes, Target
from gmjax.targets.registry import TARGETS

_LOG_2PI = math.log(2.0 * math.pi)


class GaussianMixtureTarget(Target):
    """``p(x) = sum_k w_k N(x; mu_k, Sigma_k)`` on ``R^d``, normalized, with an exact sampler.

    Args:
        means: ``[K, d]`` component means.
        covariances: ``[K, d, d]`` component covariances (symmetric positive
            definite). Exactly one of ``covariances`` and ``scale`` is given.
        weights: ``[K]`` mixture weights (normalized here); uniform by default.
        scale: isotropic component sd, a scalar or ``[K]``: Sigma_k = scale_k^2 I.
        modes: the mode layout for ``mode_metrics``; by default the components
            themselves, ``Modes(means, sd, weights)`` with sd the isotropic
            scale, or for general covariances the per-component root mean
            marginal variance ``sqrt(tr(Sigma_k) / d)``.
        name: the target's name.
        dtype: floating dtype of the stored parameters and of samples.

    The Cholesky factors and their inverses are computed once in float64
    numpy; ``log_prob`` then costs one ``[K, d, d]`` matrix-vector product per
    point.
    """

    log_normalizer: Optional[float] = 0.0

    def __init__(
        self,
        means: Any,
        covariances: Any = None,
        weights: Any = None,
        *,
        scale: Any = None,
        modes: Optional[Modes] = None,
        name: str = "gaussian_mixture",
        dtype: Any = jnp.float32,
    ):
        means64 = np.asarray(means, np.float64)
        if means64.ndim != 2:
            raise ValueError(f"means must be [K, d], got shape {means64.shape}")
        k, d = means64.shape
        super().__init__(d)
        self.name = name
        self.num_components = int(k)
        dtype = jnp.dtype(dtype)
        self._dtype = dtype

        if (covariances is None) == (scale is None):
            raise ValueError("give exactly one of covariances and scale")
        if scale is not None:
            scale64 = np.broadcast_to(np.asarray(scale, np.float64), (k,))
            if np.any(scale64 <= 0):
                raise ValueError("scale must be positive")
            chol = scale64[:, None, None] * np.eye(d)[None]  # [K, d, d]
            default_sd = (float(scale64[0]) if np.all(scale64 == scale64[0])
                          else scale64)
        else:
            cov64 = np.broadcast_to(np.asarray(covariances, np.float64), (k, d, d))
            if not np.allclose(cov64, np.swapaxes(cov64, -1, -2)):
                raise ValueError("covariances must be symmetric")
            chol = np.linalg.cholesky(cov64)  # [K, d, d]; raises if not positive definite
            default_sd = np.sqrt(np.trace(cov64, axis1=-2, axis2=-1) / d)  # [K]
        chol_inv = np.linalg.inv(chol)  # [K, d, d], lower triangular

        if weights is None:
            weights64 = np.full((k,), 1.0 / k)
        else:
            weights64 = np.asarray(weights, np.float64)
            if weights64.shape != (k,) or np.any(weights64 < 0) or weights64.sum() <= 0:
                raise ValueError(f"weights must be [K] = [{k}] non-negative, not all zero")
            weights64 = weights64 / weights64.sum()

        log_det_half = np.sum(np.log(np.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)  # [K]
        with np.errstate(divide="ignore"):
            log_w = np.log(weights64)
        self.means = jnp.asarray(means64, dtype)  # [K, d]
        self.weights = jnp.asarray(weights64, dtype)  # [K]
        self.chol = jnp.asarray(chol, dtype)  # [K, d, d]
        self.chol_inv = jnp.asarray(chol_inv, dtype)  # [K, d, d]
        # log w_k - (d/2) log 2 pi - log |L_k|: everything but the quadratic form.
        self._log_coef = jnp.asarray(log_w - 0.5 * d * _LOG_2PI - log_det_half, dtype)  # [K]
        self._log_weights = jnp.asarray(log_w, dtype)  # [K]
        if modes is None:
            modes = Modes(centres=self.means, sd=jnp.asarray(default_sd, dtype),
                          weights=self.weights)
        self._modes = modes

    @property
    def dtype(self) -> jnp.dtype:
        """The floating dtype of the parameters and of samples."""
        return self._dtype

    def component_log_probs(self, x: jax.Array) -> jax.Array:  # [..., d] -> [..., K]
        """``log w_k + log N(x; mu_k, Sigma_k)`` for every component k."""
        x = jnp.asarray(x)
        diff = x[..., None, :] - self.means  # [..., K, d]
        z = jnp.einsum("kij,...kj->...ki", self.chol_inv, diff)  # [..., K, d]
        return self._log_coef - 0.5 * jnp.sum(jnp.square(z), axis=-1)  # [..., K]

    def log_prob(self, x: jax.Array) -> jax.Array:  # [..., d] -> [...]
        """``log p(x) = logsumexp_k (log w_k + log N(x; mu_k, Sigma_k))``."""
        return jax.nn.logsumexp(self.component_log_probs(x), axis=-1)

    def modes(self) -> Modes:
        return self._modes

    def _sample_n(self, key: jax.Array, n: int) -> jax.Array:  # -> [n, d]
        """Exact samples (what ``sample(seed=, sample_shape=)`` calls), compiled once per n."""
        return _jit_draw(self, key, n)

    def _draw(self, key: jax.Array, n: int) -> jax.Array:  # -> [n, d]
        """Exact samples: component ``c ~ Categorical(w)``, then ``mu_c + L_c eps``."""
        key_c, key_eps = jax.random.split(key)
        c = jax.random.categorical(key_c, self._log_weights, shape=(n,))  # [n]
        eps = jax.random.normal(key_eps, (n * self.dim,), self.dtype).reshape(n, self.dim)
        return self.means[c] + jnp.einsum("nij,nj->ni", self.chol[c], eps)  # [n, d]

    def mean(self) -> jax.Array:  # [d]
        """``E[x] = sum_k w_k mu_k``."""
        return self.weights @ self.means

    def covariance(self) -> jax.Array:  # [d, d]
        """``Cov[x] = sum_k w_k (Sigma_k + mu_k mu_k^T) - E[x] E[x]^T``."""
        sigma = self.chol @ jnp.swapaxes(self.chol, -1, -2)  # [K, d, d]
        second = jnp.einsum("k,kij->ij", self.weights,
                            sigma + self.means[:, :, None] * self.means[:, None, :])
        m = self.mean()
        return second - jnp.outer(m, m)


@functools.partial(jax.jit, static_argnums=2)
def _jit_draw(target: Target, key: jax.Array, n: int) -> jax.Array:
    """``target._draw(key, n)`` under jit: the target is a pytree (distrax ``Jittable``),
    so eager ``target.sample(...)`` calls compile once per (target layout, n)."""
    return target._draw(key, n)


@TARGETS.register("gaussian_mixture")
def gaussian_mixture(means: Any, scales: Any = 1.0, weights: Any = None,
                     dtype: Any = jnp.float32) -> GaussianMixtureTarget:
    """``sum_k w_k N(mu_k, diag(s_k^2))``: any mixture of axis-aligned Gaussians.

    Args:
        means: ``[K, d]`` component means (nested sequences).
        scales: the components' sds: a scalar (all components, every
            coordinate), ``[K]`` (isotropic per component) or ``[K, d]``
            (per component and coordinate).
        weights: ``[K]`` non-negative weights, normalized here; ``None`` or
            empty: equal weights.

    The target has the exact sampler and log density of
    ``GaussianMixtureTarget``, and its modes are the components, so mode
    metrics and ``true_weights()`` (the normalized ``weights``) score a
    sampler's draws; both assume components far enough apart that the nearest
    mean names the component a draw came from.
    """
    means64 = np.asarray(means, np.float64)
    if means64.ndim != 2 or not means64.size:
        raise ValueError(f"means must be [K, d] (a sequence of K points in d dimensions), "
                         f"got shape {means64.shape}")
    k, d = means64.shape
    scales64 = np.asarray(scales, np.float64)
    if weights is not None and not np.size(weights):
        weights = None
    if scales64.ndim == 2:
        if scales64.shape != (k, d):
            raise ValueError(f"scales must be a scalar, [K] = [{k}] or [K, d] = [{k}, {d}], "
                             f"got shape {scales64.shape}")
        if np.any(scales64 <= 0):
            raise ValueError("scales must be positive")
        covariances = scales64[:, :, None] ** 2 * np.eye(d)[None]  # [K, d, d]
        # Mode sd: sqrt(tr(Sigma_k) / d), the root mean of the component's variances.
        return GaussianMixtureTarget(means64, covariances, weights, name="gaussian_mixture",
                                     dtype=dtype)
    if scales64.ndim > 1 or (scales64.ndim == 1 and scales64.shape != (k,)):
        raise ValueError(f"scales must be a scalar, [K] = [{k}] or [K, d] = [{k}, {d}], "
                         f"got shape {scales64.shape}")
    return GaussianMixtureTarget(means64, weights=weights, scale=scales64,
                                 name="gaussian_mixture", dtype=dtype)


@TARGETS.register("circle")
def circle(num_modes: int = 8, radius: float = 5.0, sd: float = 0.5,
           dtype: Any = jnp.float32) -> GaussianMixtureTarget:
    """8 equal modes at ``radius (cos 2 pi i / 8, sin 2 pi i / 8)``, isotropic ``sd``.

    Qiu and Wang (2024), Section 5.1 ("circle").
    """
    angles = 2.0 * np.pi * np.arange(num_modes) / num_modes
    means = radius * np.stack([np.cos(angles), np.sin(angles)], axis=-1)  # [K, 2]
    return GaussianMixtureTarget(means, scale=sd, name="circle", dtype=dtype)


@TARGETS.register("grid")
def grid(num_per_axis: int = 5, low: float = -5.0, high: float = 5.0, sd: float = 0.3,
         dtype: Any = jnp.float32) -> GaussianMixtureTarget:
    """``5 x 5`` equal modes at ``linspace(-5, 5, 5)^2``, isotropic ``sd``.

    Qiu and Wang (2024), Section 5.1 ("grid").
    """
    ticks = np.linspace(low, high, num_per_axis)
    means = np.array(list(itertools.product(ticks, ticks)))  # [K, 2]
    return GaussianMixtureTarget(means, scale=sd, name="grid", dtype=dtype)


@TARGETS.register("cross")
def cross(offset: float = 3.0, rho: float = 0.9, dtype: Any = jnp.float32
          ) -> GaussianMixtureTarget:
    """X-shaped modes at ``(+-3, +-3)``: two components of correlation ``+-rho`` per centre.

    Eight components of weight 1/8: at each centre ``c`` in ``{+-3}^2``,
    ``N(c, [[1, rho], [rho, 1]])`` and ``N(c, [[1, -rho], [-rho, 1]])``
    (Qiu and Wang, 2024, Section 5.1, "cross").

    For mode scoring, ``modes()`` gives the four centres, weight 1/4 each,
    with sd = 1, the marginal sd of every component (and of the two-component
    mode): the 3-sd ball of radius 3 holds ~97% of a mode's mass (the long axis
    has variance 1 + rho = 1.9) and the balls of neighbouring centres, 6 apart,
    do not overlap.
    """
    centres = np.array(list(itertools.product([-offset, offset], repeat=2)))  # [4, 2]
    means = np.repeat(centres, 2, axis=0)  # [8, 2]
    pos = np.array([[1.0, rho], [rho, 1.0]])
    neg = np.array([[1.0, -rho], [-rho, 1.0]])
    covs = np.stack([pos, neg] * len(centres))  # [8, 2, 2]
    dt = jnp.dtype(dtype)
    modes = Modes(centres=jnp.asarray(centres, dt), sd=jnp.asarray(1.0, dt),
                  weights=jnp.full((len(centres),), 1.0 / len(centres), dt))
    return GaussianMixtureTarget(means, covs, name="cross", modes=modes, dtype=dtype)


__all__: Sequence[str] = ("GaussianMixtureTarget", "gaussian_mixture", "circle", "grid",
                          "cross")
