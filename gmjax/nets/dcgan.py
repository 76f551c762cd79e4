"""DCGAN networks for 28x28 grey images: a transposed-conv generator and a conv discriminator.

The layout follows DCGAN (Radford, Metz and Chintala, "Unsupervised
representation learning with deep convolutional generative adversarial
networks", ICLR 2016) scaled to 28x28 images: strided (transposed)
convolutions instead of pooling, ReLU in the generator with ``tanh`` on the
output, leaky ReLU (slope 0.2) in the discriminator, and weights drawn from
N(0, 0.02^2). With ``c = channels``:

    generator  G: z [n, d]
        h_0 = a(W_0 z + b_0  reshaped)          # [n, 7, 7, 2c]
        h_1 = a(up(h_0))                        # [n, 14, 14, c]
        x   = tanh(up(h_1))                     # [n, 28, 28, 1] in [-1, 1]

    discriminator d: x [n, 28, 28, 1]
        h_1 = lrelu(conv_4x4/2(x))              # [n, 14, 14, c]
        h_2 = lrelu(conv_4x4/2(h_1))            # [n, 7, 7, 2c]
        d(x) = w^T flatten(h_2) + b             # [n], a logit: D(x) = sigmoid(d(x))

where ``up`` doubles the side, either by DCGAN's transposed convolution
(``upsample="transpose"``: ``convT_4x4/2``) or by nearest-neighbour
upsampling then a 3x3 convolution (``upsample="resize"``: Odena, Dumoulin and
Olah, "Deconvolution and checkerboard artifacts", Distill 2016), and ``a`` is
the generator's activation: ``relu`` with the normalization below.

Conditional variants (``num_classes > 0``; Mirza and Osindero, 2014): the
generator reads ``[z, onehot(y)]`` in place of ``z``, and the discriminator
adds the projection term of Miyato and Koyama ("cGANs with projection
discriminator", ICLR 2018, Eq. 3), ``d(x, y) = w^T phi(x) + b + e(y)^T phi(x)``
with ``phi(x) = flatten(h_2)`` and ``e`` a learned class embedding.

Deviation from the paper: DCGAN batch-normalizes every hidden layer. Batch
norm keeps running statistics (a second, non-trainable state pytree) and
makes ``G(z)`` and ``d(x)`` depend on the rest of the batch, which the latent
energy ``E(z) = -log N(z; 0, I) - d(G(z))`` of ``gmjax.targets.latent_ebm``
must not. Here normalization is stateless and per example:

  ``norm="pixel"``  a(h) = PN(relu(h)), pixelwise feature normalization of the
                    generator's hidden maps, PN(h) = h / sqrt(mean_channels h^2
                    + 1e-8) (Karras et al., "Progressive growing of GANs",
                    ICLR 2018, Sec. 4.2); the discriminator is left as is;
  ``norm="layer"``  a(h) = relu(LN(h)), LayerNorm over each example's (h, w, c)
                    activations, also before the discriminator's second
                    leaky ReLU (Ba, Kiros and Hinton, 2016);
  ``norm="none"``   a(h) = relu(h).
"""

from __future__ import annotations

from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from gmjax.nets.conv import kernel_as_matrix
from gmjax.nets.gan_mlp import check_labels

NORMS = ("none", "pixel", "layer")
UPSAMPLINGS = ("transpose", "resize")
OUTPUTS = ("tanh", "none")
DCGAN_INIT_STD = 0.02  # Radford et al. (2016), Sec. 4


def _check(norm: str, output: str = "tanh", upsample: str = "transpose") -> None:
    for what, value, valid in (("norm", norm, NORMS), ("output", output, OUTPUTS),
                               ("upsample", upsample, UPSAMPLINGS)):
        if value not in valid:
            raise ValueError(f"unknown {what} {value!r}; valid choices: {', '.join(valid)}")


def pixel_norm(h: jax.Array, eps: float = 1e-8) -> jax.Array:  # [..., c] -> [..., c]
    """``h / sqrt(mean_c h^2 + eps)`` over the channel axis (Karras et al., 2018)."""
    return h * jax.lax.rsqrt(jnp.mean(h * h, axis=-1, keepdims=True) + eps)


def _layer_norm(h: jax.Array) -> jax.Array:  # [n, ...] -> [n, ...]
    """LayerNorm over each example's activations (all axes but the first)."""
    axes = tuple(range(1, h.ndim))
    return nn.LayerNorm(reduction_axes=axes, feature_axes=axes)(h)


def _generator_activation(h: jax.Array, norm: str) -> jax.Array:
    """``relu(h)`` with the generator's normalization: ``relu(LN(h))`` / ``PN(relu(h))``."""
    if norm == "layer":
        return nn.relu(_layer_norm(h))
    h = nn.relu(h)
    return pixel_norm(h) if norm == "pixel" else h


def _upsample(h: jax.Array, features: int, how: str, init) -> jax.Array:
    """``[n, s, s, c] -> [n, 2s, 2s, features]``: ``convT_4x4/2`` or nearest x2 + ``conv_3x3``."""
    if how == "transpose":
        return nn.ConvTranspose(features, (4, 4), strides=(2, 2), padding="SAME",
                                kernel_init=init)(h)
    h = jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2)  # nearest-neighbour, [n, 2s, 2s, c]
    return nn.Conv(features, (3, 3), padding="SAME", kernel_init=init)(h)


class DCGANGenerator(nn.Module):
    """``z [n, d] -> images [n, 4 * base_size, 4 * base_size, out_channels]``.

    Attributes:
      channels: ``c``; the 7x7 stage has ``2c`` channels, the 14x14 stage ``c``.
      out_channels: image channels (1 for grey images).
      base_size: side of the first feature map (7 for 28x28 images).
      norm: ``"none"``, ``"pixel"`` or ``"layer"`` on the hidden stages.
      upsample: ``"transpose"`` (DCGAN) or ``"resize"`` (nearest x2, 3x3 conv).
      output: ``"tanh"`` (images in [-1, 1]) or ``"none"`` (the pre-activation,
        e.g. as logits of a Bernoulli decoder).
      num_classes: labels ``y`` condition ``G(z, y)``, as one-hot columns
        appended to ``z`` (0: unconditional).
    """

    channels: int = 32
    out_channels: int = 1
    base_size: int = 7
    norm: str = "none"
    upsample: str = "transpose"
    output: str = "tanh"
    num_classes: int = 0

    @nn.compact
    def __call__(self, z: jax.Array, y: Optional[jax.Array] = None
                 ) -> jax.Array:  # [n, d] -> [n, 4s, 4s, out_channels]
        _check(self.norm, self.output, self.upsample)
        check_labels(y, self.num_classes, "generator")
        if self.num_classes:
            onehot = jax.nn.one_hot(y, self.num_classes, dtype=z.dtype)     # [n, classes]
            z = jnp.concatenate([z, onehot.reshape(z.shape[0], -1)], axis=-1)
        init = kernel_as_matrix(nn.initializers.normal(DCGAN_INIT_STD))
        s, c = self.base_size, self.channels
        h = nn.Dense(s * s * 2 * c, kernel_init=init)(z)               # [n, s*s*2c]
        h = h.reshape(z.shape[0], s, s, 2 * c)                          # [n, s, s, 2c]
        h = _generator_activation(h, self.norm)
        h = _upsample(h, c, self.upsample, init)
        h = _generator_activation(h, self.norm)                         # [n, 2s, 2s, c]
        x = _upsample(h, self.out_channels, self.upsample, init)       # [n, 4s, 4s, out]
        return jnp.tanh(x) if self.output == "tanh" else x


class DCGANDiscriminator(nn.Module):
    """``images [n, H, W, C] -> logits d(x) [n]`` (``H, W`` divisible by 4).

    Attributes:
      channels: ``c``; the two strided convolutions have ``c`` and ``2c`` channels.
      norm: ``"layer"``: LayerNorm after the second convolution; ``"none"`` and
        ``"pixel"`` (a generator-only normalization): nothing.
      negative_slope: slope of the leaky ReLU (0.2 in DCGAN).
      num_classes: labels ``y`` condition ``d(x, y)`` by a projection term
        (0: unconditional).
    """

    channels: int = 32
    norm: str = "none"
    negative_slope: float = 0.2
    num_classes: int = 0

    @nn.compact
    def __call__(self, x: jax.Array, y: Optional[jax.Array] = None
                 ) -> jax.Array:  # [n, H, W, C] -> [n]
        _check(self.norm)
        check_labels(y, self.num_classes, "discriminator")
        init = kernel_as_matrix(nn.initializers.normal(DCGAN_INIT_STD))
        act = lambda h: nn.leaky_relu(h, self.negative_slope)
        c = self.channels
        h = act(nn.Conv(c, (4, 4), strides=(2, 2), padding="SAME", kernel_init=init)(x))
        h = nn.Conv(2 * c, (4, 4), strides=(2, 2), padding="SAME", kernel_init=init)(h)
        h = act(_layer_norm(h) if self.norm == "layer" else h)         # [n, H/4, W/4, 2c]
        phi = h.reshape(x.shape[0], -1)                                 # [n, k]
        logits = nn.Dense(1, kernel_init=init)(phi)[:, 0]               # [n]
        if self.num_classes:  # projection: + e(y)^T phi(x)
            e = nn.Embed(self.num_classes, phi.shape[-1], name="label_projection",
                         embedding_init=nn.initializers.normal(DCGAN_INIT_STD))
            logits = logits + jnp.sum(e(jnp.asarray(y, jnp.int32)) * phi, axis=-1)
        return logits
