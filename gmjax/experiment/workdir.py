"""The workdir of a run: its resolved ``config.json``, the resume check, ``metrics.json``."""

from __future__ import annotations

import json
import os
from typing import Any, Iterable, Mapping

import jax
import ml_collections

from gmjax.experiment.config import ConfigError, leaf_fields
from gmjax.training.logging import to_python

# Fields that may change between a run and its resumption: the length of training,
# how often it logs, evaluates and checkpoints, and where the data set is read from
# (``data.name`` and the splits say which data; a run that stopped because they were
# missing resumes with ``--config.data.data_dir`` pointing at them).
RESUMABLE_FIELDS = ("train.steps", "train.log_every", "train.eval_every",
                    "train.checkpoint_every", "train.keep_checkpoints", "data.data_dir")
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

    Nothing in ``workdir`` is changed when it is refused, and ``config.json`` is
    rewritten only when it changes.

    Raises:
      ConfigError: if ``workdir`` is not a folder that can be created, or holds
        a run of a different config.
    """
    free = (*RESUMABLE_FIELDS, *RESUMABLE_SECTIONS, *resumable)

    def may_change(path: str) -> bool:
        return any(path == f or path.startswith(f + ".") for f in free)

    check_workdir(workdir)
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
        if old == new:
            return True
    try:
        os.makedirs(workdir, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"--workdir={workdir} cannot be created ({e.strerror or e}); "
                          f"pass a folder that can be written") from None
    if jax.process_index() == 0:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(new, f, indent=2, sort_keys=True)
        os.replace(tmp, path)
    return resuming


def check_workdir(workdir: str) -> None:
    """Raises ``ConfigError`` when ``workdir`` (or a folder above it) exists but is not a
    folder, so that it cannot hold a run; changes nothing."""
    if not workdir:
        raise ConfigError("--workdir is empty; pass the folder for the run's outputs")
    path = os.path.abspath(workdir)
    while True:
        if os.path.exists(path) and not os.path.isdir(path):
            what = "is a file" if path == os.path.abspath(workdir) else f"is inside the file {path}"
            raise ConfigError(f"--workdir={workdir} {what}, not a folder; pass a new folder "
                              f"(or the folder of a saved run to resume it)")
        parent = os.path.dirname(path)
        if parent == path or os.path.isdir(path):
            return
        path = parent


def write_metrics(workdir: str, metrics: Mapping[str, Any]) -> str:
    """Writes the final evaluation, ``metrics.json`` (atomically; process 0 only)."""
    path = os.path.join(workdir, "metrics.json")
    if jax.process_index() != 0:
        return path
    with open(path + ".tmp", "w") as f:
        json.dump(to_python(dict(metrics)), f, indent=2, sort_keys=True)
    os.replace(path + ".tmp", path)
    return path
