"""Checks of the samplers' options: each bad value stops with a message that names it."""

from __future__ import annotations

from typing import Any

import numpy as np


def positive_array(value: Any, name: str) -> np.ndarray:
    """``value`` as a float64 array whose entries are all finite and > 0, else ValueError."""
    array = np.asarray(value, dtype=np.float64)
    if array.size == 0 or not np.all(np.isfinite(array)) or not np.all(array > 0):
        raise ValueError(f"{name} must be finite and positive, got {value!r}")
    return array


def positive_int(value: Any, name: str, minimum: int = 1) -> int:
    """``value`` as an int if it is an integer >= ``minimum``, else ValueError."""
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)
