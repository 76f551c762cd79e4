"""Multi-layer perceptrons."""

from __future__ import annotations

from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


class MLP(nn.Module):
    """``x -> act(W_1 x + b_1) -> ... -> W_L h + b_L``.

    Attributes:
      features: widths of every layer, the last one being the output width.
      activation: nonlinearity between layers (not after the last).
      zero_init_last: start the output layer at zero, so that a flow layer whose
        conditioner is this MLP starts as the identity.
    """

    features: Sequence[int]
    activation: Callable[[jax.Array], jax.Array] = nn.relu
    zero_init_last: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:  # [..., d_in] -> [..., features[-1]]
        for width in self.features[:-1]:
            x = self.activation(nn.Dense(width)(x))
        last_init = nn.initializers.zeros if self.zero_init_last else nn.linear.default_kernel_init
        return nn.Dense(self.features[-1], kernel_init=last_init)(x)
