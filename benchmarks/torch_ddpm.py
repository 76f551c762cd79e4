"""The PyTorch side of ``benchmarks.ddpm_vs_torch``: gmjax's diffusion networks in PyTorch.

``TimeMLP`` is ``gmjax.nets.time_mlp.TimeMLP`` and ``UNet`` is
``gmjax.nets.unet.UNet``, layer for layer. Both embed the time the same way,

    e = sinusoidal(t * 1000 / max_time)  (sin, then cos; w_k = 10000^(-k / (dim/2))),
    emb = Linear(silu(Linear(e))),

and the blocks are

    TimeMLP: h = silu(Linear(h) + Linear(emb)) per hidden width, then Linear(d);
    TimeResBlock: h = conv3x3(silu(GN(x))), (a, b) = Linear(silu(emb)),
                  out = skip(x) + conv3x3(silu(GN(h) (1 + a) + b)),

with group norms of the largest group count up to 8 that divides the
channels (epsilon 1e-6, Flax's), a stride-2 3x3 convolution padded as XLA's
``SAME`` (nothing before, one row and column after, for even sides) on the
way down, and nearest-neighbour x2 then a 3x3 convolution on the way up.
Torch computes in NCHW. ``load_gmjax`` copies gmjax's parameters in (Flax
kernels ``[kh, kw, c_in, c_out]`` become ``[c_out, c_in, kh, kw]``, dense
kernels ``[in, out]`` become ``[out, in]``), so the two sides can be checked
to compute the same function.

``ddpm_loss`` is L_simple (``gmjax.objectives.diffusion.ddpm_loss``): a
uniform step index t in {0, ..., T-1}, ``eps ~ N(0, I)``,
``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps`` and the mean of
``(eps_theta(x_t, t) - eps)^2`` over the batch and the dimensions; the draws
come from ``torch.randint`` / ``torch.randn`` unless given.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

GROUP_NORM_EPSILON = 1e-6  # flax.linen.GroupNorm's default


def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """``[n] -> [n, dim]``: ``[sin(t w_k), cos(t w_k)]`` (``gmjax.nets.time_mlp``)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period)
                      * torch.arange(half, dtype=torch.float32) / half)
    angles = t.to(torch.float32)[:, None] * freqs[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


class TimeEmbedding(nn.Module):
    """``t [n] -> [n, embed_dim]``: ``outer(silu(inner(sinusoidal(t * 1000 / max_time))))``."""

    def __init__(self, embed_dim: int, max_time: float):
        super().__init__()
        self.embed_dim, self.scale = embed_dim, 1000.0 / max_time
        self.outer = nn.Linear(embed_dim, embed_dim)  # Flax creates it first: Dense_0
        self.inner = nn.Linear(embed_dim, embed_dim)  # Dense_1

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        e = sinusoidal_embedding(t.to(torch.float32) * self.scale, self.embed_dim)
        return self.outer(F.silu(self.inner(e)))


class TimeMLP(nn.Module):
    """``(x [n, d], t [n]) -> [n, d]``."""

    def __init__(self, data_dim: int, hidden: Sequence[int], embed_dim: int, max_time: float):
        super().__init__()
        self.embed = TimeEmbedding(embed_dim, max_time)
        widths = [data_dim, *hidden]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.time_layers = nn.ModuleList(nn.Linear(embed_dim, b) for b in hidden)
        self.out = nn.Linear(widths[-1], data_dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        emb = self.embed(t)
        h = x
        for layer, time_layer in zip(self.layers, self.time_layers):
            h = F.silu(layer(h) + time_layer(emb))
        return self.out(h)

    def flax_layout(self) -> Iterator[Tuple[str, nn.Module]]:
        """``(Flax name, module)`` in Flax's creation order."""
        modules = [self.embed.outer, self.embed.inner]
        for layer, time_layer in zip(self.layers, self.time_layers):
            modules += [layer, time_layer]
        modules.append(self.out)
        for i, module in enumerate(modules):
            yield f"Dense_{i}", module


def group_norm(channels: int, groups: int = 8) -> nn.GroupNorm:
    """``gmjax.nets.unet._group_norm``: the largest group count up to ``groups`` dividing
    the channels."""
    g = max(d for d in range(1, min(groups, channels) + 1) if channels % d == 0)
    return nn.GroupNorm(g, channels, eps=GROUP_NORM_EPSILON)


def same_padding(size: int, kernel: int, stride: int) -> Tuple[int, int]:
    """XLA's ``SAME`` padding of one side: ``(before, after)``."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class Downsample(nn.Module):
    """A stride-2 3x3 convolution with ``SAME`` padding."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        top, bottom = same_padding(h.shape[2], 3, 2)
        left, right = same_padding(h.shape[3], 3, 2)
        return self.conv(F.pad(h, (left, right, top, bottom)))


class Upsample(nn.Module):
    """Nearest-neighbour x2, then a 3x3 convolution."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(h, scale_factor=2, mode="nearest"))


class TimeResBlock(nn.Module):
    """``gmjax.nets.unet.TimeResBlock`` (the embedding as a scale and shift after the second
    norm)."""

    def __init__(self, in_channels: int, out_channels: int, embed_dim: int, groups: int = 8):
        super().__init__()
        self.norm1 = group_norm(in_channels, groups)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.dense = nn.Linear(embed_dim, 2 * out_channels)
        self.norm2 = group_norm(out_channels, groups)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = (nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels
                     else None)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = torch.chunk(self.dense(F.silu(emb)), 2, dim=-1)
        h = F.silu(self.norm2(h) * (1.0 + scale[:, :, None, None]) + shift[:, :, None, None])
        h = self.conv2(h)
        return (x if self.skip is None else self.skip(x)) + h

    def flax_layout(self) -> Iterator[Tuple[str, nn.Module]]:
        yield from (("GroupNorm_0", self.norm1), ("Conv_0", self.conv1), ("Dense_0", self.dense),
                    ("GroupNorm_1", self.norm2), ("Conv_1", self.conv2))
        if self.skip is not None:
            yield "Conv_2", self.skip


class UNet(nn.Module):
    """``(x [n, C, H, W], t [n]) -> [n, C, H, W]``: ``gmjax.nets.unet.UNet``."""

    def __init__(self, in_channels: int = 1, channels: Sequence[int] = (32, 64, 128),
                 num_res_blocks: int = 1, embed_dim: int = 128, max_time: float = 1.0,
                 groups: int = 8):
        super().__init__()
        self.embed = TimeEmbedding(embed_dim, max_time)
        self.stem = nn.Conv2d(in_channels, channels[0], 3, padding=1)
        width, skips = channels[0], [channels[0]]
        self.down = nn.ModuleList()
        for level, out in enumerate(channels):
            for _ in range(num_res_blocks):
                self.down.append(TimeResBlock(width, out, embed_dim, groups))
                width = out
                skips.append(width)
            if level < len(channels) - 1:
                self.down.append(Downsample(width))
                skips.append(width)
        self.mid = nn.ModuleList(TimeResBlock(width, width, embed_dim, groups) for _ in range(2))
        self.up = nn.ModuleList()
        for level in reversed(range(len(channels))):
            out = channels[level]
            for _ in range(num_res_blocks + 1):
                self.up.append(TimeResBlock(width + skips.pop(), out, embed_dim, groups))
                width = out
            if level > 0:
                self.up.append(Upsample(width, out))
        self.norm = group_norm(width, groups)
        self.out = nn.Conv2d(width, in_channels, 3, padding=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        emb = self.embed(t)
        h = self.stem(x)
        skips = [h]
        for module in self.down:
            h = module(h, emb) if isinstance(module, TimeResBlock) else module(h)
            skips.append(h)
        for module in self.mid:
            h = module(h, emb)
        for module in self.up:
            if isinstance(module, TimeResBlock):
                h = module(torch.cat([h, skips.pop()], dim=1), emb)
            else:
                h = module(h)
        return self.out(F.silu(self.norm(h)))

    def flax_layout(self) -> Iterator[Tuple[str, Any]]:
        """``(Flax name, module)`` in Flax's creation order (a ``TimeResBlock`` yields
        itself; ``load_gmjax`` descends into it)."""
        yield "Dense_0", self.embed.outer
        yield "Dense_1", self.embed.inner
        convs: List[nn.Conv2d] = [self.stem]
        blocks: List[TimeResBlock] = []
        for module in [*self.down, *self.mid, *self.up]:
            if isinstance(module, TimeResBlock):
                blocks.append(module)
            else:
                convs.append(module.conv)
        convs.append(self.out)
        for i, conv in enumerate(convs):
            yield f"Conv_{i}", conv
        for i, block in enumerate(blocks):
            yield f"TimeResBlock_{i}", block
        yield "GroupNorm_0", self.norm


def count_parameters(module: nn.Module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def _copy(target: torch.Tensor, value: Any, name: str) -> None:
    value = torch.as_tensor(np.array(value, dtype=np.float32))
    if target.shape != value.shape:
        raise ValueError(f"{name}: shape mismatch, torch {tuple(target.shape)} vs gmjax "
                         f"{tuple(value.shape)}")
    with torch.no_grad():
        target.copy_(value)


def _load(module: Any, params: Mapping[str, Any], name: str) -> None:
    if isinstance(module, TimeResBlock):
        for child_name, child in module.flax_layout():
            _load(child, params[child_name], f"{name}/{child_name}")
        return
    if set(params) - {"kernel", "bias", "scale"}:
        raise ValueError(f"{name}: unexpected parameters {sorted(params)}")
    if isinstance(module, nn.Linear):
        _copy(module.weight, np.asarray(params["kernel"]).T, name)
    elif isinstance(module, nn.Conv2d):
        _copy(module.weight, np.transpose(np.asarray(params["kernel"]), (3, 2, 0, 1)), name)
    elif isinstance(module, nn.GroupNorm):
        _copy(module.weight, params["scale"], name)
    else:
        raise TypeError(f"{name}: cannot load into {type(module).__name__}")
    _copy(module.bias, params["bias"], name)


def load_gmjax(model: nn.Module, params: Mapping[str, Any]) -> None:
    """Copies gmjax's ``TimeMLP`` or ``UNet`` parameters (a ``{"params": ...}`` tree) in;
    every Flax parameter must find its torch module and the reverse."""
    tree = params["params"]
    layout = dict(model.flax_layout())
    if set(layout) != set(tree):
        raise ValueError(f"layers differ: torch has {sorted(set(layout) - set(tree))} only, "
                         f"gmjax {sorted(set(tree) - set(layout))} only")
    for name, module in layout.items():
        _load(module, tree[name], name)


def ddpm_loss(model: nn.Module, x0: torch.Tensor, alpha_bars: torch.Tensor,
              t: Optional[torch.Tensor] = None, noise: Optional[torch.Tensor] = None
              ) -> torch.Tensor:
    """L_simple: ``mean (eps_theta(x_t, t) - eps)^2`` (see the module doc)."""
    n = x0.shape[0]
    if t is None:
        t = torch.randint(0, alpha_bars.shape[0], (n,))
    if noise is None:
        noise = torch.randn_like(x0)
    abar = alpha_bars[t].view(n, *([1] * (x0.dim() - 1)))
    xt = torch.sqrt(abar) * x0 + torch.sqrt(1.0 - abar) * noise
    return torch.mean((model(xt, t) - noise) ** 2)


def train_step_runner(model: nn.Module, x0: torch.Tensor, alpha_bars: torch.Tensor, lr: float,
                      steps: int, compile: bool = False) -> Callable[[], None]:
    """``run()``: ``steps`` Adam steps (lr ``lr``, torch's defaults otherwise) of L_simple on
    the batch ``x0``; with ``compile`` the loss (forward and, through AOTAutograd, backward)
    and ``optimizer.step`` go through ``torch.compile`` (inductor, default mode)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)

    def loss_fn(x):
        return ddpm_loss(model, x, alpha_bars)

    opt_step = opt.step
    if compile:
        loss_fn = torch.compile(loss_fn)
        opt_step = torch.compile(opt.step)

    def run() -> None:
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            loss_fn(x0).backward()
            opt_step()

    return run

