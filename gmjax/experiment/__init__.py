"""The plumbing every experiment script shares: config checks, the workdir, flags, metrics files.

* ``config``: field paths, ``validate`` (choices, read from their registries
  when the config is checked; signs), ``section_options``, ``ConfigError``;
* ``contract``: every field a script accepts is read, or refused with a
  message naming it (``track_reads``, ``unread_by``, ...);
* ``fitting``: the shared ``train.*`` fields as ``fit`` options;
* ``workdir``: ``config.json``, the resume check, ``metrics.json``;
* ``script``: ``Experiment`` (what a script declares) and ``run``;
* ``cli``: ``main``, the command line around ``run``.

Imports flow one way: this package uses the rest of ``gmjax`` and is used by
the scripts in ``experiments/``, never the other way round.
"""

from gmjax.experiment.cli import define_flags, main, quiet_logging
from gmjax.experiment.config import (ChoiceSource, ConfigError, check_data_dir, check_splits,
                                     choice_names, get_field, leaf_fields, load_config_file,
                                     section_options, validate)
from gmjax.experiment.contract import (ConfigContractWarning, Unread, contract_violations,
                                       covering, refuse_changed_unread, track_reads, unread_by,
                                       unread_optimizer_fields)
from gmjax.experiment.fitting import (check_fit, check_optimizer, config_mesh, fit_options,
                                      fit_with_config)
from gmjax.experiment.script import EXPECTED_FAILURES, Experiment, preflight, run
from gmjax.experiment.workdir import (RESUMABLE_FIELDS, RESUMABLE_SECTIONS, prepare_workdir,
                                      write_metrics)

__all__ = [
    "define_flags", "main", "quiet_logging",
    "ChoiceSource", "ConfigError", "check_data_dir", "check_splits", "choice_names", "get_field",
    "leaf_fields", "load_config_file", "section_options", "validate",
    "ConfigContractWarning", "Unread", "contract_violations", "covering",
    "refuse_changed_unread", "track_reads", "unread_by", "unread_optimizer_fields",
    "check_fit", "check_optimizer", "config_mesh", "fit_options", "fit_with_config",
    "EXPECTED_FAILURES", "Experiment", "preflight", "run",
    "RESUMABLE_FIELDS", "RESUMABLE_SECTIONS", "prepare_workdir", "write_metrics",
]
