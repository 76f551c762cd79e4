"""Split strings: ``"train"``, ``"test"`` and tfds-style slices of them.

Grammar (a small subset of the tensorflow-datasets split API)::

    split  := base | base "[" bound? ":" bound? "]"
    base   := "train" | "test"
    bound  := integer | integer "%"

``"test[:80%]"`` is the first 80% of the test split, ``"test[80%:]"`` the
rest, ``"train[:5000]"`` the first 5,000 training examples, ``"train[-100:]"``
the last 100. Integer bounds follow Python slice rules (negative counts from
the end, out-of-range bounds are clipped). A percent bound ``p%`` of a split
with ``n`` examples is the index ``round(p * n / 100)`` with halves rounded up,
counted from the end when ``p`` is negative; ``-100 <= p <= 100``. Because
both ``"test[:80%]"`` and ``"test[80%:]"`` use the same boundary, they
partition the split exactly. Percent slicing is
the tfds convention (its default rounding is also to the closest index).
"""

from __future__ import annotations

import dataclasses
import re

SPLITS = ("train", "test")

_SPLIT_RE = re.compile(r"^\s*([A-Za-z_]+)\s*(?:\[(.*)\])?\s*$")
_SLICE_RE = re.compile(r"^\s*(-?\d+%?)?\s*:\s*(-?\d+%?)?\s*$")


@dataclasses.dataclass(frozen=True)
class SplitSpec:
    """A parsed split string: a base split and an optional ``[start:stop]``.

    ``start`` and ``stop`` are the bound strings as written (``"80%"``,
    ``"-100"``) or ``None`` for an open end.
    """

    base: str
    start: str | None = None
    stop: str | None = None
    text: str = ""

    def slice(self, n: int) -> slice:
        """The Python slice (non-negative start/stop) this spec selects from ``n`` examples."""
        start = 0 if self.start is None else _resolve(self.start, n)
        stop = n if self.stop is None else _resolve(self.stop, n)
        stop = max(start, stop)
        if start >= stop:
            raise ValueError(
                f"split {self.text!r} selects no examples out of {n} in {self.base!r}"
            )
        return slice(start, stop)


def parse_split(split: str, valid: tuple[str, ...] = SPLITS) -> SplitSpec:
    """Parses ``split`` (see the module docstring); raises ``ValueError`` on a bad string."""
    if not isinstance(split, str):
        raise ValueError(f"split must be a string such as 'train' or 'test[:80%]', got {split!r}")
    match = _SPLIT_RE.match(split)
    if match is None:
        raise ValueError(_bad(split, "expected 'name' or 'name[start:stop]'", valid))
    base, inner = match.group(1), match.group(2)
    if base not in valid:
        raise ValueError(_bad(split, f"unknown split {base!r}", valid))
    if inner is None:
        return SplitSpec(base=base, text=split)
    sl = _SLICE_RE.match(inner)
    if sl is None:
        raise ValueError(_bad(split, f"cannot read the slice [{inner}]", valid))
    start, stop = sl.group(1), sl.group(2)
    for bound in (start, stop):
        if bound is not None and bound.endswith("%") and abs(int(bound[:-1])) > 100:
            raise ValueError(_bad(split, f"percent bound {bound} is outside [-100%, 100%]", valid))
    return SplitSpec(base=base, start=start, stop=stop, text=split)


def _resolve(bound: str, n: int) -> int:
    """Index in ``[0, n]`` for one bound string."""
    if bound.endswith("%"):
        pct = int(bound[:-1])
        # Round half up: floor(|p| * n / 100 + 1/2) in exact integer arithmetic.
        k = (2 * abs(pct) * n + 100) // 200
        return k if pct >= 0 else n - k
    index = int(bound)
    if index < 0:
        index += n
    return min(max(index, 0), n)


def _bad(split: str, why: str, valid: tuple[str, ...]) -> str:
    return (
        f"bad split {split!r}: {why}. Valid splits are {', '.join(valid)}, optionally "
        "sliced like 'test[:80%]', 'test[80%:]', 'train[:5000]' or 'train[-100:]'"
    )
