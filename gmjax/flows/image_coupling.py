"""RealNVP affine coupling on images with checkerboard and channel masks.

Dinh, Sohl-Dickstein & Bengio, "Density estimation using Real NVP", ICLR 2017,
Sec. 3.4. With a binary mask b over ``[h, w, c]`` (1: pass through and
condition),

    y = b * x + (1 - b) * (x * exp(s(b * x)) + t(b * x)),
    log|det dy/dx| = sum_{i,j,k} (1 - b_ijk) s_ijk(b * x),

where s and t come from one convolutional network (``CouplingConvNet``) and
the log-scale is bounded with a tanh (see ``coupling.affine_coupling_bijector``).
The **checkerboard** mask is ``b_ijk = 1[(i + j) even]``; the **channel**
mask is ``b_ijk = 1[k < ceil(c / 2)]``. Consecutive layers (``index`` 0, 1,
...) alternate a mask and its complement, so every entry gets transformed.
The network's zero-initialized output makes the layer the identity at
initialization.
"""

from __future__ import annotations

from typing import Tuple

import distrax
import jax
import jax.numpy as jnp

from gmjax.flows.base import FlowLayer
from gmjax.flows.coupling import affine_coupling_bijector
from gmjax.flows.registry import register_layer
from gmjax.nets.conv import CouplingConvNet


def checkerboard_mask(shape: Tuple[int, int, int], parity: int) -> jax.Array:  # -> [h, w, c]
    """``b_ijk = 1[(i + j + parity) even]``, the same for every channel."""
    h, w, c = shape
    rows, cols = jnp.arange(h)[:, None], jnp.arange(w)[None, :]
    board = (rows + cols + parity) % 2 == 0  # [h, w]
    return jnp.broadcast_to(board[:, :, None], (h, w, c))


def channel_mask(shape: Tuple[int, int, int], parity: int) -> jax.Array:  # -> [h, w, c]
    """``b_ijk = 1[k < ceil(c / 2)]`` (parity 0) or its complement (parity 1)."""
    h, w, c = shape
    first = jnp.arange(c) < (c + 1) // 2
    return jnp.broadcast_to(first if parity % 2 == 0 else ~first, (h, w, c))


IMAGE_MASKS = {"checkerboard": checkerboard_mask, "channel": channel_mask}


class ImageCoupling(FlowLayer):
    """Affine coupling on images ``[n, h, w, c]`` with a checkerboard or channel mask.

    Attributes:
      event_shape: ``(h, w, c)``.
      parity: 0 or 1, which of the mask and its complement passes through.
      mask: ``"checkerboard"`` or ``"channel"``.
      width: hidden channels of the conditioner network.
    """

    event_shape: Tuple[int, int, int]
    parity: int = 0
    mask: str = "checkerboard"
    width: int = 32

    def setup(self):
        h, w, c = self.event_shape
        if self.mask not in IMAGE_MASKS:
            raise ValueError(f"unknown image mask {self.mask!r}; valid choices: "
                             f"{', '.join(sorted(IMAGE_MASKS))}")
        if self.mask == "channel" and c < 2:
            raise ValueError(f"a channel mask needs at least 2 channels, got shape {(h, w, c)}")
        if self.mask == "checkerboard" and h * w < 2:
            raise ValueError(f"a checkerboard mask needs at least 2 pixels, got shape {(h, w, c)}")
        # A shift and a raw log-scale for every entry of the event.
        self.net = CouplingConvNet(features=2 * c, width=self.width)

    def bijector(self) -> distrax.Bijector:
        mask = IMAGE_MASKS[self.mask](self.event_shape, self.parity)

        def conditioner(x):  # [..., h, w, c] -> [..., h, w, c, 2]
            return self.net(x).reshape(*x.shape, 2)

        return affine_coupling_bijector(mask, conditioner)


@register_layer("checkerboard_coupling", event_rank=3, identity_at_init=True)
def _checkerboard_coupling(event_shape: Tuple[int, ...], index: int,
                           width: int = 32) -> FlowLayer:
    """Affine coupling on images with a checkerboard mask (Dinh et al., 2017)."""
    return ImageCoupling(event_shape=event_shape, parity=index % 2, mask="checkerboard",
                         width=width)


@register_layer("channel_coupling", event_rank=3, identity_at_init=True)
def _channel_coupling(event_shape: Tuple[int, ...], index: int, width: int = 32) -> FlowLayer:
    """Affine coupling on images with a channel mask (Dinh et al., 2017)."""
    return ImageCoupling(event_shape=event_shape, parity=index % 2, mask="channel", width=width)
