"""A time-conditioned MLP for diffusion and score models on 2-D and tabular data."""

from __future__ import annotations

import math
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def sinusoidal_embedding(t: jax.Array, dim: int, max_period: float = 10000.0) -> jax.Array:
    """Transformer positional features of t (Vaswani et al. 2017; used for time by Ho et al.
    2020): ``[sin(t w_k), cos(t w_k)]``, ``w_k = max_period^(-k / (dim/2))``; ``[n] -> [n, dim]``.
    """
    if dim < 2 or dim % 2:
        raise ValueError(f"embedding dim must be an even integer >= 2, got {dim}")
    half = dim // 2
    freqs = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=jnp.float32) / half)
    angles = jnp.asarray(t, jnp.float32)[:, None] * freqs[None, :]
    return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


class TimeMLP(nn.Module):
    """``(x [n, d], t [n]) -> [n, features[-1]]``: an MLP on x whose hidden layers each add a
    projection of a sinusoidal embedding of t (then an MLP of it), as DDPM's U-Net adds its
    time embedding to every block (Ho et al. 2020).

    Attributes:
      features: hidden widths, then the output width (d for epsilon or a score).
      embed_dim: width of the sinusoidal embedding.
      max_time: the largest t the net will see; t is rescaled to [0, 1000] before
        embedding, so integer steps (max_time = T) and SDE times (max_time = 1) get the
        same frequencies.
      activation: nonlinearity.
    """

    features: Sequence[int]
    embed_dim: int = 64
    max_time: float = 1.0
    activation: Callable[[jax.Array], jax.Array] = nn.silu

    @nn.compact
    def __call__(self, x: jax.Array, t: jax.Array) -> jax.Array:
        if x.ndim != 2:
            raise ValueError(f"TimeMLP takes x of shape [n, d], got {x.shape}")
        t = jnp.broadcast_to(jnp.asarray(t, jnp.float32), (x.shape[0],))
        emb = sinusoidal_embedding(t * (1000.0 / self.max_time), self.embed_dim)
        emb = nn.Dense(self.embed_dim)(self.activation(nn.Dense(self.embed_dim)(emb)))
        h = x
        for width in self.features[:-1]:
            h = nn.Dense(width)(h) + nn.Dense(width)(emb)
            h = self.activation(h)
        return nn.Dense(self.features[-1])(h)


__all__ = ["TimeMLP", "sinusoidal_embedding"]
