"""MLP generator and critic for GANs on low-dimensional data, and two mode-collapse remedies.

``MLPGenerator`` maps ``z [n, d_z] -> x [n, d_x]``; ``MLPCritic`` maps
``x [n, d_x] -> logit [n]`` and can carry

  * spectral normalization of every ``Dense`` (Miyato et al., 2018), with
    Flax's ``SpectralNorm`` state in ``batch_stats`` (``update_stats``);
  * a ``MinibatchDiscrimination`` layer before its output (Salimans et al.,
    2016, "Improved techniques for training GANs", Sec. 3.2);
  * PacGAN packing (Lin, Khetan, Fanti and Oh, 2018): the critic judges
    ``pack = m`` samples at once, concatenated into one input of width
    ``m d_x``.

Both take class labels when ``num_classes > 0`` (a conditional GAN, Mirza
and Osindero, 2014): a learned embedding ``e(y)`` of ``embed_dim`` numbers
is concatenated to the generator's ``z`` and to the critic's ``x`` (before
packing, so a packed critic sees each sample beside its own label).

Packing keeps the ``[n]`` output contract of the GAN losses: the ``n / m``
packed logits are repeated ``m`` times each, so a batch mean of any
per-example loss equals the mean over packs when ``n`` is a multiple of
``m`` (a sample's pack-mates are its neighbours in the batch; other batches,
at initialization and on evaluation grids, are padded with their own first
examples). A gradient penalty on a packed critic sees, per sample, ``m``
times the gradient of its pack's logit with respect to that sample.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gmjax.nets.spectral import spectral_norm


def leaky_relu(h: jax.Array) -> jax.Array:
    """Leaky ReLU with slope 0.2, the usual GAN critic nonlinearity."""
    return nn.leaky_relu(h, 0.2)


def check_labels(y: Optional[jax.Array], num_classes: int, who: str) -> None:
    """Labels are given exactly when the network is conditional (``num_classes > 0``)."""
    if num_classes > 0 and y is None:
        raise ValueError(f"this {who} is conditional on {num_classes} classes: call it with "
                         f"labels y [n]")
    if num_classes == 0 and y is not None:
        raise ValueError(f"this {who} is unconditional (num_classes=0) but got labels y")


def with_label_embedding(h: jax.Array, y: Optional[jax.Array], num_classes: int,
                         embed_dim: int) -> jax.Array:  # [n, d] -> [n, d + embed_dim]
    """``[h, e(y)]`` with a learned ``nn.Embed`` of the labels; ``h`` when unconditional."""
    check_labels(y, num_classes, "network")
    if num_classes == 0:
        return h
    e = nn.Embed(num_classes, embed_dim, name="label_embedding")(jnp.asarray(y, jnp.int32))
    return jnp.concatenate([h, e.reshape(h.shape[0], embed_dim).astype(h.dtype)], axis=-1)


class MLPGenerator(nn.Module):
    """``G: z [n, d_z] -> x [n, out_dim]``, an MLP with ReLU hidden layers and a linear output.

    Attributes:
      hidden: widths of the hidden layers.
      out_dim: the data dimension.
      num_classes: labels ``y`` in ``{0, ..., num_classes - 1}`` condition
        ``G(z, y)`` (0: unconditional).
      embed_dim: width of the label embedding.
    """

    hidden: Sequence[int]
    out_dim: int = 2
    num_classes: int = 0
    embed_dim: int = 16

    @nn.compact
    def __call__(self, z: jax.Array, y: Optional[jax.Array] = None) -> jax.Array:
        h = with_label_embedding(z, y, self.num_classes, self.embed_dim)        # [n, d_z (+ e)]
        for width in self.hidden:
            h = nn.relu(nn.Dense(width)(h))
        return nn.Dense(self.out_dim)(h)


class MinibatchDiscrimination(nn.Module):
    """Appends, per example, how close it is to the rest of the batch (Salimans et al., 2016).

    With a learned tensor ``T`` of shape ``[d, B, C]``, ``M_i = h_i T`` is
    ``[B, C]`` and

        o(h_i)_b = sum_{j != i} exp(-||M_{i,b} - M_{j,b}||_1),   b = 1..B,

    and the layer returns ``[h_i, o(h_i)]`` (``[n, d + B]``). A collapsed
    generator makes fakes whose ``o`` is large, which the critic can read.

    Attributes:
      num_kernels: ``B``.
      kernel_dim: ``C``.
    """

    num_kernels: int = 5
    kernel_dim: int = 3

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:  # [n, d] -> [n, d + B]
        t = nn.Dense(self.num_kernels * self.kernel_dim, use_bias=False,
                     kernel_init=nn.initializers.normal(0.1))(h)
        m = t.reshape(h.shape[0], self.num_kernels, self.kernel_dim)           # [n, B, C]
        l1 = jnp.sum(jnp.abs(m[:, None] - m[None, :]), axis=-1)               # [n, n, B]
        o = jnp.sum(jnp.exp(-l1), axis=1) - 1.0                               # [n, B], j != i
        return jnp.concatenate([h, o], axis=-1)


class MLPCritic(nn.Module):
    """``x [n, d] -> logit [n]``: an MLP critic with optional spectral norm and remedies.

    Attributes:
      hidden: widths of the hidden layers (leaky ReLU between).
      spectral: spectrally normalize every ``Dense``; ``__call__`` then
        takes ``update_stats`` (``gmjax.nets.spectral``).
      minibatch_kernels: ``B`` of a ``MinibatchDiscrimination`` layer
        before the output (0: none).
      pack: PacGAN's ``m`` (1: no packing).
      num_classes: labels ``y`` condition the critic ``d(x, y)`` (0: none).
      embed_dim: width of the label embedding concatenated to ``x``.

    The last hidden features are sown as ``("intermediates", "features")``
    for feature matching (``gmjax.objectives.adversarial.remedies``).
    """

    hidden: Sequence[int]
    spectral: bool = False
    minibatch_kernels: int = 0
    pack: int = 1
    num_classes: int = 0
    embed_dim: int = 16

    def _dense(self, width: int, update_stats: bool) -> Callable[[jax.Array], jax.Array]:
        layer = nn.Dense(width)
        if self.spectral:
            wrapped = spectral_norm(layer)
            return lambda h: wrapped(h, update_stats=update_stats)
        return layer

    @nn.compact
    def __call__(self, x: jax.Array, y: Optional[jax.Array] = None,
                 update_stats: bool = False) -> jax.Array:
        n = x.shape[0]
        h = with_label_embedding(x.reshape(n, -1), y, self.num_classes,
                                 self.embed_dim)                               # [n, d (+ e)]
        m = self.pack
        if m > 1:
            if n % m:  # wrap around: pad with the batch's own first examples
                h = jnp.take(h, jnp.arange(n + (-n % m)) % n, axis=0)          # [n', d]
            h = h.reshape(h.shape[0] // m, m * h.shape[-1])                    # [n'/m, m d]
        for width in self.hidden:
            h = leaky_relu(self._dense(width, update_stats)(h))
        if self.minibatch_kernels > 0:
            h = MinibatchDiscrimination(self.minibatch_kernels)(h)
        self.sow("intermediates", "features", h)  # what feature matching reads
        out = self._dense(1, update_stats)(h)[:, 0]                             # [n/m]
        return jnp.repeat(out, m)[:n] if m > 1 else out                        # [n]
