"""Metrics on disk: one JSON object per logged step in ``metrics.jsonl``."""

from __future__ import annotations

import json
import math
import os
from typing import Any, Dict, Iterator, Mapping

import jax
import numpy as np


def to_python(value: Any) -> Any:
    """Turns numpy / jax scalars and small arrays into JSON-able Python values."""
    if isinstance(value, Mapping):
        return {k: to_python(v) for k, v in value.items()}
    arr = np.asarray(value)
    if arr.ndim == 0:
        item = arr.item()
        if isinstance(item, float) and not math.isfinite(item):
            return str(item)  # JSON has no NaN/Inf; keep them readable.
        return item
    return [to_python(v) for v in arr]


class MetricsWriter:
    """Appends records to ``path`` (JSON lines), one flush per record.

    On resume from step ``s`` call ``truncate_after(s)``: records a killed run
    logged after its last checkpoint are dropped, so the file reads as if the
    run had never stopped. In a multi-host run only process 0 writes.
    """

    def __init__(self, path: str):
        self.path = path
        self.enabled = jax.process_index() == 0
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)

    def write(self, record: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(to_python(record)) + "\n")

    def truncate_after(self, step: int) -> None:
        if not self.enabled or not os.path.exists(self.path):
            return
        kept = [r for r in read_jsonl(self.path) if r.get("step", 0) <= step]
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            for r in kept:
                f.write(json.dumps(r) + "\n")
        os.replace(tmp, self.path)


def read_jsonl(path: str) -> Iterator[Dict[str, Any]]:
    """Reads ``metrics.jsonl``, skipping a last line cut short by a crash."""
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue
