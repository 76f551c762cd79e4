"""An exponential moving average of the generator's weights, kept in its optimizer state.

``track_ema(decay)`` is an optax transformation that leaves the updates
unchanged and keeps

    theta_ema <- decay * theta_ema + (1 - decay) * theta_new,   theta_ema(0) = theta(0),

(Yazici et al., 2019, "The unusual effectiveness of averaging in GAN
training"). Chained after the generator's optimizer it is checkpointed and
resumed with it; ``ema_params(opt_state)`` reads the average back for
evaluation.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import optax

PyTree = Any


class EmaState(NamedTuple):
    """The averaged parameters."""

    ema: PyTree


def track_ema(decay: float) -> optax.GradientTransformation:
    """Tracks the EMA of the parameters after each update (needs ``params`` in ``update``)."""
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"the generator EMA decay must be in [0, 1), got {decay}")

    def init(params):
        return EmaState(jax.tree.map(lambda p: p.copy(), params))

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("track_ema needs the parameters: call update(updates, state, params)")
        new = optax.apply_updates(params, updates)
        ema = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, state.ema, new)
        return updates, EmaState(ema)

    return optax.GradientTransformation(init, update)


def ema_params(opt_state: PyTree) -> Optional[PyTree]:
    """The averaged parameters in an optimizer state containing ``track_ema``'s, else None."""
    found = [leaf for leaf in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, EmaState))
             if isinstance(leaf, EmaState)]
    return found[0].ema if found else None
