"""What an experiment script declares (``Experiment``) and how a run of it goes (``run``).

A family script ``experiments/<family>.py`` defines
``train_and_evaluate(config, workdir, progress=None) -> metrics`` and declares
itself once::

    EXPERIMENT = experiment.Experiment(
        train_and_evaluate, choices=CHOICES, positive=POSITIVE, check=check_config,
        unread=unread_fields)

    if __name__ == "__main__":
        experiment.main(EXPERIMENT)

``run(EXPERIMENT, config, workdir)`` is the same run from Python (tables,
the quick start, tests). Before any work it checks the config
(``preflight``); then it prepares the workdir (``config.json``, the resume
check) and calls ``train_and_evaluate`` on a copy of the config that records
what the run reads (see ``gmjax.experiment.contract``).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import warnings
from typing import Any, Callable, Dict, Mapping, Optional, Set, Tuple, Union

import jax
import ml_collections

from gmjax.experiment.config import Choices, ConfigError, check_types, has_field, validate
from gmjax.experiment.contract import (ConfigContractWarning, Unread, contract_violations,
                                       covering, refuse_changed_unread, track_reads)
from gmjax.experiment.workdir import check_workdir, prepare_workdir
from gmjax.training.checkpoint import CheckpointError
from gmjax.training.loop import NonFiniteError

# The library's expected failures: missing data or a missing trained model, a
# non-finite loss, an unreadable checkpoint. ``main`` prints them (and a script's
# own ``expected_failures``) without a traceback: exit code 2 for a missing file,
# which the command line (``--config.data.data_dir``, ...) or the machine must
# supply, 1 for the others.
EXPECTED_FAILURES: Tuple[type, ...] = (FileNotFoundError, NonFiniteError, CheckpointError)

TrainAndEvaluate = Callable[..., Mapping[str, Any]]


@dataclasses.dataclass(frozen=True)
class Experiment:
    """An experiment script, as ``run`` and ``main`` (and the contract test) need it.

    Attributes:
      train_and_evaluate: ``(config, workdir, progress=None) -> metrics``; writes
        the experiment contract into ``workdir`` (``write_metrics`` for
        ``metrics.json``).
      choices: ``{field path: valid names}``: a ``Registry``, a function
        returning the names, or strings. Registries and functions are asked
        when a config is checked, so names registered after the script was
        imported (a data set or target of one's own) are valid.
      positive: field paths that must be > 0.
      check: ``check(config)``, the script's own checks before any work, raising
        ``ConfigError``. It builds what the run builds from the config before
        the run touches data (the model, ``check_fit`` for the optimizer, the
        mesh and the fit options, ...) and checks the rest of what the run
        uses; with ``choices``, ``positive`` and the seed it must read every
        field that ``unread`` does not declare (``tests/test_config_contract.py``).
      unread: the fields the run does not read, ``{path: reason}``, or a
        function of the config returning them (see
        ``gmjax.experiment.contract``); changing one is refused.
      expected_failures: exception types the run may raise for reasons outside
        the code (an acceptance rate too low to sample, say): ``main`` prints
        them as one line and exits with code 1, like ``EXPECTED_FAILURES``.
      resumable: fields or sections, beyond the shared ``RESUMABLE_FIELDS``,
        that may change when a saved run resumes.
    """

    train_and_evaluate: TrainAndEvaluate
    choices: Choices = dataclasses.field(default_factory=dict)
    positive: Tuple[str, ...] = ()
    check: Optional[Callable[[ml_collections.ConfigDict], None]] = None
    unread: Union[Unread, Callable[[ml_collections.ConfigDict], Unread], None] = None
    expected_failures: Tuple[type, ...] = ()
    resumable: Tuple[str, ...] = ()

    def unread_fields(self, config: ml_collections.ConfigDict) -> Dict[str, str]:
        """``unread`` for ``config``: ``{path: reason}``."""
        if self.unread is None:
            return {}
        return dict(self.unread(config) if callable(self.unread) else self.unread)


def preflight(experiment: Experiment, config: ml_collections.ConfigDict,
              defaults: Optional[ml_collections.ConfigDict] = None
              ) -> Tuple[Dict[str, str], Set[str]]:
    """Every check of ``config`` that comes before any work; returns ``(unread, reads)``.

    In order: every field must hold a value of its type in ``defaults`` and
    the declared-unread fields their ``defaults`` values (both skipped without
    ``defaults``); ``seed`` must be >= 0; the other fields
    among ``experiment.choices`` and ``experiment.positive`` must be valid;
    ``data.batch_size`` must split over the devices of ``train.num_devices``
    (``check_batch_split``); ``experiment.check`` must pass. ``reads`` are the
    fields these checks read (the contract test compares them with ``unread``).

    Raises:
      ConfigError: naming the first bad field (every changed unread field).
    """
    if defaults is not None:
        check_types(config, defaults)
    unread = experiment.unread_fields(config)
    if defaults is not None:
        refuse_changed_unread(config, unread, defaults)
    tracked, reads = track_reads(config)
    validate(tracked, experiment.choices, experiment.positive,
             non_negative=("seed",) if "seed" in config else (), skip=unread)
    check_batch_split(tracked, unread)
    if experiment.check is not None:
        experiment.check(tracked)
    return unread, reads


def check_batch_split(config: ml_collections.ConfigDict, unread: Optional[Unread] = None) -> None:
    """Raises ``ConfigError`` when ``data.batch_size`` does not split evenly over the
    devices ``train.num_devices`` asks for (0: every visible device).

    ``data.batch_size`` is the global batch that data parallelism splits over the
    mesh (``gmjax.training.parallel``). Nothing is checked when either field is
    absent or declared unread, or when more devices are asked for than are
    visible (``config_mesh`` reports that).
    """
    fields = ("data.batch_size", "train.num_devices")
    if any(covering(f, unread or {}) or not has_field(config, f) for f in fields):
        return
    batch, asked = config.data.batch_size, config.train.num_devices
    if not isinstance(batch, int) or not isinstance(asked, int) or batch <= 0 or asked < 0:
        return
    visible = len(jax.devices())
    devices = asked or visible
    if devices > visible or batch % devices == 0:
        return
    which = (f"--config.train.num_devices={asked}" if asked else
             f"--config.train.num_devices=0 (every visible device: {visible})")
    divisors = [d for d in range(1, visible + 1) if batch % d == 0]
    raise ConfigError(
        f"--config.data.batch_size={batch} does not split evenly over the {devices} devices of "
        f"{which}; use a batch size that is a multiple of {devices} (such as "
        f"{-(-batch // devices) * devices}) or --config.train.num_devices="
        f"{max(divisors)} (it must divide the batch size)")


def run(experiment: Experiment, config: ml_collections.ConfigDict, workdir: str, *,
        progress: Optional[bool] = None, defaults: Optional[ml_collections.ConfigDict] = None
        ) -> Mapping[str, Any]:
    """Checks ``config`` (``preflight``), prepares ``workdir`` and runs the experiment in it.

    Args:
      defaults: the config ``config`` was made from (a config file's
        ``get_config()``); a field the run does not read must keep its value
        there. ``main`` passes the config file without the overrides.

    Returns:
      The metrics ``train_and_evaluate`` returned.

    Raises:
      ConfigError: before anything is written, for a bad config; or when the
        workdir holds a run of a different config.
    """
    check_workdir(workdir)
    unread, _ = preflight(experiment, config, defaults)
    prepare_workdir(config, workdir, resumable=(*experiment.resumable, *unread))
    tracked, reads = track_reads(config)
    metrics = experiment.train_and_evaluate(tracked, workdir, progress=progress)
    problems = contract_violations(config, reads, unread)
    if problems:
        warnings.warn(f"{_script_name(experiment)} broke the config contract "
                      f"(gmjax.experiment.contract): " + "; ".join(problems),
                      ConfigContractWarning, stacklevel=2)
    return metrics


def _script_name(experiment: Experiment) -> str:
    module = sys.modules.get(getattr(experiment.train_and_evaluate, "__module__", ""))
    path = getattr(module, "__file__", None)
    return os.path.relpath(path) if path else "the script"
