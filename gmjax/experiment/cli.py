"""An experiment script as a command-line program: ``--config``, ``--workdir``, ``--progress``.

``main(EXPERIMENT)`` defines the flags (when the script has not), then

* ``--help`` prints the script's docstring, its own flags and the fields of
  the config file given with ``--config`` with their values (valid choices
  and the fields this config does not read marked), nothing of the
  libraries' flags (``--helpfull`` lists those too), and exits with code 0;
* takes ``--config`` (a config file, ``--config.field=value`` overrides,
  locked so a misspelt field is an error) and ``--workdir``;
* stops *before any work* with one or two readable lines and exit code 2 on
  bad input: a missing flag or config file, an unknown field, a wrong type, a
  value outside its choices, a batch that does not split over the devices, a
  change to a field the script does not read (``gmjax.experiment.contract``),
  a workdir that is a file, holds other files, or holds a run of another
  config; and, once the run has started, on missing input files
  (``FileNotFoundError``: a data set not on this machine, a trained model
  not where the config says). Nothing already in the workdir is changed,
  and a workdir created for a run that stopped this way is removed again;
* turns the other expected failures -- a non-finite loss, an unreadable
  checkpoint (``EXPECTED_FAILURES``) and the script's own
  ``Experiment.expected_failures`` -- into one line and exit code 1;
* prints the final metrics as JSON.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import sys
from typing import Dict, List, Optional, Sequence

import ml_collections
from absl import app, flags
from absl import logging as absl_logging
from ml_collections import config_flags

from gmjax.experiment.config import (ConfigError, choice_names, get_field, kind_of,
                                     leaf_fields, load_config_file)
from gmjax.experiment.contract import covering
from gmjax.experiment.script import EXPECTED_FAILURES, Experiment, run
from gmjax.experiment.workdir import check_workdir
from gmjax.training.logging import to_python
from gmjax.training.parallel import initialize_distributed

SCRIPT_FLAGS = ("config", "workdir", "progress")
HELP_FLAGS = ("help", "h", "?", "helpshort")
USAGE_ERROR = 2  # the command line must change
RUN_FAILURE = 1  # the run failed for a reason outside the command line


def define_flags(default_config: Optional[str] = None) -> None:
    """Defines ``--config``, ``--workdir`` and ``--progress`` (those not defined yet)."""
    defined = flags.FLAGS
    if "config" not in defined:
        config_flags.DEFINE_config_file(
            "config", default_config,
            "The experiment config, a Python file defining get_config() (FILE or FILE:ARG); "
            "change a field with --config.FIELD=VALUE.", lock_config=True)
    if "workdir" not in defined:
        flags.DEFINE_string("workdir", None, "The folder for the run's config.json, metrics, "
                            "figures and checkpoints; a saved run's folder resumes it.")
    if "progress" not in defined:
        flags.DEFINE_bool("progress", None, "Show a progress bar (default: only on a terminal).")


def quiet_logging() -> None:
    """Orbax logs every save at INFO; show warnings only unless --verbosity was given."""
    if not flags.FLAGS["verbosity"].present:
        absl_logging.set_verbosity(absl_logging.WARNING)


def config_files_for(script: str) -> List[str]:
    """The config files in ``configs/`` beside ``script`` whose usage line runs ``script``
    with them (``python experiments/flow.py --config experiments/configs/flow_toy.py``)."""
    folder = os.path.join(os.path.dirname(os.path.abspath(script)), "configs")
    usage = re.compile(r"python3?\s+(\S+\.py)\s+--config[= ](\S+\.py)")
    found = []
    for path in sorted(glob.glob(os.path.join(folder, "*.py"))):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if any(os.path.basename(s) == os.path.basename(script)
               and os.path.basename(c) == os.path.basename(path) for s, c in usage.findall(text)):
            found.append(os.path.relpath(path))
    return found


def _flag_value(argv: Sequence[str], name: str) -> Optional[str]:
    """The last value given to ``--name`` (or ``-name``) in ``argv``, None if none."""
    value = None
    args = list(argv[1:])
    for i, arg in enumerate(args):
        if arg == "--":
            break
        for prefix in (f"--{name}", f"-{name}"):
            if arg.startswith(prefix + "="):
                value = arg[len(prefix) + 1:]
            elif arg == prefix and i + 1 < len(args):
                value = args[i + 1]
    return value


def _asks_for_help(argv: Sequence[str]) -> bool:
    for arg in argv[1:]:
        if arg == "--":
            return False
        if arg.lstrip("-") in HELP_FLAGS and arg.startswith("-"):
            return True
    return False


def _script() -> str:
    main_module = sys.modules.get("__main__")
    return os.path.relpath(getattr(main_module, "__file__", None) or sys.argv[0])


def _usage_line(script: str) -> str:
    configs = config_files_for(script)
    config = configs[0] if len(configs) == 1 else "CONFIG.py"
    stem = os.path.splitext(os.path.basename(script))[0]
    return (f"usage: python {script} --config={config} --workdir=runs/{stem} "
            f"[--config.FIELD=VALUE ...]  (--help lists the flags and the config fields)")


def _fail(message: str, code: int = USAGE_ERROR) -> None:
    sys.stderr.write(f"error: {message}\n")
    sys.exit(code)


def _explain_override_error(config: ml_collections.ConfigDict, argv: Sequence[str],
                            error: Exception) -> str:
    """Names the unknown ``--config.a.b`` field and lists the valid ones beside it."""
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
                if section and not valid:  # an empty section of options (data.options)
                    return (f"unknown config field --config.{'.'.join(parts)}: {where} holds no "
                            f"fields in this config file; the command line can only change "
                            f"fields a config file sets, so set {where}.{part} in a config "
                            f"file (config.{where}.{part} = ...)")
                return (f"unknown config field --config.{'.'.join(parts)}: no {part!r} in "
                        f"{where}; valid fields there: {', '.join(valid)}")
            node = node[part]
    return f"bad --config override: {error}".replace("\n", " ")


def _expected_value(config: Optional[ml_collections.ConfigDict], message: str) -> str:
    """``"; --config.a.b takes an int, such as 5000"`` for a bad ``--config.a.b`` value."""
    match = re.match(r"flag --config\.([\w.]+)=", message)
    if config is None or match is None:
        return ""
    try:
        value = get_field(config, match.group(1))
    except (KeyError, AttributeError):
        return ""
    return f"; --config.{match.group(1)} takes {kind_of(value)}, such as {value!r}"


def _check_config_flag(argv: Sequence[str], default_config: Optional[str]
                       ) -> Optional[ml_collections.ConfigDict]:
    """Exits with code 2 when ``--config`` (or ``--workdir``) is missing or the config file
    does not load; returns the config file's config (None when ``--flagfile`` may give it)."""
    script = _script()
    if any(arg.lstrip("-").startswith("flagfile") for arg in argv[1:]):
        return None
    spec = _flag_value(argv, "config") or default_config
    missing = [f"--{name}" for name, value in (("config", spec),
                                                ("workdir", _flag_value(argv, "workdir")))
               if not value]
    if missing:
        configs = config_files_for(script)
        known = f" (config files for {os.path.basename(script)}: {', '.join(configs)})" \
            if configs and "--config" in missing else ""
        sys.stderr.write(f"error: {' and '.join(missing)} "
                         f"{'is' if len(missing) == 1 else 'are'} required{known}\n"
                         f"{_usage_line(script)}\n")
        sys.exit(USAGE_ERROR)
    try:
        return load_config_file(spec)
    except ConfigError as e:
        configs = config_files_for(script)
        hint = (f"; config files for {os.path.basename(script)}: {', '.join(configs)}"
                if configs and not os.path.isfile(spec.partition(":")[0]) else "")
        _fail(f"{e}{hint}")


def _parse_flags(argv: List[str], experiment: Optional[Experiment] = None,
                 default_config: Optional[str] = None) -> List[str]:
    if _asks_for_help(argv):
        print_help(argv, experiment, default_config)
        sys.exit(0)
    config = _check_config_flag(argv, default_config)
    try:
        rest = flags.FLAGS(argv)
    except flags.Error as e:
        if str(e).startswith("Unknown command line flag 'config.") and config is None:
            _fail(f"{e}; --config.FIELD=VALUE needs --config=FILE")
        _fail(str(e).replace("\n", " ") + _expected_value(config, str(e)))
    except (AttributeError, KeyError, TypeError, ValueError, OSError) as e:
        if config is None:
            _fail(f"bad --config: {e}".replace("\n", " "))
        _fail(_explain_override_error(config, argv, e))
    if len(rest) > 1:
        _fail(f"unexpected argument{'s' if len(rest) > 2 else ''} {' '.join(rest[1:])!r}: "
              f"flags are written --name=value (python {_script()} --help lists them)")
    return rest


def _check_workdir_flag(workdir: str) -> None:
    """Refuses a workdir that is not a folder, or a folder holding files but no saved run
    (so that nothing in it is overwritten)."""
    check_workdir(workdir)
    if os.path.isdir(workdir) and os.listdir(workdir) \
            and not os.path.exists(os.path.join(workdir, "config.json")):
        raise ConfigError(f"--workdir={workdir} holds files but no saved run (no config.json); "
                          f"pass a new or empty folder, so that nothing in it is overwritten")


def _remove_unused_workdir(workdir: str) -> None:
    """Removes a workdir this invocation created when it holds nothing but ``config.json``
    (and empty folders): a run that stopped before it saved anything leaves no trace."""
    for root, _, files in os.walk(workdir):
        if set(files) - ({"config.json"} if root == workdir else set()):
            return
    shutil.rmtree(workdir, ignore_errors=True)


def main(experiment: Experiment, default_config: Optional[str] = None) -> None:
    """Runs ``experiment`` as a command-line program (call under ``__main__``)."""
    define_flags(default_config)

    def program(argv):
        del argv  # _parse_flags refuses positional arguments
        FLAGS = flags.FLAGS
        quiet_logging()
        initialize_distributed()  # multi-host when JAX_COORDINATOR_ADDRESS etc. are set
        failures = (*EXPECTED_FAILURES, *experiment.expected_failures)
        for name in ("config", "workdir"):
            if FLAGS[name].value is None:  # given neither on the command line nor in a flagfile
                _fail(f"--{name} is required\n{_usage_line(_script())}")
        workdir = FLAGS.workdir
        new_workdir = not os.path.exists(workdir)
        try:
            _check_workdir_flag(workdir)
            defaults = load_config_file(config_flags.get_config_filename(FLAGS["config"]))
            metrics = run(experiment, FLAGS.config, workdir, progress=FLAGS.progress,
                          defaults=defaults)
        except (ConfigError, FileNotFoundError) as e:
            # Bad input, or input the run needs that is not there (data, a trained model).
            if new_workdir:
                _remove_unused_workdir(workdir)
            _fail(str(e))
        except failures as e:
            _fail(str(e), RUN_FAILURE)
        except KeyboardInterrupt:  # fit saved a checkpoint and said where; no traceback
            sys.exit(130)
        print(json.dumps(to_python(dict(metrics)), indent=2, sort_keys=True))

    app.run(program, flags_parser=lambda argv: _parse_flags(argv, experiment, default_config))


def print_help(argv: Sequence[str], experiment: Optional[Experiment] = None,
               default_config: Optional[str] = None, file=None) -> None:
    """Prints the script's docstring, its own flags and the config fields with their values.

    The fields are those of the config file ``--config`` names in ``argv`` (or
    ``default_config``); choice fields list their valid names and fields this
    config does not read are marked. Without a config file it says how to see
    them.
    """
    file = file or sys.stdout
    script = _script()
    doc = (getattr(sys.modules.get("__main__"), "__doc__", None) or "").strip()
    out = [doc, ""] if doc else [_usage_line(script), ""]
    out.append("flags:")
    own = [name for name in SCRIPT_FLAGS if name in flags.FLAGS]
    main_module = flags.FLAGS.flags_by_module_dict().get(sys.argv[0], [])
    own += [f.name for f in main_module if f.name not in own]
    for name in own:
        flag = flags.FLAGS[name]
        form = {"config": "--config=FILE", "workdir": "--workdir=DIR"}.get(
            name, f"--[no]{name}" if flag.boolean else f"--{name}=VALUE")
        shown = flag.default is not None and name != "config"
        default = f" (default: {flag.default!r})" if shown else ""
        out.append(f"  {form}")
        out.append(f"      {flag.help}{default}")
        configs = config_files_for(script) if name == "config" else []
        if configs:
            out.append(f"      Config files for {os.path.basename(script)}: {', '.join(configs)}")
    out.append("")
    spec = _flag_value(argv, "config") or default_config
    if not spec:
        out.append(f"config fields: python {script} --config=FILE --help lists the fields of "
                   f"a config file with their default values.")
    else:
        try:
            out += _describe_fields(spec, load_config_file(spec), experiment)
        except ConfigError as e:
            out.append(f"config fields: {e}")
    out.append("")
    out.append("--helpfull also lists the flags of the libraries (absl, JAX, orbax, ...).")
    print("\n".join(out), file=file)


def _describe_fields(spec: str, config: ml_collections.ConfigDict,
                     experiment: Optional[Experiment]) -> List[str]:
    choices: Dict[str, List[str]] = {}
    unread: Dict[str, str] = {}
    if experiment is not None:
        for path, valid in experiment.choices.items():
            choices[path] = choice_names(valid)
        try:
            unread = experiment.unread_fields(config)
        except Exception:  # the marks are a courtesy; a config the run refuses has none
            unread = {}
    fields = leaf_fields(config)
    width = max((len(path) for path in fields), default=0) + len("--config.")
    out = [f"config fields of {spec} (their values there; change one with "
           f"--config.FIELD=VALUE):"]
    for path, value in fields.items():
        notes = []
        if path in choices:
            notes.append(f"one of: {', '.join(map(str, choices[path]))}")
        if covering(path, unread):
            notes.append("not read with this config")
        note = f"  ({'; '.join(notes)})" if notes else ""
        out.append(f"  {'--config.' + path:<{width}} = {value!r}{note}")
    return out
