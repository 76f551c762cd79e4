"""Elementwise flow layers: the logit pre-processing of RealNVP and NICE's diagonal scaling.

* ``logit`` (Dinh et al., 2017): data x in (0, 1) are squashed
  away from the boundary and mapped to the real line (the symmetric squashing
  below keeps x' in [alpha, 1 - alpha]; RealNVP writes alpha + (1 - alpha) x),

      x' = alpha + (1 - 2 alpha) x,   z = logit(x') = log x' - log(1 - x'),
      log|det dz/dx| = sum_i [log(1 - 2 alpha) - log x'_i - log(1 - x'_i)],

  so sampling ends with x = (sigmoid(z) - alpha) / (1 - 2 alpha). It has no
  parameters; the log-det is what converts densities of z into densities of
  the (0, 1)-valued data (dequantized pixels, for instance).
* ``diag_scale`` (Dinh et al., 2015): the last layer of NICE,
  z = exp(s) * x with learnable log-scales s, log|det dz/dx| = sum_i s_i;
  s starts at 0 (identity).

Both act elementwise, so they take events of any rank: the registry builds
them for vectors, and ``Logit(event_ndims=3)`` / ``DiagScale(event_shape=(h, w, c))``
work on images.
"""

from __future__ import annotations

from typing import Sequence, Tuple

import distrax
import flax.linen as nn

from gmjax.flows.base import FlowLayer
from gmjax.flows.registry import register_layer


def logit_bijector(alpha: float, event_ndims: int) -> distrax.Bijector:
    """Sampling direction ``x = (sigmoid(z) - alpha) / (1 - 2 alpha)``, elementwise."""
    width = 1.0 - 2.0 * alpha
    unsquash = distrax.ScalarAffine(shift=-alpha / width, scale=1.0 / width)
    return distrax.Block(distrax.Chain([unsquash, distrax.Sigmoid()]), event_ndims)


class Logit(FlowLayer):
    """RealNVP's logit pre-processing: data in (0, 1) -> R, no parameters.

    Attributes:
      alpha: squashing constant (RealNVP uses 0.05 on images); 0 is the plain logit.
      event_ndims: rank of one example.
    """

    alpha: float = 0.05
    event_ndims: int = 1

    def bijector(self) -> distrax.Bijector:
        return logit_bijector(self.alpha, self.event_ndims)


class DiagScale(FlowLayer):
    """NICE's diagonal scaling ``z = exp(s) * x`` with learnable ``s`` of shape ``event_shape``."""

    event_shape: Sequence[int]

    def setup(self):
        self.log_scale = self.param("log_scale", nn.initializers.zeros, tuple(self.event_shape))

    def bijector(self) -> distrax.Bijector:
        normalize = distrax.ScalarAffine(shift=0.0, log_scale=self.log_scale)
        return distrax.Inverse(distrax.Block(normalize, len(self.event_shape)))


@register_layer("logit", event_rank=1, identity_at_init=False)
def _logit(event_shape: Tuple[int, ...], index: int, alpha: float = 0.05) -> FlowLayer:
    """Logit pre-processing of data in (0, 1) (Dinh et al., 2017)."""
    del index
    return Logit(alpha=alpha, event_ndims=len(event_shape))


@register_layer("diag_scale", event_rank=1, identity_at_init=True)
def _diag_scale(event_shape: Tuple[int, ...], index: int) -> FlowLayer:
    """Diagonal scaling, NICE's last layer (Dinh et al., 2015)."""
    del index
    return DiagScale(event_shape=tuple(event_shape))
