"""A seeded, restartable batch source over in-memory numpy arrays.

``BatchIterator.batch(step)`` is a pure function of ``(seed, step)``: epoch
``e = step // steps_per_epoch`` is shuffled by its own permutation drawn from
``np.random.default_rng([seed, e])``, and step ``s`` takes the
``(s mod steps_per_epoch)``-th block of ``batch_size`` indices of it. Nothing
depends on which batches were drawn before, so a run resumed at step ``s``
sees exactly the batches an uninterrupted run would (gmjax's "nothing is
lost" rule), and no iterator state needs checkpointing beyond the step.

With ``drop_remainder=True`` there are ``n // batch_size`` steps per epoch;
when ``batch_size`` divides ``n`` this is ``epoch = step * batch_size // n``
and every example appears exactly once per epoch. Otherwise the last
``n mod batch_size`` examples of each epoch's permutation (different ones every
epoch) are skipped. With ``drop_remainder=False`` each epoch ends with one
smaller batch.

Multi-host data parallelism: with ``process_count`` hosts, the global batch of
``batch_size`` rows is cut into ``process_count`` contiguous blocks and host
``process_index`` gets block ``process_index`` (``batch_size / process_count``
rows). Every host computes the same global permutation from the same seed,
so the blocks partition the global batch without any communication. Pass
``jax.process_index()`` and ``jax.process_count()``.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import jax
import numpy as np

Batch = Any  # the structure of ``data`` (array, tuple, list or dict) with [rows, ...] leaves


class BatchIterator:
    """Batches of ``data`` (a numpy array, or a tuple/list/dict of arrays sharing axis 0).

    Args:
      data: the examples; every leaf has the same leading size ``n``.
      batch_size: the global batch size (summed over processes).
      seed: shuffling seed (a non-negative int).
      drop_remainder: if True every batch has ``batch_size`` rows.
      start_step: the first step ``__iter__`` yields (the step to resume from).
      process_index, process_count: this host's index and the number of hosts.
    """

    def __init__(
        self,
        data: Batch,
        batch_size: int,
        seed: int = 0,
        drop_remainder: bool = True,
        *,
        start_step: int = 0,
        process_index: int = 0,
        process_count: int = 1,
    ):
        leaves = jax.tree_util.tree_leaves(data)
        if not leaves:
            raise ValueError("data has no arrays")
        sizes = {int(np.shape(leaf)[0]) if np.ndim(leaf) else -1 for leaf in leaves}
        if len(sizes) != 1 or -1 in sizes:
            raise ValueError(
                f"every array in data needs the same leading size, got {sorted(sizes)}"
            )
        self.data = jax.tree_util.tree_map(np.asarray, data)
        self.num_examples = sizes.pop()
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.drop_remainder = bool(drop_remainder)
        self.start_step = int(start_step)
        self.process_index = int(process_index)
        self.process_count = int(process_count)
        self._check()
        # (epoch, permutation), replaced as one object so concurrent readers never mix two epochs.
        self._cache: tuple[int, np.ndarray] = (-1, np.empty(0, np.int64))

    def _check(self) -> None:
        n, b, pc = self.num_examples, self.batch_size, self.process_count
        if b <= 0:
            raise ValueError(f"batch_size must be positive, got {b}")
        if self.seed < 0:
            raise ValueError(f"seed must be non-negative, got {self.seed}")
        if self.drop_remainder and b > n:
            raise ValueError(
                f"batch_size {b} is larger than the {n} examples; lower it or set "
                "drop_remainder=False"
            )
        if pc < 1 or not 0 <= self.process_index < pc:
            raise ValueError(
                f"need 0 <= process_index < process_count, got {self.process_index}, {pc}"
            )
        if b % pc:
            raise ValueError(
                f"global batch_size {b} must be divisible by process_count {pc} so each "
                f"process gets an equal block; use a multiple of {pc}"
            )
        if pc > 1 and not self.drop_remainder:
            raise ValueError(
                "process_count > 1 needs drop_remainder=True (equal blocks on every host)"
            )

    @property
    def steps_per_epoch(self) -> int:
        n, b = self.num_examples, self.batch_size
        return n // b if self.drop_remainder else -(-n // b)

    @property
    def local_batch_size(self) -> int:
        """Rows per process in a full batch: ``batch_size / process_count``."""
        return self.batch_size // self.process_count

    def epoch_of(self, step: int) -> int:
        return int(step) // self.steps_per_epoch

    def permutation(self, epoch: int) -> np.ndarray:  # [n]
        """The shuffle of ``epoch``: ``default_rng([seed, epoch]).permutation(n)``."""
        cached_epoch, perm = self._cache
        if cached_epoch != epoch:
            perm = np.random.default_rng([self.seed, epoch]).permutation(self.num_examples)
            self._cache = (epoch, perm)
        return perm

    def indices(self, step: int) -> np.ndarray:  # [local_batch_size] (fewer in a short last batch)
        """Example indices of this process's part of global batch ``step``."""
        step = int(step)
        if step < 0:
            raise ValueError(f"step must be non-negative, got {step}")
        epoch, pos = divmod(step, self.steps_per_epoch)
        rows = self.permutation(epoch)[pos * self.batch_size:(pos + 1) * self.batch_size]
        block = self.local_batch_size
        return rows[self.process_index * block:(self.process_index + 1) * block]

    def batch(self, step: int) -> Batch:
        """This process's part of global batch ``step``, with the structure of ``data``."""
        idx = self.indices(step)
        return jax.tree_util.tree_map(lambda a: a[idx], self.data)

    def iter_from(self, start_step: int) -> Iterator[Batch]:
        """``batch(start_step), batch(start_step + 1), ...`` without end."""
        step = int(start_step)
        while True:
            yield self.batch(step)
            step += 1

    def __iter__(self) -> Iterator[Batch]:
        return self.iter_from(self.start_step)


def stack_batches(batches: Sequence[Batch]) -> Batch:
    """Stacks ``k`` batches of one structure along a new leading axis: leaves ``[k, rows, ...]``.

    This is the input of a train step that ``jax.lax.scan``s over ``k`` steps in
    one compiled call.
    """
    batches = list(batches)
    if not batches:
        raise ValueError("stack_batches needs at least one batch")
    return jax.tree_util.tree_map(lambda *leaves: np.stack(leaves), *batches)


def take_batches(iterator: BatchIterator, step: int, k: int) -> Batch:
    """``stack_batches([iterator.batch(step + i) for i in range(k)])``."""
    return stack_batches([iterator.batch(step + i) for i in range(k)])

