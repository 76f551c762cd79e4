"""Energy networks ``E_theta: x -> R`` for energy-based models.

``EnergyMLP`` for vectors (2-D toy data, tabular data) and ``EnergyConv``, a
small strided convolutional energy for 28 x 28 images in the spirit of Du and
Mordatch ("Implicit generation and modeling with energy-based models",
NeurIPS 2019), kept small for CPU runs. Both use smooth activations (swish
by default): Langevin dynamics follows ``grad_x E``, which ReLU makes
piecewise constant.

``base_scale = s > 0`` adds the confining term ``|x|^2 / (2 s^2)``:

    E_theta(x) = f_theta(x) + |x|^2 / (2 s^2).

A network with Lipschitz activations grows at most linearly in |x|, so the
quadratic term makes ``exp(-E_theta)`` integrable for every theta, as a
density (and a sampling target) must be; without it a learned energy can
fall without bound away from the data, where no negative sample ever looks.
"""

from __future__ import annotations

from typing import Callable, Dict, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gmjax.nets.conv import kernel_as_matrix

ENERGY_ACTIVATIONS: Dict[str, Callable[[jax.Array], jax.Array]] = {
    "swish": nn.swish, "elu": nn.elu, "softplus": nn.softplus, "tanh": jnp.tanh,
    "leaky_relu": nn.leaky_relu,
}


def energy_activation(name: str) -> Callable[[jax.Array], jax.Array]:
    """The nonlinearity called ``name`` (one of ``ENERGY_ACTIVATIONS``)."""
    try:
        return ENERGY_ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; valid choices: "
                         f"{', '.join(sorted(ENERGY_ACTIVATIONS))}") from None


def confinement(x: jax.Array, base_scale: float, event_ndim: int) -> jax.Array:
    """``|x|^2 / (2 s^2)`` over the last ``event_ndim`` axes (0 when ``s = 0``)."""
    if base_scale <= 0:
        return jnp.zeros(x.shape[:x.ndim - event_ndim], x.dtype)
    axes = tuple(range(x.ndim - event_ndim, x.ndim))
    return 0.5 * jnp.sum(x * x, axis=axes) / base_scale ** 2


class EnergyMLP(nn.Module):
    """``[..., d] -> [...]``: an MLP ``f_theta`` to one output, plus the confining term.

    Attributes:
      hidden: widths of the hidden layers.
      activation: a name in ``ENERGY_ACTIVATIONS``.
      base_scale: s of the confining term (0: none).
    """

    hidden: Sequence[int] = (128, 128)
    activation: str = "swish"
    base_scale: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = energy_activation(self.activation)
        h = x
        for width in self.hidden:
            h = act(nn.Dense(width)(h))
        return nn.Dense(1)(h)[..., 0] + confinement(x, self.base_scale, 1)


class EnergyConv(nn.Module):
    """``[n, h, w, c] -> [n]``: strided 3x3 convolutions, global mean pool, a linear head.

    ``channels = (16, 32, 64)`` on 28 x 28 images gives feature maps 14, 7
    and 4 pixels wide (about 23,000 parameters).

    Attributes:
      channels: output channels of each stride-2 convolution.
      activation: a name in ``ENERGY_ACTIVATIONS``.
      base_scale: s of the confining term over the whole image (0: none).
    """

    channels: Sequence[int] = (16, 32, 64)
    activation: str = "swish"
    base_scale: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = energy_activation(self.activation)
        init = kernel_as_matrix(nn.linear.default_kernel_init)
        h = x
        for c in self.channels:
            h = act(nn.Conv(c, (3, 3), strides=(2, 2), padding="SAME", kernel_init=init)(h))
        h = jnp.mean(h, axis=(-3, -2))                                          # [n, c]
        return nn.Dense(1)(h)[..., 0] + confinement(x, self.base_scale, 3)


__all__ = ["ENERGY_ACTIVATIONS", "EnergyConv", "EnergyMLP", "confinement", "energy_activation"]
