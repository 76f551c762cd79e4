"""Reading an experiment config: field paths, value checks, and the error they raise.

Every experiment is an ``ml_collections.ConfigDict`` (``experiments/configs/*.py``);
a field is named by its dotted path, ``"optim.lr"``, exactly as it is
overridden on the command line, ``--config.optim.lr=...``. Every check here
raises ``ConfigError`` with a message that names the field, its value and,
for a choice, the valid names.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any, Dict, Iterable, Mapping, Optional

import ml_collections

from gmjax.data import parse_split
from gmjax.registry import Registry

Choices = Mapping[str, Iterable[str]]


class ConfigError(ValueError):
    """A config field is unknown, mistyped, outside its valid choices, or not read."""


def get_field(config: ml_collections.ConfigDict, path: str) -> Any:
    """The value at a dotted ``path`` (``"optim.lr"``)."""
    node = config
    for part in path.split("."):
        node = node[part]
    return node


def leaf_fields(tree: Any, prefix: str = "") -> Dict[str, Any]:
    """``{dotted path: value}`` of every field of a config (or nested dict) that is not
    itself a section; empty sections have no fields."""
    if isinstance(tree, ml_collections.ConfigDict):
        tree = tree.to_dict()
    if isinstance(tree, Mapping):
        out: Dict[str, Any] = {}
        for key, value in tree.items():
            out.update(leaf_fields(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


def validate(config: ml_collections.ConfigDict, choices: Optional[Choices] = None,
             positive: Iterable[str] = (), non_negative: Iterable[str] = (),
             skip: Iterable[str] = ()) -> None:
    """Checks choice fields against their registries and the sign of numeric fields.

    Args:
      choices: ``{"optim.name": OPTIMIZERS, ...}``: a field path and its valid
        names (a ``Registry`` or any iterable of strings).
      positive: field paths that must be > 0.
      non_negative: field paths that must be >= 0.
      skip: field paths (or whole sections) not to check: the fields a run
        does not read, whose values do not matter.

    Raises:
      ConfigError: naming the field, the bad value and the valid choices.
    """
    skip = tuple(skip)

    def skipped(path: str) -> bool:
        return any(path == s or path.startswith(s + ".") for s in skip)

    for path, valid in (choices or {}).items():
        if skipped(path):
            continue
        value = get_field(config, path)
        names = valid.names() if isinstance(valid, Registry) else sorted(valid)
        if value not in names:
            raise ConfigError(f"--config.{path}={value!r} is not valid; "
                              f"valid choices: {', '.join(names)}")
    for paths, ok, word in ((positive, lambda v: v > 0, "positive"),
                            (non_negative, lambda v: v >= 0, "non-negative")):
        for path in paths:
            if skipped(path):
                continue
            value = get_field(config, path)
            if not ok(value):
                raise ConfigError(f"--config.{path}={value!r} must be {word}")


def check_splits(config: ml_collections.ConfigDict,
                 fields: Iterable[str] = ("train_split", "test_split")) -> None:
    """Raises ``ConfigError`` when a ``--config.data.<field>`` split string does not parse."""
    for field in fields:
        try:
            parse_split(config.data[field])
        except ValueError as e:
            raise ConfigError(f"--config.data.{field}: {e}") from None


def check_data_dir(config: ml_collections.ConfigDict) -> None:
    """Raises ``ConfigError`` when ``--config.data.data_dir`` is set but is not a directory
    (empty: the data set's default places)."""
    data_dir = config.data.data_dir
    if data_dir and not os.path.isdir(data_dir):
        raise ConfigError(f"--config.data.data_dir={data_dir!r} is not a directory")


def load_config_file(spec: str) -> ml_collections.ConfigDict:
    """The config a ``--config`` value names, without command-line overrides.

    ``spec`` is ``path/to/config.py`` or ``path/to/config.py:argument`` (passed
    to ``get_config(argument)``, as ``ml_collections.config_flags`` does).
    """
    path, _, argument = spec.partition(":")
    module_spec = importlib.util.spec_from_file_location("_experiment_config", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.get_config(argument) if argument else module.get_config()
