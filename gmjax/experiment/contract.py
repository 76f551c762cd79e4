"""The config contract: every field a script accepts is read, or refused with a message naming it.

A config holds more fields than one run reads. The fields every config
shares (``experiments/configs/common.py``) include some a family has no use
for -- toy densities are sampled, so ``data.data_dir`` means nothing to them
-- and a choice decides what else is read: ``optim.momentum`` is SGD's,
``model.num_bins`` the spline flows', ``mcmc.*`` the MCMC baselines'. A field
that is silently ignored is a trap: a user changes it and takes the
unchanged result for its effect. So a script declares, for the config it is
given, the fields its run does not read and why::

    def unread_fields(config) -> {path: reason}

``path`` is a field (``"optim.momentum"``) or a whole section (``"mcmc"``);
``reason`` says why the run does not read it and what to set instead
(``"model.name='gmm' is fitted by EM ...; train.steps counts EM iterations"``).
It is ``Experiment.unread`` (a function of the config, or a fixed mapping).
Then:

1. **Declared-unread fields are refused when changed.** Before any work, a
   run whose config differs from its defaults (``main``: the config file
   itself, loaded again without the command-line overrides;
   ``run(..., defaults=...)``) in a declared-unread field stops with a
   ``ConfigError`` naming the field and the reason (exit code 2 from ``main``).
   The refusal is by value: a field overridden to its default is accepted.
2. **Every other field is read.** *Read* means asked for by name -- an
   attribute, an item or ``.get`` -- on the config the script is handed;
   copies and serializations (``to_dict``, ``copy_and_resolve_references``,
   ``to_json``) do not count, so a field passed on as part of a plain dict is
   not read until someone reads it on the config. ``track_reads`` records
   reads, and two places check them:

   * the contract test (``tests/test_config_contract.py``) runs each script's
     checks (``Experiment.check`` with its ``choices`` and ``positive``
     fields; see ``gmjax.experiment.preflight``) on every config in
     ``experiments/configs`` and on every single-choice variant of it, and
     requires them to read every field that is not declared unread and none
     that is. A script's ``check`` builds what the run builds from the config
     before it touches data -- the model, the optimizer, the fit options --
     so that a bad value stops the run before any work, and reads the rest
     of what the run uses where it checks it;
     The test also requires each field of ``choices`` and ``positive`` to be
     read under some variant: a checked field declared unread everywhere is
     a declaration that hides a field the run uses;
   * ``gmjax.experiment.run`` records the reads of the run itself and warns
     (``ConfigContractWarning``) when a field was neither read nor declared
     unread, or read although declared unread.

A field a run does not read cannot change what it trains, so it may differ
when a saved run resumes (``prepare_workdir(..., resumable=...)``).

What a script provides, in ``EXPERIMENT = Experiment(...)``: ``check``, the
checks that build from the config what the run builds, and ``unread``, the
declarations; ``main`` and ``run`` do the rest.

Declarations that follow a builder's own reads need not be written out by
hand: ``unread_by(build, config, section, reason)`` lists the fields of a
section that ``build(config)`` does not read under the config's choices
(``build_flow`` and ``model``), and ``unread_optimizer_fields(config)`` the
optimizer fields of ``optim`` that ``make_optimizer`` does not read for the
chosen optimizer and schedule. Both run the builder on a tracked copy, so
they follow the builder's code rather than a list kept beside it.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Set, Tuple

import ml_collections
from ml_collections.config_dict import FieldReference

from gmjax.experiment.config import ConfigError, leaf_fields
from gmjax.training.optim import OPTIMIZERS, SCHEDULES, make_optimizer

Unread = Mapping[str, str]  # {field or section path: why the run does not read it}


class ConfigContractWarning(UserWarning):
    """A run read a field its script declares unread, or left one undeclared and unread."""


class _ReadLog:
    """The dotted paths read so far; bulk access (``quiet``) does not count."""

    def __init__(self):
        self.paths: Set[str] = set()
        self.quiet = 0

    @contextlib.contextmanager
    def quietly(self) -> Iterator[None]:
        self.quiet += 1
        try:
            yield
        finally:
            self.quiet -= 1


class _TrackedConfigDict(ml_collections.ConfigDict):
    """A ``ConfigDict`` that logs the path of every leaf field read by name."""

    def __getitem__(self, key):
        value = super().__getitem__(key)
        log = self.__dict__.get("_read_log")
        if log is not None and not log.quiet and not isinstance(value, ml_collections.ConfigDict):
            log.paths.add(self.__dict__["_read_path"] + str(key))
        return value

    def _quiet(self):
        log = self.__dict__.get("_read_log")
        return log.quietly() if log is not None else contextlib.nullcontext()

    def items(self, preserve_field_references=False):
        with self._quiet():
            return super().items(preserve_field_references)

    def values(self, preserve_field_references=False):
        with self._quiet():
            return super().values(preserve_field_references)

    def iteritems(self, preserve_field_references=False):
        return iter(self.items(preserve_field_references))

    def itervalues(self, preserve_field_references=False):
        return iter(self.values(preserve_field_references))

    def to_dict(self, visit_map=None, preserve_field_references=False):
        with self._quiet():
            return super().to_dict(visit_map, preserve_field_references)

    def to_json(self, json_encoder_cls=None, **kwargs):
        with self._quiet():
            return super().to_json(json_encoder_cls, **kwargs)

    def to_json_best_effort(self, **kwargs):
        with self._quiet():
            return super().to_json_best_effort(**kwargs)

    def to_yaml(self, **kwargs):
        with self._quiet():
            return super().to_yaml(**kwargs)

    def __repr__(self) -> str:
        with self._quiet():
            return super().__repr__()

    def __str__(self) -> str:
        with self._quiet():
            return super().__str__()

    def copy_and_resolve_references(self, visit_map=None):
        """A plain (untracked) ``ConfigDict`` copy: reads of the copy are not logged."""
        with self._quiet():
            return _copy(self, ml_collections.ConfigDict)


def _copy(node: ml_collections.ConfigDict, cls: type, log: Optional[_ReadLog] = None,
          path: str = "") -> ml_collections.ConfigDict:
    """A deep copy of the sections of ``node`` as ``cls``, references resolved, locks kept."""
    out = cls(type_safe=node.is_type_safe, convert_dict=node.convert_dict,
              allow_dotted_keys=node.allow_dotted_keys,
              sort_keys=node.__dict__.get("_sort_keys", True))
    if log is not None:
        object.__setattr__(out, "_read_log", log)
        object.__setattr__(out, "_read_path", path)
    for key, value in node.__dict__["_fields"].items():
        if isinstance(value, FieldReference):
            value = value.get()
        if isinstance(value, ml_collections.ConfigDict):
            value = _copy(value, cls, log, f"{path}{key}.")
        out.__dict__["_fields"][key] = value
    object.__setattr__(out, "_locked", node.is_locked)
    return out


def track_reads(config: ml_collections.ConfigDict) -> Tuple[ml_collections.ConfigDict, Set[str]]:
    """A copy of ``config`` that records reads, and the set the reads go into.

    The copy is a ``ConfigDict`` (locks, type safety and values as in
    ``config``); each leaf field read by name through it -- ``c.optim.lr``,
    ``c["optim"]["lr"]``, ``c.optim.get("lr")``, ``c["optim.lr"]`` -- adds its
    dotted path (``"optim.lr"``) to the set. Reading a section adds nothing;
    ``to_dict``, ``items``, ``values``, ``to_json*`` and ``repr`` add nothing;
    ``copy_and_resolve_references`` returns an untracked copy.
    """
    log = _ReadLog()
    return _copy(config, _TrackedConfigDict, log), log.paths


def covering(path: str, unread: Unread) -> Optional[str]:
    """The declaration in ``unread`` that covers field ``path`` (itself or a section above it)."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        prefix = ".".join(parts[:i])
        if prefix in unread:
            return prefix
    return None


def unread_by(build: Callable[[ml_collections.ConfigDict], Any],
              config: ml_collections.ConfigDict, section: str, reason: str) -> Dict[str, str]:
    """``{path: reason}``: the fields of ``config.<section>`` that ``build(config)`` leaves unread.

    ``build`` runs on a tracked copy of ``config``; if it raises (a bad value,
    which the script's checks report), nothing is declared. ``build`` must read
    every field of the section that the run uses (``build_gan(c.model, ...)
    .losses(c.model.loss)``, not just ``build_gan``): what it leaves unread is
    declared unread, and a change to it refused.
    """
    tracked, reads = track_reads(config)
    try:
        build(tracked)
    except (ConfigError, ValueError, KeyError, TypeError, AttributeError):
        return {}
    prefix = section + "."
    return {path: reason for path in leaf_fields(config)
            if path.startswith(prefix) and path not in reads}


def unread_optimizer_fields(config: ml_collections.ConfigDict, section: str = "optim"
                            ) -> Dict[str, str]:
    """The optimizer fields of the ``optim`` block that ``make_optimizer`` leaves unread for
    the block's optimizer and schedule (``optim.momentum`` for Adam, ``optim.warmup_steps``
    unless the schedule warms up, ...).

    An optimizer field is one ``make_optimizer`` reads for some registered
    optimizer and schedule; other fields of the block (a GAN's
    ``optim.critic_lr``) are the script's to read or declare.
    """
    optim = config[section]

    def reads_with(**choice: str) -> Set[str]:
        variant = optim.copy_and_resolve_references()
        for key, value in choice.items():
            variant[key] = value
        tracked, reads = track_reads(variant)
        try:
            make_optimizer(tracked, 1)
        except (ValueError, KeyError, TypeError):
            return set()
        return reads

    schedules = SCHEDULES.names() if "schedule" in optim else [None]
    known: Set[str] = set()
    for name in OPTIMIZERS.names():
        for schedule in schedules:
            known |= reads_with(name=name, **({"schedule": schedule} if schedule else {}))
    read = reads_with()
    if not read:  # a bad value: the script's checks report it
        return {}
    reason = (f"{section}.name={optim['name']!r} with {section}.schedule="
              f"{optim.get('schedule', 'constant')!r} does not use it")
    return {f"{section}.{field}": reason for field in sorted(known - read)}


def refuse_changed_unread(config: ml_collections.ConfigDict, unread: Unread,
                          defaults: ml_collections.ConfigDict) -> None:
    """Raises ``ConfigError`` naming every declared-unread field whose value differs from
    ``defaults`` (a field ``defaults`` lacks counts as changed), with its reason."""
    base = leaf_fields(defaults)
    problems = []
    for path, value in sorted(leaf_fields(config).items()):
        declared = covering(path, unread)
        if declared is not None and (path not in base or base[path] != value):
            problems.append(f"--config.{path}={value!r} is not read by this script: "
                            f"{unread[declared]}")
    if problems:
        raise ConfigError("; ".join(problems))


def contract_violations(config: ml_collections.ConfigDict, reads: Set[str],
                        unread: Unread) -> List[str]:
    """Every way ``reads`` (from ``track_reads``) and ``unread`` break the contract on
    ``config``, one line each: a field neither read nor declared unread, a field read
    although declared unread, a declaration that names no field of ``config``."""
    leaves = leaf_fields(config)
    problems = [f"{declared}: declared unread ({reason}), but the config has no such field"
                for declared, reason in unread.items()
                if not any(covering(path, {declared: reason}) for path in leaves)]
    for path in sorted(leaves):
        declared = covering(path, unread)
        if declared is None and path not in reads:
            problems.append(f"{path}: neither read nor declared unread")
        elif declared is not None and path in reads:
            problems.append(f"{path}: read, although declared unread ({unread[declared]})")
    return problems
