"""Targets by name: ``build_target("circle")``, ``build_target("clayton", dim=16)``.

Each entry is a factory ``(**options) -> Target``; the experiment scripts pass
the ``target`` config block's options through, and a misspelt name fails with
the list of valid ones.
"""

from __future__ import annotations

from typing import Any, Callable

from gmjax.registry import Registry
from gmjax.targets.base import Target

TARGETS: Registry[Callable[..., Target]] = Registry("target")


def build_target(name: str, **options: Any) -> Target:
    """The target registered as ``name``, built with ``options``."""
    return TARGETS.get(name)(**options)
