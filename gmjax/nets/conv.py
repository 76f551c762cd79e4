"""The convolutional conditioner of image coupling layers.

Glow's coupling network NN() (Kingma & Dhariwal, "Glow: Generative flow with
invertible 1x1 convolutions", NeurIPS 2018, Sec. 3.3 and Table 1):

    h_1 = relu(conv3x3(x))                       # [..., h, w, width]
    h_2 = relu(conv1x1(h_1))                     # [..., h, w, width]
    out = conv3x3_zero(h_2)                      # [..., h, w, features]

with ``SAME`` padding, so the spatial size is kept. The last convolution
starts at zero (weights and bias), so a coupling layer built on this network
is the identity at initialization, which Glow found to help train deep flows.
(Glow also puts ActNorm after the hidden convolutions; it is left out here.)
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp


def kernel_as_matrix(init):
    """``init`` drawn on the kernel viewed as the ``[k * k * c_in, c_out]`` matrix it is.

    Same fan-in, and with jax's (default) partitionable threefry the very same
    numbers as ``init`` on the 4-D kernel; but on jax 0.10's CPU backend a 4-D
    random draw takes about 5 s to compile and a 2-D one under 1 s.
    """

    def draw(key, shape, dtype=jnp.float32):
        return init(key, (math.prod(shape[:-1]), shape[-1]), dtype).reshape(shape)

    return draw


class CouplingConvNet(nn.Module):
    """``[..., h, w, c_in] -> [..., h, w, features]``: 3x3 conv, ReLU, 1x1 conv, ReLU, 3x3 conv.

    Attributes:
      features: output channels.
      width: hidden channels of both hidden convolutions.
      zero_init_last: start the output convolution at zero.
    """

    features: int
    width: int = 32
    zero_init_last: bool = True

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:  # [..., h, w, c_in] -> [..., h, w, features]
        init = kernel_as_matrix(nn.linear.default_kernel_init)
        x = nn.relu(nn.Conv(self.width, (3, 3), padding="SAME", kernel_init=init)(x))
        x = nn.relu(nn.Conv(self.width, (1, 1), padding="SAME", kernel_init=init)(x))
        last_init = nn.initializers.zeros if self.zero_init_last else init
        return nn.Conv(self.features, (3, 3), padding="SAME", kernel_init=last_init)(x)
