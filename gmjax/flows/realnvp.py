"""RealNVP on vectors: alternating affine couplings over a standard normal base."""

from __future__ import annotations

from typing import Sequence

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp

from gmjax.flows.coupling import affine_coupling, half_mask
from gmjax.nets.mlp import MLP


class RealNVP(nn.Module):
    """A density ``p(x) = N(T^{-1}(x); 0, I) |det J_{T^{-1}}(x)|`` with T a chain of couplings.

    The Flax module owns the conditioner parameters and hands out the distrax
    flow (``self.distribution()``); ``__call__`` is the log-density, so
    ``model.init(key, x)`` creates every parameter. Zero-initialized output
    layers make the flow the identity at initialization.
    """

    dim: int
    num_layers: int = 4
    hidden: Sequence[int] = (64, 64)

    def setup(self):
        self.conditioners = [MLP((*self.hidden, 2 * self.dim), zero_init_last=True)
                             for _ in range(self.num_layers)]

    def bijector(self) -> distrax.Bijector:
        """The map T from latent z to data x."""
        layers = [affine_coupling(half_mask(self.dim, i), cond)
                  for i, cond in enumerate(self.conditioners)]
        return distrax.Chain(layers)

    def distribution(self) -> distrax.Distribution:
        base = distrax.MultivariateNormalDiag(jnp.zeros(self.dim), jnp.ones(self.dim))
        return distrax.Transformed(base, self.bijector())

    def __call__(self, x: jax.Array) -> jax.Array:  # [n, dim] -> [n]
        return self.distribution().log_prob(x)

    def sample(self, key: jax.Array, n: int) -> jax.Array:  # -> [n, dim]
        return self.distribution().sample(seed=key, sample_shape=(n,))
