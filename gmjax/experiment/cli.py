"""An experiment script as a command-line program: ``--config``, ``--workdir``, ``--progress``.

``main(EXPERIMENT)`` defines the flags (when the script has not), then

* takes ``--config`` (a config file, ``--config.field=value`` overrides,
  locked so a misspelt field is an error) and ``--workdir``;
* stops *before any work* with one readable line and exit code 2 on an
  unknown field, a wrong type, a value outside its choices, or a change to a
  field the script does not read (``gmjax.experiment.contract``);
* turns the expected failures -- ``EXPECTED_FAILURES`` (missing data, a
  non-finite loss, an unreadable checkpoint) and the script's own
  ``Experiment.expected_failures`` -- into one line and exit code 1;
* prints the final metrics as JSON.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Optional

import ml_collections
from absl import app, flags
from absl import logging as absl_logging
from ml_collections import config_flags

from gmjax.experiment.config import ConfigError, load_config_file
from gmjax.experiment.script import EXPECTED_FAILURES, Experiment, run
from gmjax.training.logging import to_python
from gmjax.training.parallel import initialize_distributed


def define_flags(default_config: Optional[str] = None) -> None:
    """Defines ``--config``, ``--workdir`` and ``--progress`` (those not defined yet)."""
    defined = flags.FLAGS
    if "config" not in defined:
        config_flags.DEFINE_config_file(
            "config", default_config,
            "Experiment config file (a Python file defining get_config()).", lock_config=True)
    if "workdir" not in defined:
        flags.DEFINE_string("workdir", None, "Directory for config.json, metrics, figures and "
                            "checkpoints; running again with the same workdir resumes.")
    if "progress" not in defined:
        flags.DEFINE_bool("progress", None, "Show a progress bar (default: only on a terminal).")


def quiet_logging() -> None:
    """Orbax logs every save at INFO; show warnings only unless --verbosity was given."""
    if not flags.FLAGS["verbosity"].present:
        absl_logging.set_verbosity(absl_logging.WARNING)


def _explain_override_error(argv: list[str], error: Exception) -> str:
    """Names the unknown ``--config.a.b`` field and lists the valid ones beside it."""
    config_spec = None
    for i, arg in enumerate(argv):
        if arg.startswith("--config="):
            config_spec = arg.split("=", 1)[1]
        elif arg == "--config" and i + 1 < len(argv):
            config_spec = argv[i + 1]
    if config_spec and os.path.exists(config_spec.split(":")[0]):
        config = load_config_file(config_spec)
        for arg in argv:
            if not arg.startswith("--config."):
                continue
            node = config
            parts = arg[len("--config."):].split("=", 1)[0].split(".")
            for depth, part in enumerate(parts):
                section = isinstance(node, ml_collections.ConfigDict)
                if not section or part not in node:
                    where = ".".join(parts[:depth]) or "the top level"
                    valid = sorted(node.keys()) if section else []
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


def main(experiment: Experiment, default_config: Optional[str] = None) -> None:
    """Runs ``experiment`` as a command-line program (call under ``__main__``)."""
    define_flags(default_config)

    def program(argv):
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {argv[1:]}")
        FLAGS = flags.FLAGS
        quiet_logging()
        initialize_distributed()  # multi-host when JAX_COORDINATOR_ADDRESS etc. are set
        for name in ("config", "workdir"):
            if FLAGS[name].value is None:
                sys.stderr.write(f"error: --{name} is required\n")
                sys.exit(2)
        failures = (*EXPECTED_FAILURES, *experiment.expected_failures)
        try:
            defaults = load_config_file(config_flags.get_config_filename(FLAGS["config"]))
            metrics = run(experiment, FLAGS.config, FLAGS.workdir, progress=FLAGS.progress,
                          defaults=defaults)
        except ConfigError as e:
            sys.stderr.write(f"error: {e}\n")
            sys.exit(2)
        except failures as e:
            sys.stderr.write(f"error: {e}\n")
            sys.exit(1)
        print(json.dumps(to_python(dict(metrics)), indent=2, sort_keys=True))

    app.run(program, flags_parser=_parse_flags)
