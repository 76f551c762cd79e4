"""Train states: everything a step needs, as one pytree a checkpoint can hold."""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
import optax
from flax import struct

PyTree = Any


@struct.dataclass
class TrainState:
    """State of one model trained by one optimizer.

    Attributes:
      step: number of optimizer updates applied so far (int32 scalar).
      params: the model parameters (any pytree).
      opt_state: the optax optimizer state.
      key: the run's base PRNG key (raw ``uint32[2]``). Step ``t`` draws its
        randomness from ``fold_in(key, t)``, so a resumed run sees exactly the
        keys an uninterrupted one would.
    """

    step: chex.Array
    params: PyTree
    opt_state: PyTree
    key: chex.Array

    @classmethod
    def create(cls, params: PyTree, optimizer: optax.GradientTransformation,
               key: chex.Array) -> "TrainState":
        return cls(step=jnp.zeros((), jnp.int32), params=params,
                   opt_state=optimizer.init(params), key=key)


@struct.dataclass
class MinMaxState:
    """State of a two-player game: a critic (maximizer) and a generator.

    ``step`` counts outer steps; each outer step applies ``critic_steps``
    critic updates and one generator update (see ``make_minmax_step``).
    ``game`` is any further state the game carries across steps and no
    optimizer updates (BEGAN's balance ``k_t``, a critic's spectral-norm
    power-iteration vectors, a noise schedule's counter): ``None`` unless the
    step is built with ``stateful=True``, whose critic loss returns its next
    value.
    """

    step: chex.Array
    gen_params: PyTree
    gen_opt_state: PyTree
    critic_params: PyTree
    critic_opt_state: PyTree
    key: chex.Array
    game: PyTree = None

    @classmethod
    def create(cls, gen_params: PyTree, critic_params: PyTree,
               gen_optimizer: optax.GradientTransformation,
               critic_optimizer: optax.GradientTransformation,
               key: chex.Array, game: PyTree = None) -> "MinMaxState":
        return cls(step=jnp.zeros((), jnp.int32),
                   gen_params=gen_params, gen_opt_state=gen_optimizer.init(gen_params),
                   critic_params=critic_params,
                   critic_opt_state=critic_optimizer.init(critic_params), key=key,
                   game=game)


@jax.jit
def _all_finite(leaves: list) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def all_finite(tree: PyTree) -> bool:
    """True when every floating-point leaf of ``tree`` is finite (one compiled reduction)."""
    leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
    return not leaves or bool(_all_finite(leaves))
