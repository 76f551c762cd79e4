"""Data parallelism over every local device (and every host).

gmjax writes data parallelism with ``jax.shard_map`` over a one-axis mesh
named ``"data"``: parameters and optimizer state are replicated, the batch is
split along its leading axis, each device computes gradients on its shard and
``lax.pmean`` averages them -- what ``pmap`` users know, without pmap (which
JAX now implements on top of shard_map anyway). A mesh of one device
compiles the same step function as a plain ``jax.jit``, its collectives
being identities there (``gmjax.training.step.data_parallel``), so one
device pays nothing for the parallel code. On CPU, a mesh of several
devices in one process (``--xla_force_host_platform_device_count``) waits
for each compiled call before the next (``step.synchronous_on_cpu`` says
why).

Multi-host: call ``initialize_distributed()`` first on every host (it wraps
``jax.distributed.initialize``; on Cloud TPU and SLURM the arguments are
discovered, elsewhere pass ``coordinator_address``, ``num_processes`` and
``process_id`` or set ``JAX_COORDINATOR_ADDRESS`` / ``JAX_NUM_PROCESSES`` /
``JAX_PROCESS_ID``). Each host then loads its own slice of the global batch
(``BatchIterator(process_index=jax.process_index(), process_count=...)``) and
``shard_batch`` assembles the global array.
"""

from __future__ import annotations

import os
from typing import Any, Optional, Sequence

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"
PyTree = Any


def data_mesh(num_devices: Optional[int] = None,
              devices: Optional[Sequence[jax.Device]] = None) -> Mesh:
    """A one-axis ``("data",)`` mesh over ``num_devices`` devices (default: all)."""
    if devices is None:
        devices = jax.devices()
        if num_devices:
            if num_devices > len(devices):
                raise ValueError(
                    f"asked for {num_devices} devices but only {len(devices)} are visible "
                    f"({devices[0].platform}); on CPU, XLA_FLAGS="
                    f"--xla_force_host_platform_device_count={num_devices} makes more")
            devices = devices[:num_devices]
    return jax.make_mesh((len(devices),), (DATA_AXIS,), axis_types=(AxisType.Auto,),
                         devices=devices)


def replicate(tree: PyTree, mesh: Mesh) -> PyTree:
    """Places ``tree`` on every device of ``mesh`` (fully replicated)."""
    return jax.device_put(tree, NamedSharding(mesh, P()))


def shard_batch(batch: PyTree, mesh: Mesh, leading_axes: int = 0) -> PyTree:
    """Splits a host-local numpy batch along its batch axis over the mesh.

    Args:
      batch: numpy arrays whose axis ``leading_axes`` is this host's share of
        the global batch (all of it on a single host).
      mesh: the ``data`` mesh.
      leading_axes: axes before the batch axis (1 for ``[steps, batch, ...]``
        stacks fed to a scanned step).
    """
    spec = P(*([None] * leading_axes), DATA_AXIS)
    sharding = NamedSharding(mesh, spec)
    n = mesh.shape[DATA_AXIS] // jax.process_count()

    def put(x):
        x = np.asarray(x)
        if x.shape[leading_axes] % n:
            raise ValueError(
                f"batch axis of size {x.shape[leading_axes]} does not split over "
                f"{n} local devices; choose data.batch_size divisible by the device count")
        if jax.process_count() == 1:
            return jax.device_put(x, sharding)
        return jax.make_array_from_process_local_data(sharding, x)

    return jax.tree.map(put, batch)


def initialize_distributed(coordinator_address: Optional[str] = None,
                           num_processes: Optional[int] = None,
                           process_id: Optional[int] = None) -> None:
    """Starts multi-host JAX; a no-op for one process with nothing configured."""
    coordinator_address = coordinator_address or os.environ.get("JAX_COORDINATOR_ADDRESS")
    if num_processes is None and "JAX_NUM_PROCESSES" in os.environ:
        num_processes = int(os.environ["JAX_NUM_PROCESSES"])
    if process_id is None and "JAX_PROCESS_ID" in os.environ:
        process_id = int(os.environ["JAX_PROCESS_ID"])
    if coordinator_address is None and num_processes in (None, 1):
        return
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes, process_id=process_id)
