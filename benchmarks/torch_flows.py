"""The PyTorch side of ``benchmarks.flows_vs_torch``: gmjax's RealNVP written in PyTorch.

``RealNVP`` is gmjax's ``realnvp`` recipe (``gmjax.flows.coupling``) layer for
layer: for each mask m (1: passed through and conditioned on),

    (t, a) = MLP(m * x),  s = c * tanh(a / c),  c = 3,
    z = m * x + (1 - m) * (x - t) * exp(-s),  log|det dz/dx| = -sum_i (1 - m_i) s_i,

with the MLP ``dim -> hidden -> ... -> 2 dim`` (ReLU, last layer
zero-initialized) over the *masked full vector*, as distrax's
``MaskedCoupling`` feeds it, its output read as ``[dim, 2]`` pairs (shift,
raw log-scale). ``normflows_realnvp`` is the same flow built from
normflows' ``MaskedAffineFlow``: its ``s`` and ``t`` are two heads of one
shared conditioner, evaluated once per layer and call (normflows' own
RealNVP examples use two separate networks, which would double the
parameters and the work). ``load_dense_stack`` copies gmjax's parameters in,
so the same model can be checked to give the same log-densities.
"""

from __future__ import annotations

import math
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

MAX_LOG_SCALE = 3.0  # gmjax.flows.coupling.affine_coupling_bijector's bound


def conditioner(dim: int, hidden: Sequence[int]) -> nn.Sequential:
    """``dim -> hidden... -> 2 dim`` ReLU MLP with a zero-initialized last layer."""
    widths = [dim, *hidden]
    layers: List[nn.Module] = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    last = nn.Linear(widths[-1], 2 * dim)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(*layers, last)


def shift_and_log_scale(raw: torch.Tensor, dim: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Conditioner output ``[n, 2 dim]`` read as ``[n, dim, 2]``: shift, bounded log-scale."""
    pairs = raw.unflatten(-1, (dim, 2))
    return pairs[..., 0], MAX_LOG_SCALE * torch.tanh(pairs[..., 1] / MAX_LOG_SCALE)


class AffineCoupling(nn.Module):
    """One RealNVP coupling, normalizing direction ``x -> (z, log|det dz/dx|)``."""

    def __init__(self, mask: Sequence[bool], hidden: Sequence[int]):
        super().__init__()
        self.register_buffer("mask", torch.tensor(np.asarray(mask), dtype=torch.float32))
        self.net = conditioner(len(mask), hidden)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        m = self.mask
        shift, log_scale = shift_and_log_scale(self.net(m * x), x.shape[-1])
        z = m * x + (1 - m) * (x - shift) * torch.exp(-log_scale)
        return z, -((1 - m) * log_scale).sum(-1)


class RealNVP(nn.Module):
    """Couplings (data side first) over a standard normal; ``forward(x)`` is the mean NLL."""

    def __init__(self, masks: Sequence[Sequence[bool]], hidden: Sequence[int]):
        super().__init__()
        self.layers = nn.ModuleList(AffineCoupling(m, hidden) for m in masks)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:  # [n, d] -> [n]
        log_det = torch.zeros(x.shape[0], dtype=x.dtype)
        for layer in self.layers:
            x, ld = layer(x)
            log_det = log_det + ld
        base = -0.5 * (x ** 2).sum(-1) - 0.5 * x.shape[-1] * math.log(2 * math.pi)
        return base + log_det

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -self.log_prob(x).mean()

    def dense_stacks(self) -> List[List[nn.Linear]]:
        """Each layer's conditioner Linear layers, data side first."""
        return [[m for m in layer.net if isinstance(m, nn.Linear)] for layer in self.layers]


class _SharedConditioner(nn.Module):
    """The conditioner MLP, evaluated once for the ``s`` and ``t`` heads of one call."""

    def __init__(self, dim: int, hidden: Sequence[int]):
        super().__init__()
        self.net = conditioner(dim, hidden)
        self.dim = dim
        self._input: Optional[torch.Tensor] = None
        self._output: Optional[Tuple[torch.Tensor, torch.Tensor]] = None

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if x is not self._input:  # normflows calls s(b * z), then t on the same tensor
            self._input, self._output = x, shift_and_log_scale(self.net(x), self.dim)
        return self._output


class _Head(nn.Module):
    def __init__(self, shared: _SharedConditioner, index: int):
        super().__init__()
        self.shared, self.index = shared, index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shared(x)[self.index]


def normflows_realnvp(masks: Sequence[Sequence[bool]], hidden: Sequence[int]):
    """The same RealNVP as a normflows ``NormalizingFlow`` of ``MaskedAffineFlow`` layers.

    normflows lists flows from the base side and evaluates densities from the
    last one, so the data-side-first ``masks`` go in reversed.
    """
    import normflows as nf

    dim = len(masks[0])
    flows = []
    for mask in reversed(masks):
        shared = _SharedConditioner(dim, hidden)
        flows.append(nf.flows.MaskedAffineFlow(
            torch.tensor(np.asarray(mask), dtype=torch.float32),
            t=_Head(shared, 0), s=_Head(shared, 1)))
    return nf.NormalizingFlow(nf.distributions.DiagGaussian(dim, trainable=False), flows)


def normflows_dense_stacks(model) -> List[List[nn.Linear]]:
    """Each layer's conditioner Linear layers, data side first."""
    return [[m for m in flow.s.shared.net if isinstance(m, nn.Linear)]
            for flow in reversed(model.flows)]


def load_dense_stack(linears: Sequence[nn.Linear],
                     kernels_and_biases: Sequence[Tuple[np.ndarray, np.ndarray]]) -> None:
    """Copies Flax ``Dense`` parameters (kernel ``[in, out]``) into torch ``Linear`` layers."""
    if len(linears) != len(kernels_and_biases):
        raise ValueError(f"{len(linears)} Linear layers, {len(kernels_and_biases)} Dense ones")
    with torch.no_grad():
        for linear, (kernel, bias) in zip(linears, kernels_and_biases):
            linear.weight.copy_(torch.tensor(np.array(kernel).T))
            linear.bias.copy_(torch.tensor(np.array(bias)))


def zuko_maf(dim: int, layers: int, hidden: Sequence[int]):
    """zuko's MAF (affine MADE transforms, alternating orders) and its mean NLL."""
    import zuko

    flow = zuko.flows.MAF(dim, transforms=layers, hidden_features=tuple(hidden))
    return flow, lambda x: -flow().log_prob(x).mean()


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def train_runner(parameters, loss_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                 steps: int, compile: bool = False) -> Callable[[], None]:
    """``run()``: ``steps`` Adam (lr 1e-3, torch's defaults otherwise) steps on the batch ``x``.

    With ``compile``, the loss (forward and, through AOTAutograd, backward)
    and the optimizer step are both ``torch.compile``d (inductor, default mode).
    """
    opt = torch.optim.Adam(list(parameters), lr=1e-3)
    opt_step = opt.step
    if compile:
        loss_fn = torch.compile(loss_fn)
        opt_step = torch.compile(opt.step)

    def run() -> None:
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(x)
            loss.backward()
            opt_step()

    return run
