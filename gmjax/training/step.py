"""The one builder that turns a loss and an optimizer into a compiled train step.

A loss is a pure function ``loss_fn(params, batch, key) -> (loss, metrics)``.
``make_train_step`` returns a ``TrainStep``, called as
``step(state, batch, log=True) -> (state, metrics)``, that

  1. draws the step key ``fold_in(state.key, state.step)`` and, per device,
     ``fold_in(step_key, axis_index("data"))`` (device 0 on one device);
  2. differentiates the loss on the device's shard of the batch;
  3. averages gradients, loss and metrics over devices (``lax.pmean``);
  4. applies the optax update and increments ``state.step``.

The global gradient norm ``grad_norm`` costs a pass over every gradient
(a quarter of a step of a 784-500-500-50 MLP at batch 32), so it is
computed only when the call asks for it (``log=True``, the default); ``fit``
asks on the calls that end at a logging step and passes ``log=False``
otherwise, when ``metrics["grad_norm"]`` is NaN. With one update per call
the two kinds of call are compiled separately, each on its first use:
choosing at run time with ``lax.cond`` slowed every step by 5%, as passing
the gradients into a conditional outside a loop does on XLA's CPU backend.
Only ``grad_norm`` differs between them; the updates are bitwise the same
(``tests/test_training_step.py``), so which calls log does not change a run.

With ``steps_per_call = s > 1`` the step takes ``s`` stacked batches
``[s, batch, ...]`` and runs the ``s`` updates in one ``lax.scan``, which cuts
per-step dispatch cost for small models; metrics come back stacked ``[s]``,
except ``grad_norm``, a scalar: the norm of the last update's gradient. There
one compiled call serves both kinds: inside the scan a ``lax.cond`` computes
the norm in the last update of a logging call (it costs about 1% there).
The result equals ``s`` separate calls up to float rounding.

With ``shared_batch=True`` the "batch" is conditioning rather than data: it
is replicated on every device instead of split, and all ``s`` scanned updates
see the same one. Samplers train this way: each step draws its own points
from the step key, and the batch carries the stage's temperature, reference
model and normalizing-constant estimate.

On a mesh of one device the step is a plain ``jax.jit`` of the same function
(no ``shard_map``): the collectives become
identities and the device index is 0, so the keys and the arithmetic are
those of a size-one ``shard_map``, up to how XLA fuses the operations.

``check_vma=False`` compiles the ``shard_map`` without its varying-axis type
checks. A loss that runs a diffrax solve needs it: diffrax creates its loop
carries and save buffers device-invariant, and a state that varies over
devices (the batch shard) then fails those checks ("cond branches must have
equal output types", "while_loop body function carry input and carry output
must have equal types"; patrick-kidger/diffrax#735). Without the checks
``to_varying`` is the identity and no collective is inserted implicitly, so
each device still differentiates its own shard's loss and the explicit
``pmean`` averages: the same step (``tests/test_cnf_multidevice.py``).

Gradient accumulation is an optimizer property (``optim.accumulate_steps``,
``optax.MultiSteps``), so it composes with everything here.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Callable, Dict, Iterator, Tuple, Union

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from gmjax.training.parallel import DATA_AXIS
from gmjax.training.state import TrainState

PyTree = Any
Metrics = Dict[str, jax.Array]
LossFn = Callable[[PyTree, PyTree, jax.Array], Tuple[jax.Array, Metrics]]

# True while a one-device step is traced without shard_map: the ``data`` axis is
# then unbound, and the collectives below act as they do on an axis of size one.
_SINGLE_DEVICE = contextvars.ContextVar("gmjax_single_device", default=False)


@contextlib.contextmanager
def _single_device() -> Iterator[None]:
    token = _SINGLE_DEVICE.set(True)
    try:
        yield
    finally:
        _SINGLE_DEVICE.reset(token)


def axis_index() -> jax.Array:
    """This device's index on the ``data`` axis (0 in a one-device step)."""
    if _SINGLE_DEVICE.get():
        return jnp.zeros((), jnp.int32)
    return jax.lax.axis_index(DATA_AXIS)


def pmean(tree: PyTree) -> PyTree:
    """``lax.pmean`` over the ``data`` axis (the identity in a one-device step)."""
    return tree if _SINGLE_DEVICE.get() else jax.lax.pmean(tree, DATA_AXIS)


def to_varying(tree: PyTree) -> PyTree:
    """Marks replicated values device-varying (the identity in a one-device step)."""
    return tree if _SINGLE_DEVICE.get() else jax.lax.pcast(tree, DATA_AXIS, to="varying")


def device_key(key: jax.Array, step: jax.Array) -> jax.Array:
    """This device's key for this step: ``fold_in(fold_in(key, step), axis_index)``."""
    return jax.random.fold_in(jax.random.fold_in(key, step), axis_index())


def gradient_norm(grads: PyTree, when: Union[bool, jax.Array] = True) -> jax.Array:
    """The global norm of ``grads``; NaN where ``when`` is false (a traced ``when``
    chooses with ``lax.cond``, so the norm is computed only where it is true)."""
    if when is True:
        return optax.tree.norm(grads)
    nan = jnp.full((), jnp.nan, jax.eval_shape(optax.tree.norm, grads).dtype)
    if when is False:
        return nan
    return jax.lax.cond(when, optax.tree.norm, lambda g: nan, grads)


def gradient_update(loss_fn: LossFn, optimizer: optax.GradientTransformation,
                    params: PyTree, opt_state: PyTree, batch: PyTree,
                    key: jax.Array, *, grad_norm: Union[bool, jax.Array] = True
                    ) -> Tuple[PyTree, PyTree, Metrics]:
    """One data-parallel optimizer update, inside a step built by ``data_parallel``.

    Returns the new parameters, the new optimizer state and the device-averaged
    metrics, including ``loss`` and the global gradient norm ``grad_norm``
    (NaN where ``grad_norm``, a bool or a traced bool, is false).
    """
    # Mark the replicated parameters as device-varying so that the gradient is
    # this shard's own gradient (otherwise shard_map's autodiff would already
    # sum it over devices); then average explicitly, as pmap users expect.
    local_params = to_varying(params)
    (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(local_params, batch, key)
    grads = pmean(grads)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    metrics = dict(metrics, loss=loss)
    metrics = pmean(metrics)
    metrics["grad_norm"] = gradient_norm(grads, grad_norm)
    return params, opt_state, metrics


def data_parallel(fn: Callable, mesh: Mesh, leading_axes: int = 0,
                  donate: bool = True, split_batch: bool = True,
                  num_replicated: int = 0, check_vma: bool = True) -> Callable:
    """Compiles ``fn(state, batch, *replicated) -> (state, metrics)`` over the ``data`` mesh.

    The state is replicated, the batch split along its batch axis (which comes
    after ``leading_axes`` stacking axes such as the scan axis), and the
    outputs are replicated. With ``split_batch=False`` the batch is replicated
    too: samplers, whose "data" are draws each device makes from its own key,
    pass their conditioning (a temperature, a reference model) that way.
    ``num_replicated`` further arguments (flags) are replicated. ``check_vma=False``
    turns off ``shard_map``'s varying-axis checks (see the module doc).

    On one device this is a plain ``jax.jit`` of ``fn`` with the collectives of
    this module (``axis_index``, ``pmean``, ``to_varying``) as identities; on
    more, a ``jax.shard_map`` over the mesh.
    """
    donate_argnums = (0,) if donate else ()
    if mesh.devices.size == 1:
        def single(*args):
            with _single_device():
                return fn(*args)

        replicated = NamedSharding(mesh, P())
        return jax.jit(single, donate_argnums=donate_argnums,
                       out_shardings=(replicated, replicated))
    batch_spec = P(*([None] * leading_axes), DATA_AXIS) if split_batch else P()
    mapped = jax.shard_map(fn, mesh=mesh, in_specs=(P(), batch_spec) + (P(),) * num_replicated,
                           out_specs=(P(), P()), check_vma=check_vma)
    return synchronous_on_cpu(jax.jit(mapped, donate_argnums=donate_argnums), mesh)


def _local_cpu_devices(mesh: Mesh) -> int:
    here = jax.process_index()
    return sum(d.platform == "cpu" and d.process_index == here for d in mesh.devices.flat)


class _Synchronous:
    """Calls a compiled function and waits for its outputs before returning."""

    def __init__(self, compiled: Callable):
        self.compiled = compiled

    def __call__(self, *args):
        return jax.block_until_ready(self.compiled(*args))

    def lower(self, *args, **kwargs):
        return self.compiled.lower(*args, **kwargs)


def synchronous_on_cpu(compiled: Callable, mesh: Mesh) -> Callable:
    """``compiled``, made to wait for its outputs when ``mesh`` has several CPU devices
    in this process.

    XLA's CPU client runs each device's share of a call on a thread of its
    own, admitted through a semaphore, and a collective holds its thread until
    every device has arrived. With asynchronous dispatch the shares of the
    next calls compete for that semaphore with the current call's: a stack
    dump of a hung 4-device run shows two devices' shares waiting in
    ``AllReduce`` and the other two waiting in ``Semaphore::Acquire`` inside
    ``CpuPjRtRawLoadedExecutable::Execute``, until XLA aborts the process
    ("Termination timeout for all reduce ... Expected 4 threads to join the
    rendezvous, but only 3 of them arrived on time"). Four forced host
    devices on two cores hang this way within a few hundred steps (3 runs of
    3 hung within 400 steps; 3 of 3 finished when each call was waited
    for). Waiting keeps one call in flight; simulated CPU devices lose
    little by it.
    """
    return _Synchronous(compiled) if _local_cpu_devices(mesh) > 1 else compiled


class _WithArgument:
    """``compiled`` with a last argument fixed (a device-resident flag)."""

    def __init__(self, compiled: Callable, argument: Any):
        self.compiled, self.argument = compiled, argument

    def __call__(self, state: PyTree, batch: PyTree):
        return self.compiled(state, batch, self.argument)

    def lower(self, state: PyTree, batch: PyTree):
        return self.compiled.lower(state, batch, self.argument)


class TrainStep:
    """A compiled train step: ``step(state, batch, log=True) -> (state, metrics)``.

    ``log`` asks for ``metrics["grad_norm"]`` (NaN without it); with one
    update per call the two kinds of call are compiled separately, each when
    first made (see the module doc). Built by
    ``make_train_step``; ``fit`` reads ``steps_per_call`` and
    ``shared_batch`` from it.

    Attributes:
      steps_per_call: updates one call applies (stacked batches when > 1).
      shared_batch: the batch is replicated conditioning, not split data.
      mesh: the data mesh the step runs on.
    """

    def __init__(self, build: Callable[[bool], Callable], mesh: Mesh, steps_per_call: int,
                 shared_batch: bool):
        self._build = build
        self._compiled: Dict[bool, Callable] = {}
        self.mesh = mesh
        self.steps_per_call = steps_per_call
        self.shared_batch = shared_batch

    def compiled(self, log: bool = True) -> Callable:
        """The compiled ``(state, batch) -> (state, metrics)`` for calls with this ``log``."""
        log = bool(log)
        if log not in self._compiled:
            self._compiled[log] = self._build(log)
        return self._compiled[log]

    def __call__(self, state: PyTree, batch: PyTree, log: bool = True
                 ) -> Tuple[PyTree, Metrics]:
        compiled = self._compiled.get(log)
        if compiled is None:
            compiled = self.compiled(log)
        return compiled(state, batch)

    def lower(self, state: PyTree, batch: PyTree, log: bool = True):
        """``jax.jit``'s ``lower`` for these arguments (to inspect or AOT-compile)."""
        return self.compiled(log).lower(state, batch)


def make_train_step(loss_fn: LossFn, optimizer: optax.GradientTransformation, mesh: Mesh,
                    *, steps_per_call: int = 1, donate: bool = True,
                    shared_batch: bool = False, check_vma: bool = True) -> TrainStep:
    """Builds the jitted, data-parallel ``step(state, batch, log=True) -> (state, metrics)``.

    Args:
      loss_fn: ``loss_fn(params, batch, key) -> (scalar loss, metrics dict)``,
        evaluated on one device's shard of the batch.
      optimizer: any optax transformation (see ``make_optimizer``).
      mesh: a ``data_mesh()``; one device compiles a plain ``jax.jit``.
      steps_per_call: updates per compiled call (stacked batches, see module doc).
      donate: donate the input state's buffers (the caller must not reuse it).
      shared_batch: replicate the batch and reuse it in every scanned update
        (conditioning for samplers, see module doc).
      check_vma: keep ``shard_map``'s varying-axis checks; False for losses that run a
        diffrax solve (see module doc).
    """
    if steps_per_call < 1:
        raise ValueError(f"steps_per_call must be >= 1, got {steps_per_call}")

    def one_step(state: TrainState, batch: PyTree, norm: Union[bool, jax.Array]
                 ) -> Tuple[TrainState, Metrics]:
        key = device_key(state.key, state.step)
        params, opt_state, metrics = gradient_update(
            loss_fn, optimizer, state.params, state.opt_state, batch, key, grad_norm=norm)
        return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics

    return build_train_step(one_step, mesh, steps_per_call=steps_per_call, donate=donate,
                            shared_batch=shared_batch, check_vma=check_vma)


def build_train_step(one_step: Callable[[PyTree, PyTree, Union[bool, jax.Array]],
                                        Tuple[PyTree, Metrics]],
                     mesh: Mesh, *, steps_per_call: int = 1, donate: bool = True,
                     shared_batch: bool = False, leading_axes: int = 0,
                     check_vma: bool = True) -> TrainStep:
    """Compiles ``one_step(state, batch, norm) -> (state, metrics)`` into a ``TrainStep``.

    ``norm`` (a bool, or a traced bool inside a scan) says whether the update
    computes ``metrics["grad_norm"]``; ``leading_axes`` stacking axes (the
    critic axis of a min-max step) come before the batch axis, after the scan
    axis when ``steps_per_call > 1``. The builder behind ``make_train_step``
    and ``make_minmax_step``; ``check_vma`` as there.
    """
    if steps_per_call == 1:
        def build(log: bool) -> Callable:
            return data_parallel(lambda state, batch: one_step(state, batch, log), mesh,
                                 leading_axes, donate, split_batch=not shared_batch,
                                 check_vma=check_vma)

        return TrainStep(build, mesh, steps_per_call, shared_batch)

    def scanned(state: PyTree, batch: PyTree, log: jax.Array) -> Tuple[PyTree, Metrics]:
        last = jnp.arange(steps_per_call) == steps_per_call - 1
        if shared_batch:
            state, metrics = jax.lax.scan(
                lambda s, is_last: one_step(s, batch, log & is_last), state, last)
        else:
            state, metrics = jax.lax.scan(
                lambda s, xs: one_step(s, xs[0], log & xs[1]), state, (batch, last))
        # Metrics stay stacked [steps_per_call]; gradient norms, computed only in
        # the last update, are that update's scalars.
        return state, {name: v[-1] if name.endswith("grad_norm") else v
                       for name, v in metrics.items()}

    compiled = data_parallel(scanned, mesh, leading_axes + 1, donate,
                             split_batch=not shared_batch, num_replicated=1,
                             check_vma=check_vma)
    replicated = NamedSharding(mesh, P())
    flags = {log: jax.device_put(np.bool_(log), replicated) for log in (False, True)}
    return TrainStep(lambda log: _WithArgument(compiled, flags[log]), mesh, steps_per_call,
                     shared_batch)


def make_eval_step(metric_fn: Callable[[PyTree, PyTree, jax.Array], Metrics],
                   mesh: Mesh) -> Callable:
    """Compiles ``metric_fn(params, batch, key) -> metrics`` averaged over devices.

    Returns ``eval_step(params, batch, key) -> metrics`` for evaluation loops
    (the batch is split over devices like in training).
    """

    def fn(params, batch, key):
        key = jax.random.fold_in(key, axis_index())
        return pmean(metric_fn(params, batch, key))

    if mesh.devices.size == 1:
        def single(params, batch, key):
            with _single_device():
                return fn(params, batch, key)

        return jax.jit(single)
    mapped = jax.shard_map(fn, mesh=mesh, in_specs=(P(), P(DATA_AXIS), P()), out_specs=P())
    return synchronous_on_cpu(jax.jit(mapped), mesh)
