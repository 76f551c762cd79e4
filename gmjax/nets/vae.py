"""Encoder and decoder networks of variational autoencoders.

Encoders map a batch of examples to the parameters of a diagonal Gaussian
posterior (Kingma & Welling, 2014, "Auto-encoding variational Bayes",
Appendix C.2),

    (mu, log sigma) = E(x),       q(z | x) = N(z; mu, diag(sigma^2)),

and, with ``context_dim > 0``, an extra context vector h that conditions the
IAF steps of an IAF posterior (Kingma et al., 2016, "Improved variational
inference with inverse autoregressive flow", Sec. 4). Decoders map latents
z ``[..., d]`` (any leading axes: samples, batch) to the parameters of the
observation model p(x | z), one per data dimension:

* ``likelihood="bernoulli"``: logits l, ``p(x | z) = prod_j sigmoid(l_j)^x_j
  (1 - sigmoid(l_j))^(1 - x_j)`` for binarized pixels;
* ``likelihood="gaussian"``: means m and log standard deviations,
  ``p(x | z) = N(x; m, diag(s^2))`` for real-valued data, with ``s`` fixed
  (``variance="fixed"``, ``s = scale``) or one learned parameter per data
  dimension (``variance="learned"``, starting at ``scale``).

Two families of each, with the same interface:

* MLP: ``x -> flatten -> act(Dense) x L -> Dense`` (Kingma & Welling used one
  hidden layer of 500 tanh units on MNIST; Burda et al., 2016, "Importance
  weighted autoencoders", two deterministic layers of 200 tanh units; the
  classic shape 784-500-500-50 is ``hidden=(500, 500), latent_dim=50``).
* Conv: two stride-2 4x4 convolutions (``c``, ``2c`` channels, ReLU), then
  dense layers; the decoder mirrors it with two stride-2 transposed
  convolutions. Any image side divisible by 4 works: 28x28 (7x7 at the
  bottom) and 8x8 digits (2x2).
"""

from __future__ import annotations

import math
from typing import Callable, Dict, NamedTuple, Optional, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from gmjax.nets.conv import kernel_as_matrix

ACTIVATIONS: Dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh, "relu": nn.relu, "elu": nn.elu, "softplus": nn.softplus,
}
LIKELIHOODS = ("bernoulli", "gaussian")
VARIANCES = ("fixed", "learned")


def activation(name: str) -> Callable[[jax.Array], jax.Array]:
    """The nonlinearity called ``name`` (one of ``ACTIVATIONS``)."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; valid choices: "
                         f"{', '.join(sorted(ACTIVATIONS))}") from None


def check_observation(likelihood: str, variance: str = "fixed", scale: float = 1.0) -> None:
    """A ``ValueError`` naming the valid choices for a bad observation model."""
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"unknown likelihood {likelihood!r}; valid choices: "
                         f"{', '.join(LIKELIHOODS)}")
    if variance not in VARIANCES:
        raise ValueError(f"unknown variance {variance!r}; valid choices: {', '.join(VARIANCES)}")
    if not scale > 0:
        raise ValueError(f"the Gaussian decoder's scale must be > 0, got {scale}")


class Encoding(NamedTuple):
    """An encoder's output for a batch of n examples.

    Attributes:
      mean: ``[n, d]`` posterior means mu.
      log_scale: ``[n, d]`` posterior log standard deviations log sigma.
      context: ``[n, C]`` IAF context h, or None for encoders without one.
    """

    mean: jax.Array
    log_scale: jax.Array
    context: Optional[jax.Array] = None


class DecoderOutput(NamedTuple):
    """The parameters of p(x | z) for latents ``[..., d]``.

    Attributes:
      loc: ``[..., *data_shape]``: logits (Bernoulli) or means (Gaussian).
      log_scale: Gaussian log standard deviations, broadcasting against
        ``loc`` (``[*data_shape]`` or a scalar); None for Bernoulli.
    """

    loc: jax.Array
    log_scale: Optional[jax.Array] = None


def _gaussian_head(h: jax.Array, latent_dim: int, context_dim: int
                   ) -> Encoding:  # [n, width] -> Encoding
    """One dense layer to ``(mu, log sigma[, h])``."""
    out = nn.Dense(2 * latent_dim + context_dim, name="head")(h)
    mean, log_scale = out[:, :latent_dim], out[:, latent_dim:2 * latent_dim]
    context = out[:, 2 * latent_dim:] if context_dim else None
    return Encoding(mean, log_scale, context)


def _observation(module: nn.Module, loc: jax.Array, data_shape: Tuple[int, ...],
                 likelihood: str, variance: str, scale: float) -> DecoderOutput:
    """Adds the Gaussian log standard deviation (a parameter when learned)."""
    if likelihood == "bernoulli":
        return DecoderOutput(loc)
    if variance == "learned":
        log_scale = module.param("log_scale", nn.initializers.constant(math.log(scale)),
                                 tuple(data_shape))
    else:
        log_scale = jnp.full((), math.log(scale), loc.dtype)
    return DecoderOutput(loc, log_scale)


class MLPEncoder(nn.Module):
    """``x [n, *data_shape] -> Encoding`` through ``len(hidden)`` dense layers.

    Attributes:
      latent_dim: d.
      hidden: widths of the hidden layers (``()``: an affine encoder).
      activation: name in ``ACTIVATIONS``.
      context_dim: width C of the IAF context h (0: no context).
    """

    latent_dim: int
    hidden: Sequence[int] = (500, 500)
    activation: str = "tanh"
    context_dim: int = 0

    @nn.compact
    def __call__(self, x: jax.Array) -> Encoding:
        act = activation(self.activation)
        h = x.reshape(x.shape[0], -1)  # [n, D]
        for width in self.hidden:
            h = act(nn.Dense(width)(h))
        return _gaussian_head(h, self.latent_dim, self.context_dim)


class MLPDecoder(nn.Module):
    """``z [..., d] -> DecoderOutput`` with ``loc [..., *data_shape]``.

    Attributes:
      data_shape: shape of one example, e.g. ``(28, 28, 1)`` or ``(2,)``.
      hidden: widths of the hidden layers (``()``: an affine decoder).
      activation: name in ``ACTIVATIONS``.
      likelihood: ``"bernoulli"`` or ``"gaussian"``.
      variance: ``"fixed"`` or ``"learned"`` (Gaussian only).
      scale: the Gaussian's standard deviation (fixed) or its initial value (learned).
    """

    data_shape: Tuple[int, ...]
    hidden: Sequence[int] = (500, 500)
    activation: str = "tanh"
    likelihood: str = "bernoulli"
    variance: str = "fixed"
    scale: float = 1.0

    @nn.compact
    def __call__(self, z: jax.Array) -> DecoderOutput:
        check_observation(self.likelihood, self.variance, self.scale)
        act = activation(self.activation)
        h = z
        for width in self.hidden:
            h = act(nn.Dense(width)(h))
        loc = nn.Dense(math.prod(self.data_shape))(h)
        loc = loc.reshape(z.shape[:-1] + tuple(self.data_shape))
        return _observation(self, loc, self.data_shape, self.likelihood, self.variance,
                            self.scale)


def _check_image_shape(data_shape: Tuple[int, ...]) -> None:
    if len(data_shape) != 3 or data_shape[0] % 4 or data_shape[1] % 4:
        raise ValueError("the conv encoder/decoder take images [h, w, c] with h and w "
                         f"divisible by 4, got data shape {tuple(data_shape)}")


class ConvEncoder(nn.Module):
    """``x [n, h, w, c] -> Encoding``: two stride-2 4x4 convolutions, then dense layers.

        h_1 = relu(conv_4x4/2(x))        # [n, h/2, w/2, channels]
        h_2 = relu(conv_4x4/2(h_1))      # [n, h/4, w/4, 2 channels]
        h_3 = relu(Dense(flatten(h_2)))  # [n, hidden[-1]], one per entry of ``hidden``

    Attributes:
      latent_dim: d.
      channels: channels of the first convolution (the second has twice as many).
      hidden: widths of the dense layers after the convolutions.
      context_dim: width C of the IAF context h (0: no context).
    """

    latent_dim: int
    channels: int = 32
    hidden: Sequence[int] = (256,)
    context_dim: int = 0

    @nn.compact
    def __call__(self, x: jax.Array) -> Encoding:
        _check_image_shape(x.shape[1:])
        init = kernel_as_matrix(nn.linear.default_kernel_init)
        c = self.channels
        h = nn.relu(nn.Conv(c, (4, 4), strides=(2, 2), padding="SAME", kernel_init=init)(x))
        h = nn.relu(nn.Conv(2 * c, (4, 4), strides=(2, 2), padding="SAME", kernel_init=init)(h))
        h = h.reshape(x.shape[0], -1)
        for width in self.hidden:
            h = nn.relu(nn.Dense(width)(h))
        return _gaussian_head(h, self.latent_dim, self.context_dim)


class ConvDecoder(nn.Module):
    """``z [..., d] -> DecoderOutput`` with ``loc [..., h, w, c]``, mirroring ``ConvEncoder``.

        g_0 = relu(Dense(z))                       # one per entry of ``hidden``
        g_1 = relu(Dense(g_0)) reshaped            # [N, h/4, w/4, 2 channels]
        g_2 = relu(convT_4x4/2(g_1))               # [N, h/2, w/2, channels]
        loc = convT_4x4/2(g_2)                     # [N, h, w, c]

    Attributes:
      data_shape: ``(h, w, c)`` with h and w divisible by 4.
      channels, hidden: as in ``ConvEncoder``.
      likelihood, variance, scale: as in ``MLPDecoder``.
    """

    data_shape: Tuple[int, int, int]
    channels: int = 32
    hidden: Sequence[int] = (256,)
    likelihood: str = "bernoulli"
    variance: str = "fixed"
    scale: float = 1.0

    @nn.compact
    def __call__(self, z: jax.Array) -> DecoderOutput:
        _check_image_shape(self.data_shape)
        check_observation(self.likelihood, self.variance, self.scale)
        init = kernel_as_matrix(nn.linear.default_kernel_init)
        height, width, out_channels = self.data_shape
        c = self.channels
        batch = z.shape[:-1]
        g = z.reshape(-1, z.shape[-1])  # [N, d], N = prod(batch)
        for units in self.hidden:
            g = nn.relu(nn.Dense(units)(g))
        g = nn.relu(nn.Dense((height // 4) * (width // 4) * 2 * c)(g))
        g = g.reshape(-1, height // 4, width // 4, 2 * c)
        g = nn.relu(nn.ConvTranspose(c, (4, 4), strides=(2, 2), padding="SAME",
                                     kernel_init=init)(g))
        loc = nn.ConvTranspose(out_channels, (4, 4), strides=(2, 2), padding="SAME",
                               kernel_init=init)(g)  # [N, h, w, c]
        loc = loc.reshape(batch + tuple(self.data_shape))
        return _observation(self, loc, self.data_shape, self.likelihood, self.variance,
                            self.scale)
