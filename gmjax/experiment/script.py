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

import ml_collections

from gmjax.experiment.config import Choices, validate
from gmjax.experiment.contract import (ConfigContractWarning, Unread, contract_violations,
                                       refuse_changed_unread, track_reads)
from gmjax.experiment.workdir import prepare_workdir
from gmjax.training.checkpoint import CheckpointError
from gmjax.training.loop import NonFiniteError

# The library's expected failures: missing data or a missing trained model, a
# non-finite loss, an unreadable checkpoint. ``main`` turns them (and a script's
# own ``expected_failures``) into one line and exit code 1.
EXPECTED_FAILURES: Tuple[type, ...] = (FileNotFoundError, NonFiniteError, CheckpointError)

TrainAndEvaluate = Callable[..., Mapping[str, Any]]


@dataclasses.dataclass(frozen=True)
class Experiment:
    """An experiment script, as ``run`` and ``main`` (and the contract test) need it.

    Attributes:
      train_and_evaluate: ``(config, workdir, progress=None) -> metrics``; writes
        the experiment contract into ``workdir`` (``write_metrics`` for
        ``metrics.json``).
      choices: ``{field path: valid names}`` (a ``Registry`` or strings).
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

    In order: the declared-unread fields must hold their ``defaults`` values
    (skipped without ``defaults``); ``seed`` must be >= 0; the other fields
    among ``experiment.choices`` and ``experiment.positive`` must be valid;
    ``experiment.check`` must pass. ``reads`` are the fields these checks read
    (the contract test compares them with ``unread``).

    Raises:
      ConfigError: naming the first bad field (every changed unread field).
    """
    unread = experiment.unread_fields(config)
    if defaults is not None:
        refuse_changed_unread(config, unread, defaults)
    tracked, reads = track_reads(config)
    validate(tracked, experiment.choices, experiment.positive,
             non_negative=("seed",) if "seed" in config else (), skip=unread)
    if experiment.check is not None:
        experiment.check(tracked)
    return unread, reads


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
