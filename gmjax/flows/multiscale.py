"""The multi-scale architecture of RealNVP and Glow, as one shape-preserving flow layer.

Dinh et al., "Density estimation using Real NVP", ICLR 2017, Sec. 3.6;
Kingma & Dhariwal, "Glow", NeurIPS 2018, Sec. 3 and Fig. 2b. In the
normalizing direction, level l maps its input h_l to

    (z_l, h_{l+1}) = split(f_l(h_l)),

where f_l is a stack of layers containing squeezes (so it trades spatial
size for channels) and the split sends the first half of the channels, z_l,
straight to the latent; the last level sends all it has there. Every variable thus
reaches the latent, and ``log|det|`` is the sum of the levels' log-dets.

Here the factored-out z_l and the output of the later levels are put back
together and *unsqueezed* to the level's input shape. Concatenation and
unsqueezing are fixed permutations of the entries (log-det 0), so the latent
has the image's own shape ``[h, w, c]`` and a standard normal over it is the
standard normal over all the z_l: the whole architecture is one
shape-preserving ``FlowLayer``, usable in ``Flow`` and ``distrax.Transformed``
(the ``glow`` and ``realnvp_image`` recipes of ``gmjax.flows.recipes`` are
built this way).
As a distrax chain (data side first), level l is

    [layers of f_l..., FactorOut(level l+1), Squeeze x (number of squeezes in f_l)]

whose inverse runs f_l, passes the kept channels to level l+1 and unsqueezes.
The factored-out variables get the standard normal prior of RealNVP, not
Glow's learned conditional prior.
"""

from __future__ import annotations

from typing import Callable, Sequence, Tuple

import distrax
import jax
import jax.numpy as jnp

from gmjax.flows.base import FlowLayer
from gmjax.flows.glow import Squeeze, SqueezeLayer


class FactorOut(distrax.Bijector):
    """Identity on the first ``num_out`` channels of ``[..., h, w, c]``, ``inner`` on the rest.

    ``log|det| = log|det J_inner|`` of the remaining channels.
    """

    def __init__(self, inner: distrax.Bijector, num_out: int):
        super().__init__(event_ndims_in=3)
        self.inner = inner
        self.num_out = num_out

    def _apply(self, method: Callable, x: jax.Array) -> Tuple[jax.Array, jax.Array]:
        out, rest = x[..., :self.num_out], x[..., self.num_out:]
        rest, log_det = method(rest)
        return jnp.concatenate([out, rest], axis=-1), log_det

    def forward_and_log_det(self, x: jax.Array) -> Tuple[jax.Array, jax.Array]:
        return self._apply(self.inner.forward_and_log_det, x)

    def inverse_and_log_det(self, y: jax.Array) -> Tuple[jax.Array, jax.Array]:
        return self._apply(self.inner.inverse_and_log_det, y)


def level_shapes(event_shape: Tuple[int, int, int],
                 levels: Sequence[Sequence[FlowLayer]]) -> list[Tuple[int, int, int]]:
    """The input shape of every level (``SqueezeLayer`` entries change the shape)."""
    shapes = []
    h, w, c = event_shape
    for layers in levels:
        shapes.append((h, w, c))
        for layer in layers:
            if isinstance(layer, SqueezeLayer):
                h, w, c = h // 2, w // 2, 4 * c
        c = c - c // 2  # the channels that go on to the next level
    return shapes


class MultiScale(FlowLayer):
    """Levels of layers with half the channels factored out after each level but the last.

    Attributes:
      event_shape: ``(h, w, c)`` of the data.
      levels: per level, its layers, data side first; ``SqueezeLayer`` entries
        squeeze, every other layer must keep the shape it is given.
    """

    event_shape: Tuple[int, int, int]
    levels: Sequence[Sequence[FlowLayer]]

    def _num_squeezes(self, i: int) -> int:
        return sum(isinstance(layer, SqueezeLayer) for layer in self.levels[i])

    def _level_bijector(self, i: int) -> distrax.Bijector:
        parts = [layer.bijector() for layer in self.levels[i]]
        if i + 1 < len(self.levels):
            num_out = self._output_shape(i)[-1] // 2
            parts.append(FactorOut(self._level_bijector(i + 1), num_out))
        parts += [Squeeze() for _ in range(self._num_squeezes(i))]
        return distrax.Chain(parts)

    def _output_shape(self, i: int) -> Tuple[int, int, int]:
        """Shape after level i's layers, before the split."""
        h, w, c = level_shapes(self.event_shape, self.levels)[i]
        s = 2 ** self._num_squeezes(i)
        return h // s, w // s, c * s * s

    def bijector(self) -> distrax.Bijector:
        return self._level_bijector(0)

    def __call__(self, x: jax.Array) -> Tuple[jax.Array, jax.Array]:
        """The normalizing direction, layer by layer (so ``init`` shows every layer its input)."""
        return self._normalize(x, 0)

    def _normalize(self, x: jax.Array, i: int) -> Tuple[jax.Array, jax.Array]:
        log_det = jnp.zeros(x.shape[:-3], x.dtype)
        for layer in self.levels[i]:
            x, ld = layer(x)
            log_det = log_det + ld
        if i + 1 < len(self.levels):
            num_out = x.shape[-1] // 2
            rest, ld = self._normalize(x[..., num_out:], i + 1)
            x = jnp.concatenate([x[..., :num_out], rest], axis=-1)
            log_det = log_det + ld
        for _ in range(self._num_squeezes(i)):
            x = Squeeze().inverse(x)
        return x, log_det
