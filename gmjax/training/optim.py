"""Optimizers by name, with schedules, clipping and gradient accumulation.

``make_optimizer(config.optim, total_steps)`` is what every experiment calls;
the fields it reads are the ``optim`` block of the shared experiment config:

  name              one of ``OPTIMIZERS.names()``
  lr                peak learning rate
  schedule          one of ``SCHEDULES.names()`` (default ``constant``)
  warmup_steps      linear warm-up length for ``warmup_cosine``
  pct_start         share of the steps spent warming up in ``one_cycle`` (0.3)
  grad_clip         clip the global gradient norm to this value (0: off)
  weight_decay      decoupled weight decay for ``adamw`` / ``lamb``
  b1, b2, eps       Adam-family moments
  momentum          for ``sgd`` / ``rmsprop``
  accumulate_steps  apply one update every k calls, averaging the k gradients
                    (``optax.MultiSteps``) -- for batches that do not fit
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
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


def one_cycle(step: jax.Array, total_steps: jax.Array, peak: jax.Array, pct_start: float = 0.3,
              div_factor: float = 25.0, final_div_factor: float = 1e4) -> jax.Array:
    """One-cycle learning rate (Smith and Topin, 2019): cosine up to ``peak``, cosine down.

    Starts at ``peak / div_factor``, reaches ``peak`` after ``pct_start`` of
    the ``total_steps`` and ends at ``peak / div_factor / final_div_factor``.
    Written with ``jnp`` so that ``peak`` and ``total_steps`` may be traced
    (see ``make_optimizer(..., injectable=True)``).
    """
    step = jnp.asarray(step, jnp.float32)
    total = jnp.asarray(total_steps, jnp.float32)
    start, end = peak / div_factor, peak / div_factor / final_div_factor
    up = jnp.maximum(pct_start * total, 1.0)
    down = jnp.maximum(total - up, 1.0)
    warm = start + (peak - start) * 0.5 * (1.0 - jnp.cos(jnp.pi * jnp.minimum(step / up, 1.0)))
    frac = jnp.clip((step - up) / down, 0.0, 1.0)
    cool = end + (peak - end) * 0.5 * (1.0 + jnp.cos(jnp.pi * frac))
    return jnp.where(step < up, warm, cool)


@SCHEDULES.register("one_cycle")
def _one_cycle(lr, total_steps, c):
    pct_start = float(c.get("pct_start", 0.3))
    return lambda step: one_cycle(step, total_steps, lr, pct_start)


def _build(optim: Mapping[str, Any], lr, total_steps) -> optax.GradientTransformation:
    schedule = SCHEDULES.get(optim.get("schedule", "constant"))(lr, total_steps, optim)
    tx = OPTIMIZERS.get(optim["name"])(schedule, optim)
    clip = float(optim.get("grad_clip", 0.0) or 0.0)
    if clip > 0:
        tx = optax.chain(optax.clip_by_global_norm(clip), tx)
    k = int(optim.get("accumulate_steps", 1) or 1)
    if k > 1:
        tx = optax.MultiSteps(tx, every_k_schedule=k).gradient_transformation()
    return tx


def make_optimizer(optim: Mapping[str, Any], total_steps: int = 1, *,
                   injectable: bool = False) -> optax.GradientTransformation:
    """Builds the optax optimizer an ``optim`` config block describes.

    Args:
      optim: a mapping (``ConfigDict`` or dict) with at least ``name`` and ``lr``.
      total_steps: number of optimizer updates, for decaying schedules.
      injectable: keep ``lr`` and ``total_steps`` in the optimizer state
        (``optax.inject_hyperparams``) so that one compiled step serves runs
        that differ only in them: set them in a fresh state with
        ``set_hyperparams``. TemperFlow restarts the optimizer at every stage
        with the stage's own peak rate and length this way. Only the
        trace-safe schedules (``constant``, ``one_cycle``) can be injected.

    Raises:
      ValueError: for an unknown optimizer or schedule name (listing the valid
        ones) or a non-positive learning rate / accumulation count.
    """
    OPTIMIZERS.get(optim["name"])  # names the valid choices when unknown
    schedule = optim.get("schedule", "constant")
    SCHEDULES.get(schedule)
    lr = float(optim["lr"])
    if not lr > 0:
        raise ValueError(f"optim.lr must be positive, got {lr}")
    k = int(optim.get("accumulate_steps", 1) or 1)
    if k < 1:
        raise ValueError(f"optim.accumulate_steps must be >= 1, got {k}")
    tx = _build(optim, lr, total_steps)  # reads and checks every field now, not at init
    if not injectable:
        return tx
    if schedule not in INJECTABLE_SCHEDULES:
        raise ValueError(f"optim.schedule={schedule!r} cannot take its learning rate and length "
                         f"at run time; use one of {INJECTABLE_SCHEDULES}")
    return optax.inject_hyperparams(lambda lr, total_steps: _build(optim, lr, total_steps))(
        lr=lr, total_steps=float(total_steps))


INJECTABLE_SCHEDULES = ("constant", "one_cycle")


def set_hyperparams(opt_state: Any, **values: float) -> Any:
    """``opt_state`` of an injectable optimizer with ``values`` (``lr``, ``total_steps``) set."""
    hyper = dict(opt_state.hyperparams)
    for name, value in values.items():
        if name not in hyper:
            raise KeyError(f"{name!r} is not an injected hyperparameter ({sorted(hyper)})")
        hyper[name] = jnp.asarray(value, jnp.asarray(hyper[name]).dtype)
    return opt_state._replace(hyperparams=hyper)
