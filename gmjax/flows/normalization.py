"""Normalization layers on vectors: batch normalization and ActNorm, as bijectors.

**ActNorm** (Kingma & Dhariwal, 2018, Sec. 3.1) on vectors ``[n, dim]``: a
per-coordinate affine map in the normalizing direction,

    z = exp(s) * x + b,    log|det dz/dx| = sum_i s_i,

with learnable s and b, initialized from the init batch so that its outputs
have zero mean and unit variance per coordinate: ``s = -log std(x)``,
``b = -mean(x) / std(x)`` (a coordinate whose batch standard deviation is
below ``ACTNORM_MIN_STD``, e.g. the all-zeros batch samplers initialize with,
is only centred, ``s = 0``; initialized without data the layer is the
identity). The spline recipes put one before every spline layer
(``standardize=True``), so that data on any scale reach the splines'
``[-B, B]`` standardized.

**Batch normalization** (Dinh et al., 2017, sec. 3.7; Papamakarios et al.,
2017, sec. 3.4).

In the normalizing direction, with statistics mu and sigma^2 and learnable
log-scale gamma and shift beta,

    z = (x - mu) / sqrt(sigma^2 + eps) * exp(gamma) + beta,
    log|det dz/dx| = sum_i (gamma_i - 1/2 log(sigma_i^2 + eps)).

The papers use the minibatch's mu, sigma^2 while training and running
averages afterwards. A bijector whose map depends on the rest of the batch is
not a per-example bijection, so here the map always uses *stored*
statistics, which keeps ``apply`` pure:

* ``mean`` and ``log_var`` (sigma^2 through its log, so it stays positive
  whatever is added to it) live in the non-trainable collection
  ``"batch_stats"``; ``gamma`` and ``beta`` in ``"params"``;
* ``init`` sets them from the init batch (data-dependent, like ActNorm), so
  the layer starts by standardizing its input;
* calling the layer (or a ``Flow`` containing it) with
  ``mutable=["batch_stats"]`` returns, next to the density computed with the
  old statistics, statistics moved towards the batch's by exponential
  averaging, ``mu <- m mu + (1 - m) mean(x)`` and the same for sigma^2.
  ``update_batch_stats`` wraps that call; a training loop calls it after each
  step. No gradient flows into the statistics.

Every ``apply`` of a flow with batch normalization must be given the
``"batch_stats"`` collection.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Tuple

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp

from gmjax.flows.base import FlowLayer
from gmjax.flows.registry import register_layer

# An init batch's coordinate with a smaller standard deviation is not rescaled.
ACTNORM_MIN_STD = 1e-6


class VectorActNorm(FlowLayer):
    """ActNorm on vectors ``[n, dim]`` with data-dependent initialization (see module doc).

    Parameters: ``log_scale [dim]`` (s) and ``bias [dim]`` (b) of the normalizing
    map ``z = exp(s) * x + b``. ``__call__`` during ``init`` sets them from its
    batch (every axis but the last is a batch axis); any other init path starts
    at the identity.

    Attributes:
      dim: event size.
    """

    dim: int

    @nn.compact
    def scale_and_bias(self, x: Optional[jax.Array] = None) -> Tuple[jax.Array, jax.Array]:
        """``(log_scale [dim], bias [dim])``; at init, from the batch ``x`` if given."""

        def init(kind):
            def initializer(key):
                del key
                if x is None:
                    return jnp.zeros((self.dim,))
                axes = tuple(range(x.ndim - 1))
                mean, std = jnp.mean(x, axis=axes), jnp.std(x, axis=axes)
                std = jnp.where(std < ACTNORM_MIN_STD, 1.0, std)
                return -jnp.log(std) if kind == "log_scale" else -mean / std
            return initializer

        return self.param("log_scale", init("log_scale")), self.param("bias", init("bias"))

    def bijector(self) -> distrax.Bijector:
        log_scale, bias = self.scale_and_bias()
        normalize = distrax.ScalarAffine(shift=bias, log_scale=log_scale)
        return distrax.Inverse(distrax.Block(normalize, 1))

    def __call__(self, x: jax.Array) -> Tuple[jax.Array, jax.Array]:  # [n, dim]
        if self.is_initializing():
            self.scale_and_bias(jax.lax.stop_gradient(x))
        return self.bijector().inverse_and_log_det(x)


class BatchNorm(FlowLayer):
    """Batch-normalization bijector on vectors ``[n, dim]``.

    Attributes:
      dim: event size.
      momentum: weight m of the old statistics in the running average.
      eps: added to the variance, as in the papers.
    """

    dim: int
    momentum: float = 0.99
    eps: float = 1e-5

    def setup(self):
        self.log_gamma = self.param("log_gamma", nn.initializers.zeros, (self.dim,))
        self.beta = self.param("beta", nn.initializers.zeros, (self.dim,))
        self.mean = self.variable("batch_stats", "mean", jnp.zeros, (self.dim,))
        self.log_var = self.variable("batch_stats", "log_var", jnp.zeros, (self.dim,))

    def bijector(self) -> distrax.Bijector:
        mean = jax.lax.stop_gradient(self.mean.value)
        log_var = jax.lax.stop_gradient(self.log_var.value)
        # z = a x + b with log a = gamma - log(sigma^2 + eps) / 2, b = beta - a mu.
        log_a = self.log_gamma - 0.5 * jnp.log(jnp.exp(log_var) + self.eps)
        normalize = distrax.ScalarAffine(shift=self.beta - jnp.exp(log_a) * mean, log_scale=log_a)
        return distrax.Inverse(distrax.Block(normalize, 1))

    def __call__(self, x: jax.Array) -> Tuple[jax.Array, jax.Array]:  # [n, dim]
        x_stop = jax.lax.stop_gradient(x)
        batch_mean = jnp.mean(x_stop, axis=0)
        batch_var = jnp.var(x_stop, axis=0)
        if self.is_initializing():
            self.mean.value = batch_mean
            self.log_var.value = jnp.log(jnp.maximum(batch_var, self.eps))
        elif self.is_mutable_collection("batch_stats"):
            # The density of this call uses the statistics from before the update.
            out = self.bijector().inverse_and_log_det(x)
            m = self.momentum
            self.mean.value = m * self.mean.value + (1.0 - m) * batch_mean
            self.log_var.value = jnp.log(m * jnp.exp(self.log_var.value) + (1.0 - m) * batch_var)
            return out
        return self.bijector().inverse_and_log_det(x)


def update_batch_stats(module: nn.Module, variables: Mapping[str, Any], x: jax.Array,
                       **kwargs: Any) -> dict:
    """Pure: ``variables`` with ``"batch_stats"`` moved towards the statistics of batch ``x``.

    ``module`` is a ``BatchNorm`` layer or any model (a ``Flow``) whose
    ``__call__`` passes its data through its batch-norm layers.
    """
    _, updates = module.apply(variables, x, mutable=["batch_stats"], **kwargs)
    return {**variables, **updates}


@register_layer("batch_norm", event_rank=1, identity_at_init=False)
def _batch_norm(event_shape: Tuple[int, ...], index: int, momentum: float = 0.99,
                eps: float = 1e-5) -> FlowLayer:
    """Batch normalization as a bijector (Dinh et al., 2017, Sec. 3.7)."""
    del index
    return BatchNorm(dim=event_shape[0], momentum=momentum, eps=eps)


@register_layer("vector_actnorm", event_rank=1, identity_at_init=False)
def _vector_actnorm(event_shape: Tuple[int, ...], index: int) -> FlowLayer:
    """ActNorm on vectors, a per-coordinate affine map with data-dependent init
    (Kingma & Dhariwal, 2018)."""
    del index
    return VectorActNorm(dim=event_shape[0])
