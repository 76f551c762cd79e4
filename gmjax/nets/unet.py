"""A small U-Net with a time embedding, for diffusion models on 28x28 (and 32x32) images."""

from __future__ import annotations

from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gmjax.nets.time_mlp import sinusoidal_embedding


def _group_norm(channels: int, groups: int) -> nn.GroupNorm:
    # The largest group count not above ``groups`` that divides the channels.
    g = max(d for d in range(1, min(groups, channels) + 1) if channels % d == 0)
    return nn.GroupNorm(num_groups=g)


class TimeResBlock(nn.Module):
    """DDPM's residual block (Ho et al. 2020, after Wide ResNets) with the time embedding
    as a scale and shift of the second normalization ("AdaGN", Dhariwal and Nichol 2021):

        h = conv(silu(norm(x))),  (a, b) = dense(silu(emb)),
        out = shortcut(x) + conv(silu(norm(h) (1 + a) + b)).

    Applied after the norm, the embedding survives group norms of any group count (a bias
    added before one with a group per channel would be normalized away). The last conv
    starts at zero, so every block starts as its shortcut."""

    features: int
    groups: int = 8

    @nn.compact
    def __call__(self, x: jax.Array, emb: jax.Array) -> jax.Array:  # [n, h, w, c], [n, e]
        h = nn.silu(_group_norm(x.shape[-1], self.groups)(x))
        h = nn.Conv(self.features, (3, 3))(h)
        scale, shift = jnp.split(nn.Dense(2 * self.features)(nn.silu(emb)), 2, axis=-1)
        h = _group_norm(self.features, self.groups)(h)
        h = nn.silu(h * (1.0 + scale[:, None, None, :]) + shift[:, None, None, :])
        h = nn.Conv(self.features, (3, 3), kernel_init=nn.initializers.zeros)(h)
        skip = x if x.shape[-1] == self.features else nn.Conv(self.features, (1, 1))(x)
        return skip + h


class UNet(nn.Module):
    """``(x [n, H, W, C], t [n]) -> [n, H, W, out_channels]``: the DDPM U-Net (Ronneberger
    et al. 2015; Ho et al. 2020) without attention, small enough for CPUs.

    Each level has ``num_res_blocks`` time-conditioned residual blocks and, but the last,
    a stride-2 convolution; the way up mirrors it with skip connections, nearest-neighbour
    upsampling and a convolution. H and W must be divisible by 2^(levels - 1): 28x28 with
    three levels runs at 28, 14 and 7.

    Attributes:
      channels: widths per level.
      num_res_blocks: residual blocks per level on the way down.
      embed_dim: width of the time embedding.
      max_time: the largest t (T for integer steps, 1 for SDE times); t is rescaled to
        [0, 1000] before the sinusoidal embedding.
      out_channels: output channels (default: the input's).
      groups: group-norm groups.
    """

    channels: Sequence[int] = (32, 64, 128)
    num_res_blocks: int = 1
    embed_dim: int = 128
    max_time: float = 1.0
    out_channels: Optional[int] = None
    groups: int = 8

    @nn.compact
    def __call__(self, x: jax.Array, t: jax.Array) -> jax.Array:
        if x.ndim != 4:
            raise ValueError(f"UNet takes images [n, H, W, C], got shape {x.shape}")
        factor = 2 ** (len(self.channels) - 1)
        if x.shape[1] % factor or x.shape[2] % factor:
            raise ValueError(f"UNet with {len(self.channels)} levels needs H and W divisible by "
                             f"{factor}, got {x.shape[1]}x{x.shape[2]}")
        t = jnp.broadcast_to(jnp.asarray(t, jnp.float32), (x.shape[0],))
        emb = sinusoidal_embedding(t * (1000.0 / self.max_time), self.embed_dim)
        emb = nn.Dense(self.embed_dim)(nn.silu(nn.Dense(self.embed_dim)(emb)))
        h = nn.Conv(self.channels[0], (3, 3))(x)
        skips = [h]
        for level, width in enumerate(self.channels):
            for _ in range(self.num_res_blocks):
                h = TimeResBlock(width, self.groups)(h, emb)
                skips.append(h)
            if level < len(self.channels) - 1:
                h = nn.Conv(width, (3, 3), strides=(2, 2))(h)
                skips.append(h)
        h = TimeResBlock(self.channels[-1], self.groups)(h, emb)
        h = TimeResBlock(self.channels[-1], self.groups)(h, emb)
        for level in reversed(range(len(self.channels))):
            width = self.channels[level]
            for _ in range(self.num_res_blocks + 1):
                h = TimeResBlock(width, self.groups)(jnp.concatenate([h, skips.pop()], -1), emb)
            if level > 0:
                n, hh, ww, c = h.shape
                h = jax.image.resize(h, (n, 2 * hh, 2 * ww, c), "nearest")
                h = nn.Conv(width, (3, 3))(h)
        h = nn.silu(_group_norm(h.shape[-1], self.groups)(h))
        out = self.out_channels or x.shape[-1]
        return nn.Conv(out, (3, 3), kernel_init=nn.initializers.zeros)(h)


__all__ = ["TimeResBlock", "UNet"]
