"""Orbax checkpoints of a train state, written atomically, keeping the last k.

Orbax writes each checkpoint into a temporary directory and renames it only
when complete, so a run killed mid-save leaves the previous checkpoints as
they were; unfinished temporaries are removed on the next start.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Tuple

import jax
import orbax.checkpoint as ocp

PyTree = Any


class CheckpointError(RuntimeError):
    """A checkpoint exists but cannot be restored into the expected state."""


class Checkpointer:
    """Saves and restores ``(state, meta)`` pairs under ``directory/<step>``.

    ``meta`` is a small JSON-able dict (elapsed training time, data position,
    ...). Saving is synchronous: when ``save`` returns, the checkpoint is
    complete on disk.
    """

    def __init__(self, directory: str, keep: int = 3):
        self.directory = os.path.abspath(directory)
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=True, enable_async_checkpointing=False,
            cleanup_tmp_directories=True)
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> Optional[int]:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self._manager.all_steps())

    def save(self, step: int, state: PyTree, meta: Optional[Dict[str, Any]] = None) -> None:
        args = ocp.args.Composite(state=ocp.args.StandardSave(state),
                                  meta=ocp.args.JsonSave(dict(meta or {}, step=int(step))))
        self._manager.save(int(step), args=args, force=True)
        self._manager.wait_until_finished()

    def restore(self, template: Optional[PyTree] = None,
                step: Optional[int] = None) -> Tuple[PyTree, Dict[str, Any]]:
        """Restores the checkpoint at ``step`` (default: latest) shaped like ``template``.

        Without a template the state comes back as the nested dicts of arrays
        orbax stored (enough to inspect or compare parameters).

        Raises:
          CheckpointError: naming the checkpoint directory and what to do, when
            there is none or it cannot be read into ``template``'s structure.
        """
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"no checkpoint found in {self.directory}")
        abstract = (None if template is None
                    else jax.tree.map(ocp.utils.to_shape_dtype_struct, template))
        args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract),
                                  meta=ocp.args.JsonRestore())
        try:
            restored = self._manager.restore(step, args=args)
        except Exception as e:  # orbax raises many types; all mean "unreadable".
            path = os.path.join(self.directory, str(step))
            raise CheckpointError(
                f"checkpoint {path} could not be restored ({type(e).__name__}: {e}). "
                f"It is corrupt or was written by a different model or config. "
                f"Either start a fresh --workdir, or move this step's directory away to "
                f"resume from an earlier checkpoint (available steps: {self.all_steps()})."
            ) from e
        return restored.state, dict(restored.meta)

    def close(self) -> None:
        self._manager.close()
