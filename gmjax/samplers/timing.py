"""Timing a sampler's draws the way papers report them: after compiling, median of repeats."""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable

import jax


def median_seconds(draw: Callable[[jax.Array], Any], key: jax.Array, repeats: int = 5) -> float:
    """The median wall time of ``repeats`` calls ``draw(key_r)``, after one untimed call.

    The untimed call compiles; each timed one waits for its result
    (``block_until_ready``), with its own key ``fold_in(key, 2 + r)``.
    """
    jax.block_until_ready(draw(jax.random.fold_in(key, 1)))
    seconds = []
    for r in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(draw(jax.random.fold_in(key, 2 + r)))
        seconds.append(time.perf_counter() - t0)
    return float(statistics.median(seconds))
