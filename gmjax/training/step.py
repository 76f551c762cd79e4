"""The one builder that turns a loss and an optimizer into a compiled train step.

A loss is a pure function ``loss_fn(params, batch, key) -> (loss, metrics)``.
``make_train_step`` returns ``step(state, batch) -> (state, metrics)`` that

  1. draws the step key ``fold_in(state.key, state.step)`` and, per device,
     ``fold_in(step_key, axis_index("data"))``;
  2. differentiates the loss on the device's shard of the batch;
  3. averages gradients, loss and metrics over devices (``lax.pmean``);
  4. applies the optax update and increments ``state.step``.

With ``steps_per_call = s > 1`` the returned function takes ``s`` stacked
batches ``[s, batch, ...]`` and runs the ``s`` updates in one ``lax.scan``,
which cuts per-step dispatch cost for small models; metrics come back stacked
``[s]``. The result equals ``s`` separate calls.

With ``shared_batch=True`` the "batch" is conditioning rather than data: it
is replicated on every device instead of split, and all ``s`` scanned updates
see the same one. Samplers train this way: each step draws its own points
from the step key, and the batch carries the stage's temperature, reference
model and normalizing-constant estimate.

Gradient accumulation is an optimizer property (``optim.accumulate_steps``,
``optax.MultiSteps``), so it composes with everything here.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Tuple

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh, PartitionSpec as P

from gmjax.training.parallel import DATA_AXIS
from gmjax.training.state import TrainState

PyTree = Any
Metrics = Dict[str, jax.Array]
LossFn = Callable[[PyTree, PyTree, jax.Array], Tuple[jax.Array, Metrics]]


def device_key(key: jax.Array, step: jax.Array) -> jax.Array:
    """This device's key for this step: ``fold_in(fold_in(key, step), axis_index)``."""
    return jax.random.fold_in(jax.random.fold_in(key, step), jax.lax.axis_index(DATA_AXIS))


def gradient_update(loss_fn: LossFn, optimizer: optax.GradientTransformation,
                    params: PyTree, opt_state: PyTree, batch: PyTree,
                    key: jax.Array) -> Tuple[PyTree, PyTree, Metrics]:
    """One data-parallel optimizer update; must run inside the ``data`` shard_map.

    Returns the new parameters, the new optimizer state and the device-averaged
    metrics, including ``loss`` and the global gradient norm ``grad_norm``.
    """
    # Mark the replicated parameters as device-varying so that the gradient is
    # this shard's own gradient (otherwise shard_map's autodiff would already
    # sum it over devices); then average explicitly, as pmap users expect.
    local_params = jax.lax.pcast(params, DATA_AXIS, to="varying")
    (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(local_params, batch, key)
    grads = jax.lax.pmean(grads, DATA_AXIS)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    metrics = dict(metrics, loss=loss)
    metrics = jax.lax.pmean(metrics, DATA_AXIS)
    metrics["grad_norm"] = optax.tree.norm(grads)
    return params, opt_state, metrics


def scan_steps(step: Callable, steps_per_call: int, shared_batch: bool = False) -> Callable:
    """Runs ``step`` over ``[steps_per_call, ...]`` stacked batches in one scan
    (with ``shared_batch``: ``steps_per_call`` times over one batch)."""
    if steps_per_call == 1:
        return step

    def scanned(state, batches):
        return jax.lax.scan(step, state, batches)

    def repeated(state, batch):
        return jax.lax.scan(lambda s, _: step(s, batch), state, None, length=steps_per_call)

    return repeated if shared_batch else scanned


def data_parallel(fn: Callable, mesh: Mesh, leading_axes: int = 0,
                  donate: bool = True, split_batch: bool = True) -> Callable:
    """Compiles ``fn(state, batch) -> (state, metrics)`` over the ``data`` mesh.

    The state is replicated, the batch split along its batch axis (which comes
    after ``leading_axes`` stacking axes such as the scan axis), and the
    outputs are replicated. With ``split_batch=False`` the batch is replicated
    too: samplers, whose "data" are draws each device makes from its own key,
    pass their conditioning (a temperature, a reference model) that way.
    """
    batch_spec = P(*([None] * leading_axes), DATA_AXIS) if split_batch else P()
    mapped = jax.shard_map(fn, mesh=mesh, in_specs=(P(), batch_spec), out_specs=(P(), P()))
    return jax.jit(mapped, donate_argnums=(0,) if donate else ())


def make_train_step(loss_fn: LossFn, optimizer: optax.GradientTransformation, mesh: Mesh,
                    *, steps_per_call: int = 1, donate: bool = True,
                    shared_batch: bool = False) -> Callable:
    """Builds the jitted, data-parallel ``step(state, batch) -> (state, metrics)``.

    Args:
      loss_fn: ``loss_fn(params, batch, key) -> (scalar loss, metrics dict)``,
        evaluated on one device's shard of the batch.
      optimizer: any optax transformation (see ``make_optimizer``).
      mesh: a ``data_mesh()``; one device is a mesh of size one.
      steps_per_call: updates per compiled call (stacked batches, see module doc).
      donate: donate the input state's buffers (the caller must not reuse it).
      shared_batch: replicate the batch and reuse it in every scanned update
        (conditioning for samplers, see module doc).
    """

    def one_step(state: TrainState, batch: PyTree) -> Tuple[TrainState, Metrics]:
        key = device_key(state.key, state.step)
        params, opt_state, metrics = gradient_update(
            loss_fn, optimizer, state.params, state.opt_state, batch, key)
        return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics

    leading_axes = int(steps_per_call > 1)
    return data_parallel(scan_steps(one_step, steps_per_call, shared_batch), mesh, leading_axes,
                         donate, split_batch=not shared_batch)


def make_eval_step(metric_fn: Callable[[PyTree, PyTree, jax.Array], Metrics],
                   mesh: Mesh) -> Callable:
    """Compiles ``metric_fn(params, batch, key) -> metrics`` averaged over devices.

    Returns ``eval_step(params, batch, key) -> metrics`` for evaluation loops
    (the batch is split over devices like in training).
    """

    def fn(params, batch, key):
        key = jax.random.fold_in(key, jax.lax.axis_index(DATA_AXIS))
        return jax.lax.pmean(metric_fn(params, batch, key), DATA_AXIS)

    mapped = jax.shard_map(fn, mesh=mesh, in_specs=(P(), P(DATA_AXIS), P()), out_specs=P())
    return jax.jit(mapped)
