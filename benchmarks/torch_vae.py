"""The PyTorch side of ``benchmarks.vae_vs_torch``: gmjax's MLP VAE written in PyTorch.

``MLPVAE`` is ``gmjax.models.vae.build_vae`` with ``net="mlp"``,
``likelihood="bernoulli"`` (``gmjax.nets.vae.MLPEncoder`` and
``MLPDecoder``) layer for layer:

    encoder: x [n, D] -> tanh(Linear) x L -> Linear -> (mu, log sigma) = halves of [n, 2 d],
    decoder: z [n, d] -> tanh(Linear) x L -> Linear -> logits l [n, D],

and ``loss(x, eps)`` is the negative ELBO of ``gmjax.objectives.elbo_loss``
with one reparameterized sample and the analytic KL,

    z = mu + sigma * eps,   -mean_n [ sum_j (x_j l_j - softplus(l_j)) - KL(q || N(0, I)) ],
    KL = (1/2) sum_k (mu_k^2 + sigma_k^2 - 1 - 2 log sigma_k),

with ``eps ~ N(0, I)`` drawn by ``torch.randn`` unless given.
``load_gmjax_params`` copies gmjax's parameters in, so the two can be checked
to give the same loss from the same ``eps``.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np
import torch
from torch import nn

from benchmarks.torch_flows import load_dense_stack


def _linears(widths: Sequence[int]) -> nn.ModuleList:
    return nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))


class MLPVAE(nn.Module):
    """The MLP VAE with a Bernoulli decoder; the decoder's widths mirror the encoder's."""

    def __init__(self, data_dim: int = 784, hidden: Sequence[int] = (500, 500),
                 latent_dim: int = 50):
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = _linears([data_dim, *hidden, 2 * latent_dim])
        self.decoder = _linears([latent_dim, *hidden, data_dim])

    @staticmethod
    def _mlp(linears: nn.ModuleList, h: torch.Tensor) -> torch.Tensor:
        for linear in linears[:-1]:
            h = torch.tanh(linear(h))
        return linears[-1](h)

    def forward(self, x: torch.Tensor, eps: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The negative ELBO, averaged over the batch ``x [n, D]`` (binary)."""
        out = self._mlp(self.encoder, x.flatten(1))
        mean, log_scale = out[:, :self.latent_dim], out[:, self.latent_dim:]
        if eps is None:
            eps = torch.randn_like(mean)
        z = mean + torch.exp(log_scale) * eps
        logits = self._mlp(self.decoder, z)
        log_likelihood = (x.flatten(1) * logits - nn.functional.softplus(logits)).sum(-1)
        kl = 0.5 * (mean ** 2 + torch.exp(2 * log_scale) - 1 - 2 * log_scale).sum(-1)
        return -(log_likelihood - kl).mean()


def gmjax_dense_stacks(params) -> List[List[tuple]]:
    """``[encoder, decoder]`` as ``[(kernel, bias), ...]`` in layer order, from the parameters
    of a gmjax MLP VAE (``Dense_0``, ``Dense_1``, ..., then the encoder's ``head``)."""

    def ordered(tree, last: Optional[str] = None):
        names = sorted((k for k in tree if k != last), key=lambda k: int(k.split("_")[-1]))
        names += [last] if last else []
        return [(np.asarray(tree[k]["kernel"]), np.asarray(tree[k]["bias"])) for k in names]

    return [ordered(params["encoder"]["net"]["params"], last="head"),
            ordered(params["decoder"]["params"])]


def load_gmjax_params(model: MLPVAE, params) -> None:
    encoder, decoder = gmjax_dense_stacks(params)
    load_dense_stack(model.encoder, encoder)
    load_dense_stack(model.decoder, decoder)
