"""The workdir of a run: its resolved ``config.json``, the resume check, ``metrics.json``."""

from __future__ import annotations

import json
import os
from typing import Any, Iterable, Mapping

import jax
import ml_collections

from gmjax.experiment.config import ConfigError, leaf_fields
from gmjax.training.logging import to_python

# Fields that may change between a run and its resumption: the length of training
# and how often it logs, evaluates and checkpoints.
RESUMABLE_FIELDS = ("train.steps", "train.log_every", "train.eval_every",
                    "train.checkpoint_every", "train.keep_checkpoints")
# Whole sections that only change what is measured at the end, not what is trained.
RESUMABLE_SECTIONS = ("eval",)


def prepare_workdir(config: ml_collections.ConfigDict, workdir: str,
                    resumable: Iterable[str] = ()) -> bool:
    """Creates ``workdir`` and writes ``config.json``; returns True when resuming.

    A run resumes only with the config it was saved with, up to
    ``RESUMABLE_FIELDS``, ``RESUMABLE_SECTIONS`` and ``resumable`` (field paths
    or sections: a script's own, such as a sampler's closing refinement, and
    the fields the run does not read). A field the saved config lacks is one
    added to gmjax after the run was saved: the run was trained without it, so
    it resumes with the field's value (printed).

    Raises:
      ConfigError: if the workdir holds a run of a different config.
    """
    free = (*RESUMABLE_FIELDS, *RESUMABLE_SECTIONS, *resumable)

    def may_change(path: str) -> bool:
        return any(path == f or path.startswith(f + ".") for f in free)

    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, "config.json")
    new = json.loads(config.to_json_best_effort())
    resuming = os.path.exists(path)
    if resuming:
        with open(path) as f:
            old = json.load(f)
        old_flat, new_flat = leaf_fields(old), leaf_fields(new)
        added = sorted(set(new_flat) - set(old_flat))
        if added:
            print(f"{workdir}: fields added since the run was saved: "
                  + ", ".join(f"{k}={new_flat[k]!r}" for k in added), flush=True)
        changed = sorted(k for k in set(old_flat) | set(new_flat)
                         if k not in added and old_flat.get(k) != new_flat.get(k)
                         and not may_change(k))
        if changed:
            details = "; ".join(f"{k}: {old_flat.get(k)!r} -> {new_flat.get(k)!r}"
                                for k in changed)
            raise ConfigError(f"{workdir} holds a run with a different config ({details}). "
                              f"Use a new --workdir, or the saved config to resume.")
    if jax.process_index() == 0:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(new, f, indent=2, sort_keys=True)
        os.replace(tmp, path)
    return resuming


def write_metrics(workdir: str, metrics: Mapping[str, Any]) -> str:
    """Writes the final evaluation, ``metrics.json`` (atomically; process 0 only)."""
    path = os.path.join(workdir, "metrics.json")
    if jax.process_index() != 0:
        return path
    with open(path + ".tmp", "w") as f:
        json.dump(to_python(dict(metrics)), f, indent=2, sort_keys=True)
    os.replace(path + ".tmp", path)
    return path
