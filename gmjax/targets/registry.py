"""Targets by name: ``build_target("circle")``, ``build_target("clayton", dim=16)``.

Each entry is a factory ``(**options) -> Target``; the experiment scripts pass
the config's ``data.options`` through (and ``data.dim`` for ``clayton``), and a
misspelt name or option fails with the list of valid ones. A target of one's
own is a factory registered under a new name, at any time: scripts read the
registry when they check a config::

    @TARGETS.register("banana")
    def banana(curvature: float = 1.0) -> Target:
        return BananaTarget(curvature)
"""

from __future__ import annotations

from typing import Any, Callable

from gmjax.registry import Registry, check_options
from gmjax.targets.base import Target

TARGETS: Registry[Callable[..., Target]] = Registry("target")


def build_target(name: str, **options: Any) -> Target:
    """The target registered as ``name``, built with ``options``.

    Raises:
      ValueError: for an unknown name (listing the valid ones), or options the
        target's factory does not take or lacks (listing the ones it takes).
    """
    factory = TARGETS.get(name)
    check_options(factory, options, f"target {name!r}")
    return factory(**options)
