"""The PyTorch side of ``benchmarks.gan_vs_torch``: gmjax's DCGAN written in PyTorch.

``Generator`` and ``Discriminator`` are ``gmjax.nets.dcgan``'s networks with
``norm="pixel"`` and ``upsample="resize"`` (the Fashion-MNIST config's),
layer for layer, with ``c = channels``:

    G: z -> Linear(d, 7*7*2c) -> [n, 7, 7, 2c] -> PN(relu) -> nearest x2 -> conv3x3(c)
          -> PN(relu) -> nearest x2 -> conv3x3(1) -> tanh          # [n, 28, 28, 1]
    d: x -> conv4x4/2(c) -> lrelu -> conv4x4/2(2c) -> lrelu -> flatten (h, w, c) -> Linear(1)

``PN(h) = h / sqrt(mean_c h^2 + 1e-8)``. Torch computes in NCHW; the
generator's first reshape and the discriminator's flatten go through NHWC so
that ``load_gmjax`` can copy gmjax's parameters in unchanged (Flax kernels
``[kh, kw, c_in, c_out]`` become ``[c_out, c_in, kh, kw]``, dense kernels
``[in, out]`` become ``[out, in]``) and both sides compute the same function.

``train_step_runner`` is one outer step of the non-saturating game, as
``gmjax.training.make_minmax_step`` runs it with ``critic_steps=1``: a
discriminator update on the real batch and fresh fakes (detached), then a
generator update on new latents; Adam (lr, b1) for both players. As in
PyTorch's DCGAN tutorial, the generator's backward pass also fills the
discriminator's weight gradients, which the next discriminator update
discards (jax differentiates only what is asked for).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def pixel_norm(h: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:  # NCHW, over channels
    return h * torch.rsqrt(torch.mean(h * h, dim=1, keepdim=True) + eps)


class Generator(nn.Module):
    """``z [n, d] -> images [n, 1, 28, 28]`` in [-1, 1] (NCHW)."""

    def __init__(self, latent_dim: int, channels: int, base_size: int = 7, out_channels: int = 1):
        super().__init__()
        self.s, self.c = base_size, channels
        self.dense = nn.Linear(latent_dim, base_size * base_size * 2 * channels)
        self.conv1 = nn.Conv2d(2 * channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, out_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.dense(z).view(z.shape[0], self.s, self.s, 2 * self.c).permute(0, 3, 1, 2)
        h = pixel_norm(F.relu(h))
        h = pixel_norm(F.relu(self.conv1(F.interpolate(h, scale_factor=2, mode="nearest"))))
        return torch.tanh(self.conv2(F.interpolate(h, scale_factor=2, mode="nearest")))


class Discriminator(nn.Module):
    """``images [n, 1, 28, 28] -> logits [n]``."""

    def __init__(self, channels: int, side: int = 28, in_channels: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 4, stride=2, padding=1)
        self.conv2 = nn.Conv2d(channels, 2 * channels, 4, stride=2, padding=1)
        self.dense = nn.Linear((side // 4) ** 2 * 2 * channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.conv1(x), 0.2)
        h = F.leaky_relu(self.conv2(h), 0.2)
        return self.dense(h.permute(0, 2, 3, 1).flatten(1))[:, 0]  # flatten as NHWC


def count_parameters(module: nn.Module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def _copy(target: torch.Tensor, value: Any) -> None:
    value = torch.as_tensor(np.array(value))
    if target.shape != value.shape:
        raise ValueError(f"shape mismatch: torch {tuple(target.shape)} vs gmjax "
                         f"{tuple(value.shape)}")
    with torch.no_grad():
        target.copy_(value)


def _load_dense(linear: nn.Linear, params: Mapping[str, Any]) -> None:
    _copy(linear.weight, np.asarray(params["kernel"]).T)
    _copy(linear.bias, params["bias"])


def _load_conv(conv: nn.Conv2d, params: Mapping[str, Any]) -> None:
    _copy(conv.weight, np.transpose(np.asarray(params["kernel"]), (3, 2, 0, 1)))
    _copy(conv.bias, params["bias"])


def load_gmjax(generator: Generator, discriminator: Discriminator, gen_params: Mapping,
               disc_params: Mapping) -> None:
    """Copies gmjax's DCGAN parameters (``{"params": ...}`` trees) into the torch modules."""
    g, d = gen_params["params"], disc_params["params"]
    _load_dense(generator.dense, g["Dense_0"])
    _load_conv(generator.conv1, g["Conv_0"])
    _load_conv(generator.conv2, g["Conv_1"])
    _load_conv(discriminator.conv1, d["Conv_0"])
    _load_conv(discriminator.conv2, d["Conv_1"])
    _load_dense(discriminator.dense, d["Dense_0"])


def critic_loss(discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """``mean softplus(-d(x)) + mean softplus(d(G(z)))`` (gmjax's ``discriminator_loss``)."""
    return F.softplus(-discriminator(real)).mean() + F.softplus(discriminator(fake)).mean()


def generator_loss(discriminator: nn.Module, fake: torch.Tensor) -> torch.Tensor:
    """``mean softplus(-d(G(z)))`` (gmjax's ``non_saturating_generator_loss``)."""
    return F.softplus(-discriminator(fake)).mean()


def to_model_space(x_uint8: torch.Tensor) -> torch.Tensor:
    """``[n, 28, 28, 1]`` uint8 -> ``[n, 1, 28, 28]`` float in [-1, 1] (gmjax's ``to_model_space``)."""
    return (x_uint8.float() * (2.0 / 255.0) - 1.0).permute(0, 3, 1, 2)


def train_step_runner(generator: Generator, discriminator: Discriminator, x_uint8: torch.Tensor,
                      latent_dim: int, steps: int, lr: float, b1: float,
                      compile: bool = False) -> Callable[[], None]:
    """``run()``: ``steps`` outer steps (one discriminator and one generator Adam update)."""
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=(b1, 0.999))
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=(b1, 0.999))
    n = x_uint8.shape[0]

    def d_loss(x, z):
        with torch.no_grad():  # the fakes are data to the discriminator's update
            fake = generator(z)
        return critic_loss(discriminator, to_model_space(x), fake)

    def g_loss(z):
        return generator_loss(discriminator, generator(z))

    d_step, g_step = opt_d.step, opt_g.step
    if compile:
        d_loss, g_loss = torch.compile(d_loss), torch.compile(g_loss)
        d_step, g_step = torch.compile(opt_d.step), torch.compile(opt_g.step)

    def run() -> None:
        for _ in range(steps):
            opt_d.zero_grad(set_to_none=True)
            d_loss(x_uint8, torch.randn(n, latent_dim)).backward()
            d_step()
            opt_g.zero_grad(set_to_none=True)
            g_loss(torch.randn(n, latent_dim)).backward()
            g_step()

    return run
