"""What every experiment script shares: flags, config checks, the workdir, exits.

A family script defines ``train_and_evaluate(config, workdir) -> metrics`` and
ends with ``runner.main(train_and_evaluate, choices=...)``. The runner

* defines ``--config`` (a config file, ``--config.field=value`` overrides,
  locked so a misspelt field is an error) and ``--workdir``;
* stops *before any work* with a readable message (exit code 2) on an unknown
  field, a wrong type or a value outside its registry of choices;
* writes ``config.json`` and refuses to resume a workdir whose saved config
  differs in anything but the schedule of training (``train.steps`` and the
  logging / checkpoint intervals), the final evaluation (``eval.*``) or a
  sampler's closing refinement (``sampler.final_kl_steps``);
* turns the library's expected failures -- missing data, a non-finite loss,
  an unreadable checkpoint -- into one clear line and exit code 1;
* writes the final ``metrics.json``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from typing import Any, Callable, Dict, Iterable, Mapping, Optional

import jax
import ml_collections
from absl import app, flags
from absl import logging as absl_logging
from ml_collections import config_flags

from gmjax.data import parse_split
from gmjax.registry import Registry
from gmjax.samplers.temperflow import RejectionError
from gmjax.training.checkpoint import CheckpointError
from gmjax.training.logging import to_python
from gmjax.training.loop import FitResult, NonFiniteError, fit
from gmjax.training.parallel import initialize_distributed

Choices = Mapping[str, Iterable[str]]

# Fields that may change between a run and its resumption.
RESUMABLE_FIELDS = ("train.steps", "train.log_every", "train.eval_every",
                    "train.checkpoint_every", "train.keep_checkpoints",
                    # a finished sampler run resumes into just the refinement stage,
                    # or into more rounds at beta = 1
                    "sampler.final_kl_steps", "sampler.final_rounds")
# Whole sections that only change what is measured at the end, not what is trained.
RESUMABLE_SECTIONS = ("eval.",)


class ConfigError(ValueError):
    """A config field is unknown, mistyped or outside its valid choices."""


def define_flags(default_config: Optional[str] = None) -> None:
    config_flags.DEFINE_config_file(
        "config", default_config, "Experiment config file (experiments/configs/*.py).",
        lock_config=True)
    flags.DEFINE_string("workdir", None, "Directory for config.json, metrics, figures and "
                        "checkpoints; running again with the same workdir resumes.")
    flags.DEFINE_bool("progress", None, "Show a progress bar (default: only on a terminal).")


def get(config: ml_collections.ConfigDict, path: str) -> Any:
    node = config
    for part in path.split("."):
        node = node[part]
    return node


def validate(config: ml_collections.ConfigDict, choices: Choices,
             positive: Iterable[str] = ()) -> None:
    """Checks choice fields against their registries and positive fields.

    Args:
      choices: ``{"optim.name": OPTIMIZERS, ...}``: a field path and its valid
        names (a ``Registry`` or any iterable of strings).
      positive: field paths that must be > 0.

    Raises:
      ConfigError: naming the field, the bad value and the valid choices.
    """
    for path, valid in choices.items():
        value = get(config, path)
        names = valid.names() if isinstance(valid, Registry) else sorted(valid)
        if value not in names:
            raise ConfigError(f"--config.{path}={value!r} is not valid; "
                              f"valid choices: {', '.join(names)}")
    for path in positive:
        value = get(config, path)
        if not value > 0:
            raise ConfigError(f"--config.{path}={value!r} must be positive")


def _flatten(tree: Any, prefix: str = "") -> Dict[str, Any]:
    if isinstance(tree, Mapping):
        out = {}
        for k, v in tree.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: tree}


def check_splits(config: ml_collections.ConfigDict,
                 fields: Iterable[str] = ("train_split", "test_split")) -> None:
    """Raises ``ConfigError`` when a ``--config.data.<field>`` split string does not parse."""
    for field in fields:
        try:
            parse_split(config.data[field])
        except ValueError as e:
            raise ConfigError(f"--config.data.{field}: {e}") from None


def prepare_workdir(config: ml_collections.ConfigDict, workdir: str) -> bool:
    """Creates ``workdir`` and writes ``config.json``; returns True when resuming.

    A field the saved config lacks is one added to gmjax after the run was
    saved: the run was trained without it, so it resumes with the field's
    value (printed); any other difference outside ``RESUMABLE_FIELDS`` and
    ``RESUMABLE_SECTIONS`` is refused.

    Raises:
      ConfigError: if the workdir holds a run of a different config.
    """
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, "config.json")
    new = json.loads(config.to_json_best_effort())
    resuming = os.path.exists(path)
    if resuming:
        with open(path) as f:
            old = json.load(f)
        old_flat, new_flat = _flatten(old), _flatten(new)
        added = sorted(set(new_flat) - set(old_flat))
        if added:
            print(f"{workdir}: fields added since the run was saved: "
                  + ", ".join(f"{k}={new_flat[k]!r}" for k in added), flush=True)
        changed = sorted(k for k in set(old_flat) | set(new_flat)
                         if k not in added and old_flat.get(k) != new_flat.get(k)
                         and k not in RESUMABLE_FIELDS and not k.startswith(RESUMABLE_SECTIONS))
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


def quiet_logging() -> None:
    """Orbax logs every save at INFO; show warnings only unless --verbosity was given."""
    if not flags.FLAGS["verbosity"].present:
        absl_logging.set_verbosity(absl_logging.WARNING)


def _explain_override_error(argv: list[str], error: Exception) -> str:
    """Names the unknown ``--config.a.b`` field and lists the valid ones beside it."""
    config_path = None
    for i, arg in enumerate(argv):
        if arg.startswith("--config="):
            config_path = arg.split("=", 1)[1]
        elif arg == "--config" and i + 1 < len(argv):
            config_path = argv[i + 1]
    if config_path and os.path.exists(config_path.split(":")[0]):
        spec = importlib.util.spec_from_file_location("_config", config_path.split(":")[0])
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        config = module.get_config()
        for arg in argv:
            if not arg.startswith("--config."):
                continue
            node = config
            parts = arg[len("--config."):].split("=", 1)[0].split(".")
            for depth, part in enumerate(parts):
                if not isinstance(node, ml_collections.ConfigDict) or part not in node:
                    where = ".".join(parts[:depth]) or "the top level"
                    valid = sorted(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
                    return (f"unknown config field --config.{'.'.join(parts)}: no {part!r} in "
                            f"{where}; valid fields there: {', '.join(valid)}")
                node = node[part]
    return f"bad --config override: {error}"


def _parse_flags(argv: list[str]) -> list[str]:
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        sys.stderr.write(f"error: {e}\n")
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        sys.stderr.write(f"error: {_explain_override_error(argv, e)}\n")
    sys.exit(2)


def fit_with_config(config: ml_collections.ConfigDict, state: Any, train_step: Callable,
                    batch_fn: Callable[[int], Any], workdir: str, mesh: Any,
                    eval_fn: Optional[Callable] = None, progress: Optional[bool] = None,
                    desc: str = "train") -> FitResult:
    """``gmjax.training.fit`` with the shared ``train.*`` fields of the experiment config."""
    return fit(state, train_step, batch_fn, num_steps=config.train.steps, workdir=workdir,
               mesh=mesh, log_every=config.train.log_every,
               checkpoint_every=config.train.checkpoint_every,
               keep_checkpoints=config.train.keep_checkpoints,
               eval_every=config.train.eval_every, eval_fn=eval_fn,
               steps_per_call=config.train.steps_per_call, progress=progress, desc=desc)


def run(train_and_evaluate: Callable[..., Mapping[str, Any]], config: ml_collections.ConfigDict,
        workdir: str, choices: Choices, positive: Iterable[str] = (),
        progress: Optional[bool] = None,
        check: Optional[Callable[[ml_collections.ConfigDict], None]] = None
        ) -> Mapping[str, Any]:
    """Checks ``config``, prepares ``workdir`` and runs the experiment in it.

    ``check(config)``: a family's own checks (raising ``ConfigError``), run with
    the shared ones before anything is written.
    """
    validate(config, choices, positive)
    if check is not None:
        check(config)
    prepare_workdir(config, workdir)
    return train_and_evaluate(config, workdir, progress=progress)


def main(train_and_evaluate: Callable[[ml_collections.ConfigDict, str], Mapping[str, Any]],
         choices: Choices, positive: Iterable[str] = (),
         check: Optional[Callable[[ml_collections.ConfigDict], None]] = None) -> None:
    """Runs a family's ``train_and_evaluate`` as a command-line program."""

    def program(argv):
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {argv[1:]}")
        FLAGS = flags.FLAGS
        quiet_logging()
        initialize_distributed()  # multi-host when JAX_COORDINATOR_ADDRESS etc. are set
        if FLAGS.workdir is None:
            sys.stderr.write("error: --workdir is required\n")
            sys.exit(2)
        config = FLAGS.config
        try:
            metrics = run(train_and_evaluate, config, FLAGS.workdir, choices, positive,
                          FLAGS.progress, check)
        except ConfigError as e:
            sys.stderr.write(f"error: {e}\n")
            sys.exit(2)
        except (FileNotFoundError, NonFiniteError, CheckpointError, RejectionError) as e:
            sys.stderr.write(f"error: {e}\n")
            sys.exit(1)
        print(json.dumps(to_python(dict(metrics)), indent=2, sort_keys=True))

    app.run(program, flags_parser=_parse_flags)
