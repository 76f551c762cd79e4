"""Reading the parameters of a trained model back from its run's checkpoints.

A run's ``checkpoints/`` directory is written by ``gmjax.training.Checkpointer``:
one orbax step directory per saved step, each a ``Composite`` of the train
state (``state``) and bookkeeping (``meta``). The model loaders of
``gmjax.models`` read only the fields of ``state`` they need (parameters, not
optimizer moments) and never write anything, so a run still writing into the
directory is safe.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping

import jax

from gmjax.logging_utils import quiet_absl

PyTree = Any


def saved_steps(directory: str) -> List[int]:
    """The steps saved in ``directory`` (sorted; empty when it does not exist)."""
    if not os.path.isdir(directory):
        return []
    return sorted(int(name) for name in os.listdir(directory) if name.isdigit())


def restore_state_fields(directory: str, step: int, fields: Mapping[str, PyTree]
                         ) -> Dict[str, PyTree]:
    """The fields ``fields`` of the train state saved at ``step`` in ``directory``.

    Args:
      directory: a ``checkpoints/`` directory.
      step: a saved step (see `saved_steps`).
      fields: field name -> abstract pytree (``jax.ShapeDtypeStruct`` leaves,
        e.g. from ``jax.eval_shape``) of the values to read; the others are
        skipped.

    Returns:
      field name -> restored pytree, on the first local device.

    Raises:
      Whatever orbax raises for a missing or unreadable checkpoint (callers
      turn it into an error that says what to do).
    """
    import orbax.checkpoint as ocp

    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=device),
                            dict(fields))
    with quiet_absl():
        options = ocp.CheckpointManagerOptions(read_only=True, create=False,
                                               save_interval_steps=0)
        manager = ocp.CheckpointManager(directory, options=options)
        try:
            restore = ocp.args.PyTreeRestore(
                item=abstract, restore_args=ocp.checkpoint_utils.construct_restore_args(abstract),
                partial_restore=True)
            restored = manager.restore(step, args=ocp.args.Composite(state=restore))
        finally:
            manager.close()
    return dict(restored.state)
