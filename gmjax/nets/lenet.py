"""A small LeNet-style convolutional classifier whose hidden layer is a feature map.

The layout follows LeNet-5 (LeCun, Bottou, Bengio and Haffner, "Gradient-based
learning applied to document recognition", Proc. IEEE 1998): convolution and
pooling stages, then fully connected layers. Here each stage is a ``k x k``
convolution (``SAME`` padding) with ReLU and 2x2 average pooling (LeNet-5's
"subsampling"; on a 2-core CPU its training steps also measured up to twice as
fast as with max pooling), followed by one hidden dense layer and a linear
read-out:

    h_0 = image                                    # [n, H, W, 1] in [0, 1]
    h_s = avgpool(relu(conv_s(h_{s-1})))           # H / 2^s x W / 2^s x channels[s]
    phi = relu(W_f flatten(h_S) + b_f)             # [n, feature_dim]
    logits = W_o dropout(phi) + b_o                # [n, num_classes]

``phi`` (the penultimate layer) is what sample-quality metrics compare, in the
way FID uses the pool features of Inception (Heusel et al., 2017). Dropout
(Srivastava et al., JMLR 2014) sits after ``phi``, so features never depend on
it; pass ``deterministic=False`` and a ``"dropout"`` rng to train with it.
Works for any image size divisible by ``2^len(channels)`` (28x28 and 8x8 with
the default two stages).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


class LeNet(nn.Module):
    """Conv-pool stages, a hidden feature layer and a linear classifier.

    Attributes:
      num_classes: number of logits.
      channels: output channels of each conv-pool stage.
      kernel_size: side of the square convolution kernels.
      feature_dim: width of the penultimate (feature) layer.
      dropout_rate: dropout on the features before the read-out (0 disables).
    """

    num_classes: int = 10
    channels: Sequence[int] = (16, 32)
    kernel_size: int = 5
    feature_dim: int = 128
    dropout_rate: float = 0.0

    def setup(self):
        k = (self.kernel_size, self.kernel_size)
        self.convs = [nn.Conv(c, k, padding="SAME") for c in self.channels]
        self.hidden = nn.Dense(self.feature_dim)
        self.dropout = nn.Dropout(self.dropout_rate)
        self.head = nn.Dense(self.num_classes)

    def features(self, images: jax.Array) -> jax.Array:  # [n, H, W, C] -> [n, feature_dim]
        """The penultimate activations ``phi`` (after ReLU)."""
        h = images
        for conv in self.convs:
            h = nn.avg_pool(nn.relu(conv(h)), (2, 2), strides=(2, 2))
        return nn.relu(self.hidden(h.reshape(h.shape[0], -1)))

    def classify(self, features: jax.Array,
                 deterministic: bool = True) -> jax.Array:  # [n, feature_dim] -> [n, classes]
        """Logits from features: ``W_o dropout(phi) + b_o``."""
        return self.head(self.dropout(features, deterministic=deterministic))

    def __call__(self, images: jax.Array,
                 deterministic: bool = True) -> jax.Array:  # [n, H, W, C] -> [n, classes]
        return self.classify(self.features(images), deterministic)


def features_and_logits(model: LeNet, params, images: jax.Array
                        ) -> tuple[jax.Array, jax.Array]:  # [n, f], [n, classes]
    """Both outputs from one forward pass (no dropout)."""
    phi = model.apply(params, images, method=LeNet.features)
    return phi, model.apply(params, phi, method=LeNet.classify)


def image_input(images: jax.Array) -> jax.Array:  # [n, H, W, C] -> same, float32 in [0, 1]
    """The network's input scale: ``uint8`` intensities become ``x / 255``; floats pass as is.

    Float images must already be in [0, 1] (what ``gmjax.data`` returns for
    ``digits`` and what ``scale_uint8`` makes of MNIST).
    """
    images = jnp.asarray(images)
    if images.dtype == jnp.uint8:
        return images.astype(jnp.float32) / 255.0
    return images.astype(jnp.float32)
