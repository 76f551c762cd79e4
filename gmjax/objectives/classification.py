"""Supervised objectives for the in-repo feature classifier."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

import jax
import jax.numpy as jnp
import optax

PyTree = Any
LogitsFn = Callable[[PyTree, jax.Array, jax.Array], jax.Array]
Augment = Callable[[jax.Array, jax.Array], jax.Array]


def cross_entropy_loss(logits_fn: LogitsFn, augment: Optional[Augment] = None
                       ) -> Callable[[PyTree, Tuple[jax.Array, jax.Array], jax.Array],
                                     Tuple[jax.Array, Dict[str, jax.Array]]]:
    """The mean negative log-likelihood of the labels under a softmax classifier.

        L(theta) = -(1/n) sum_i log softmax(f_theta(a(x_i)))_{y_i}

    where ``a`` is a random augmentation (identity by default) drawn with the
    step key, so it is part of the pure, jittable loss.

    Args:
      logits_fn: ``logits_fn(params, images, key) -> [n, classes]``; ``key``
        drives dropout (ignore it for a deterministic network).
      augment: ``augment(key, images) -> images``, e.g. ``random_shift``.

    Returns:
      ``loss(params, (images, labels), key) -> (loss, {"cross_entropy", "accuracy"})``
      with images ``[n, H, W, C]`` and int labels ``[n]``; ``accuracy`` is on
      the (augmented) training batch.
    """

    def loss(params: PyTree, batch: Tuple[jax.Array, jax.Array], key: jax.Array):
        images, labels = batch
        augment_key, net_key = jax.random.split(key)
        if augment is not None:
            images = augment(augment_key, images)
        logits = logits_fn(params, images, net_key)  # [n, classes]
        ce = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))
        accuracy = jnp.mean(jnp.argmax(logits, axis=-1) == labels)
        return ce, {"cross_entropy": ce, "accuracy": accuracy}

    return loss
