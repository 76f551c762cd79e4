"""Logging helpers shared across layers."""

from __future__ import annotations

import contextlib
from typing import Iterator


@contextlib.contextmanager
def quiet_absl() -> Iterator[None]:
    """Raises absl's log level to ERROR inside the block.

    Orbax logs at WARNING that a read-only checkpoint manager is read-only;
    the loaders of trained models keep that off the console.
    """
    from absl import logging as absl_logging

    previous = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)
    try:
        yield
    finally:
        absl_logging.set_verbosity(previous)
