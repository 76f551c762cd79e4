"""Spectral normalization of Flax linen layers, with Flax's own ``SpectralNorm``.

Miyato et al., "Spectral normalization for generative adversarial
networks", ICLR 2018: each weight matrix ``W`` is used as ``W / sigma(W)``,
``sigma(W)`` its largest singular value, which bounds the layer's Lipschitz
constant by 1. ``sigma`` is estimated by power iteration (Algorithm 1):

    v <- W u / ||W u||,   u <- W^T v / ||W^T v||,   sigma ~ v^T W u,

with ``u`` kept between training steps so that one iteration per step
tracks the slowly changing ``W``. (Flax stores a kernel as
``[fan_in, fan_out]``; a convolution kernel ``[h, w, c_in, c_out]`` is
reshaped to ``[h w c_in, c_out]`` first.)

``flax.linen.SpectralNorm`` (flax 0.12.8) implements exactly this as a layer
wrapper and fits the linen models as is: ``nn.SpectralNorm(nn.Dense(k))(x,
update_stats=...)``. It keeps ``u`` and ``sigma`` in the ``batch_stats``
collection, beside ``params``; every call runs ``n_steps`` power iterations
from the stored ``u`` and, only with ``update_stats=True`` (and
``mutable=["batch_stats"]``), stores the result. So a module that uses it
takes ``update_stats`` in its ``__call__``, and whoever trains it threads
``batch_stats`` from one step to the next: for GANs, ``make_gan_game(...,
spectral_norm=True)`` keeps it in the game state of ``MinMaxState.game``
(``gmjax.objectives.adversarial.game``).

This module adds the small pieces around it: ``spectral_norm`` (the wrapper),
``SpectralMLP`` (an MLP critic whose every layer is normalized) and
``largest_singular_value`` (the exact ``sigma``, for checks).
"""

from __future__ import annotations

from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def spectral_norm(layer: nn.Module, n_steps: int = 1) -> nn.SpectralNorm:
    """``layer`` with its weight matrices divided by their power-iteration ``sigma``.

    Call the result with ``update_stats=True`` while training (and
    ``mutable=["batch_stats"]``), ``False`` otherwise.
    """
    if n_steps < 1:
        raise ValueError(f"spectral normalization needs n_steps >= 1 power iterations, "
                         f"got {n_steps}")
    return nn.SpectralNorm(layer, n_steps=n_steps)


def largest_singular_value(kernel: jax.Array) -> jax.Array:
    """The exact ``sigma(W)`` of a Flax kernel as the ``[-1, fan_out]`` matrix SpectralNorm uses."""
    matrix = jnp.reshape(kernel, (-1, kernel.shape[-1]))
    return jnp.linalg.svd(matrix, compute_uv=False)[0]


class SpectralMLP(nn.Module):
    """An MLP whose every ``Dense`` layer is spectrally normalized: ``x [n, ...] -> [n, out]``.

    With ``features[-1] == 1`` the output is squeezed to ``[n]`` (a critic's
    logit). Inputs are flattened per example.

    Attributes:
      features: widths of every layer, the last being the output width.
      activation: between layers (leaky ReLU, slope 0.2, by default).
      n_steps: power iterations per call.
    """

    features: Sequence[int]
    activation: Callable[[jax.Array], jax.Array] = lambda h: nn.leaky_relu(h, 0.2)
    n_steps: int = 1

    @nn.compact
    def __call__(self, x: jax.Array, update_stats: bool = False) -> jax.Array:
        h = x.reshape(x.shape[0], -1)                                     # [n, d]
        for i, width in enumerate(self.features):
            h = spectral_norm(nn.Dense(width), self.n_steps)(h, update_stats=update_stats)
            if i < len(self.features) - 1:
                h = self.activation(h)
        return h[:, 0] if self.features[-1] == 1 else h
