"""Random image augmentation as pure JAX functions of a key, for use inside a jitted loss."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def random_shift(key: jax.Array, images: jax.Array,
                 max_shift: int) -> jax.Array:  # [n, H, W, C] -> [n, H, W, C]
    """Translates each image by its own integer offset, uniform in ``[-max_shift, max_shift]^2``.

    Pixels shifted in are 0 (the background of MNIST-style data). Training on
    slightly distorted copies of digits is an old remedy for small training
    sets (Simard, Steinkraus and Platt, ICDAR 2003, use affine and elastic
    distortions); integer shifts are the simplest such distortion, and MNIST
    digits sit in a 20x20 box centred in the 28x28 frame, so shifts of up to
    4 pixels keep them whole.
    """
    if max_shift == 0:
        return images
    n, height, width, channels = images.shape
    offsets = jax.random.randint(key, (n, 2), 0, 2 * max_shift + 1)  # [n, 2] in [0, 2s]
    pad = ((0, 0), (max_shift, max_shift), (max_shift, max_shift), (0, 0))
    padded = jnp.pad(images, pad)

    def crop(image, offset):  # [H + 2s, W + 2s, C], [2] -> [H, W, C]
        return jax.lax.dynamic_slice(image, (offset[0], offset[1], 0), (height, width, channels))

    return jax.vmap(crop)(padded, offsets)
