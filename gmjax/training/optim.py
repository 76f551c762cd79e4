"""Optimizers by name, with schedules, clipping and gradient accumulation.

``make_optimizer(config.optim, total_steps)`` is what every experiment calls;
the fields it reads are the ``optim`` block of the shared experiment config:

  name              one of ``OPTIMIZERS.names()``
  lr                peak learning rate
  schedule          one of ``SCHEDULES.names()`` (default ``constant``)
  warmup_steps      linear warm-up length for ``warmup_cosine``
  grad_clip         clip the global gradient norm to this value (0: off)
  weight_decay      decoupled weight decay for ``adamw`` / ``lamb``
  b1, b2, eps       Adam-family moments
  momentum          for ``sgd`` / ``rmsprop``
  accumulate_steps  apply one update every k calls, averaging the k gradients
                    (``optax.MultiSteps``) -- for batches that do not fit
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import optax

from gmjax.registry import Registry

OPTIMIZERS: Registry[Callable[..., optax.GradientTransformation]] = Registry("optimizer")
SCHEDULES: Registry[Callable[..., optax.Schedule]] = Registry("learning-rate schedule")


@OPTIMIZERS.register("adam")
def _adam(lr, c):
    return optax.adam(lr, b1=c.get("b1", 0.9), b2=c.get("b2", 0.999), eps=c.get("eps", 1e-8))


@OPTIMIZERS.register("adamw")
def _adamw(lr, c):
    return optax.adamw(lr, b1=c.get("b1", 0.9), b2=c.get("b2", 0.999), eps=c.get("eps", 1e-8),
                       weight_decay=c.get("weight_decay", 1e-4))


@OPTIMIZERS.register("sgd")
def _sgd(lr, c):
    momentum = c.get("momentum", 0.0)
    return optax.sgd(lr, momentum=momentum or None)


@OPTIMIZERS.register("rmsprop")
def _rmsprop(lr, c):
    return optax.rmsprop(lr, momentum=c.get("momentum", 0.0), eps=c.get("eps", 1e-8))


@OPTIMIZERS.register("lamb")
def _lamb(lr, c):
    return optax.lamb(lr, b1=c.get("b1", 0.9), b2=c.get("b2", 0.999),
                      weight_decay=c.get("weight_decay", 0.0))


@SCHEDULES.register("constant")
def _constant(lr, total_steps, c):
    return optax.constant_schedule(lr)


@SCHEDULES.register("cosine")
def _cosine(lr, total_steps, c):
    return optax.cosine_decay_schedule(lr, decay_steps=max(total_steps, 1))


@SCHEDULES.register("warmup_cosine")
def _warmup_cosine(lr, total_steps, c):
    warmup = c.get("warmup_steps", 0)
    return optax.warmup_cosine_decay_schedule(0.0, lr, warmup_steps=warmup,
                                              decay_steps=max(total_steps, warmup + 1))


def make_optimizer(optim: Mapping[str, Any], total_steps: int = 1) -> optax.GradientTransformation:
    """Builds the optax optimizer an ``optim`` config block describes.

    Args:
      optim: a mapping (``ConfigDict`` or dict) with at least ``name`` and ``lr``.
      total_steps: number of optimizer updates, for decaying schedules.

    Raises:
      ValueError: for an unknown optimizer or schedule name (listing the valid
        ones) or a non-positive learning rate / accumulation count.
    """
    name = optim["name"]
    build = OPTIMIZERS.get(name)
    lr = float(optim["lr"])
    if not lr > 0:
        raise ValueError(f"optim.lr must be positive, got {lr}")
    schedule = SCHEDULES.get(optim.get("schedule", "constant"))(lr, total_steps, optim)
    tx = build(schedule, optim)
    clip = float(optim.get("grad_clip", 0.0) or 0.0)
    if clip > 0:
        tx = optax.chain(optax.clip_by_global_norm(clip), tx)
    k = int(optim.get("accumulate_steps", 1) or 1)
    if k < 1:
        raise ValueError(f"optim.accumulate_steps must be >= 1, got {k}")
    if k > 1:
        tx = optax.MultiSteps(tx, every_k_schedule=k).gradient_transformation()
    return tx
