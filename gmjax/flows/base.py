"""The contract every flow layer keeps, and the ``Flow`` that chains them.

Direction convention (distrax's): a bijector's *forward* map goes from the
latent z to the data x (sampling), its *inverse* from x to z (density
evaluation), and

    log p(x) = log N(f^{-1}(x); 0, I) + log|det J_{f^{-1}}(x)|.

A **flow layer** is a Flax linen module that owns its parameters and hands
out a ``distrax.Bijector`` from ``bijector()``. Its ``__call__(x)`` runs the
normalizing direction, ``inverse_and_log_det(x) -> (z, log_det)``, on data;
``Flow.init`` calls it layer by layer on a data batch, which is where layers
with data-dependent initialization (ActNorm) see the data.

A ``Flow`` lists its layers from the data side: ``layers[0]`` touches x first
when evaluating densities and last when sampling.
"""

from __future__ import annotations

from typing import Sequence, Tuple

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp


class FlowLayer(nn.Module):
    """Base class: a Flax module that owns one bijector's parameters."""

    def bijector(self) -> distrax.Bijector:
        raise NotImplementedError

    def __call__(self, x: jax.Array) -> Tuple[jax.Array, jax.Array]:
        """The normalizing direction ``x -> (z, log|det dz/dx|)``, batch ``[n, *event]``."""
        return self.bijector().inverse_and_log_det(x)


class Flow(nn.Module):
    """A normalizing flow density: ``layers`` over a standard normal base.

    Attributes:
      layers: flow layers, data side first.
      event_shape: shape of one example, e.g. ``(2,)`` or ``(28, 28, 1)``.
    """

    layers: Sequence[FlowLayer]
    event_shape: Tuple[int, ...]

    def bijector(self) -> distrax.Bijector:
        """The map from latent z to data x."""
        return distrax.Chain([layer.bijector() for layer in self.layers])

    def base(self) -> distrax.Distribution:
        normal = distrax.Normal(jnp.zeros(self.event_shape), jnp.ones(self.event_shape))
        return distrax.Independent(normal, reinterpreted_batch_ndims=len(self.event_shape))

    def distribution(self) -> distrax.Distribution:
        return distrax.Transformed(self.base(), self.bijector())

    def __call__(self, x: jax.Array) -> jax.Array:  # [n, *event] -> [n]
        """``log p(x)``, layer by layer (the path ``init`` takes, so data reach every layer)."""
        log_det = jnp.zeros(x.shape[:x.ndim - len(self.event_shape)], x.dtype)
        for layer in self.layers:
            x, ld = layer(x)
            log_det = log_det + ld
        return self.base().log_prob(x) + log_det

    def log_prob(self, x: jax.Array) -> jax.Array:  # [n, *event] -> [n]
        return self.distribution().log_prob(x)

    def sample(self, key: jax.Array, n: int) -> jax.Array:  # -> [n, *event]
        return self.distribution().sample(seed=key, sample_shape=(n,))

    def sample_and_log_prob(self, key: jax.Array, n: int) -> Tuple[jax.Array, jax.Array]:
        """Reparameterized samples and their log-density (reverse-KL objectives use both).

        The bijector runs on the whole batch at once (distrax's ``Transformed`` would map
        it over the draws with ``vmap``, which fixes the batch axis first in every op).
        """
        z, log_base = self.base().sample_and_log_prob(seed=key, sample_shape=(n,))
        x, log_det = self.forward_and_log_det(z)
        return x, log_base - log_det

    def forward_and_log_det(self, z: jax.Array) -> Tuple[jax.Array, jax.Array]:
        """The sampling map on given latents: ``z -> (x, log|det dx/dz|)``, batch ``[n, *event]``.

        For latents drawn from another base density b, ``log b(z) - log_det`` is the
        log-density of x under that base pushed through the flow.
        """
        return self.bijector().forward_and_log_det(z)
