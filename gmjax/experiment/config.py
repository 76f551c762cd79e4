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
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Union

import ml_collections

from gmjax.data import parse_split
from gmjax.registry import Registry

# The valid names of a choice field: a registry, a function returning the names, or the
# names themselves. Registries and functions are asked when the config is checked, so a
# name registered after the script was imported is valid.
ChoiceSource = Union[Registry, Callable[[], Iterable[str]], Iterable[str]]
Choices = Mapping[str, ChoiceSource]


class ConfigError(ValueError):
    """A config field is unknown, mistyped, outside its valid choices, or not read."""


def get_field(config: ml_collections.ConfigDict, path: str) -> Any:
    """The value at a dotted ``path`` (``"optim.lr"``)."""
    node = config
    for part in path.split("."):
        node = node[part]
    return node


def choice_names(valid: ChoiceSource) -> List[str]:
    """The names ``valid`` allows now: a ``Registry``'s names, what a function returns, or
    the given strings (in their order)."""
    if isinstance(valid, Registry):
        return valid.names()
    if callable(valid):
        return list(valid())
    return list(valid)


def section_options(config: ml_collections.ConfigDict, path: str) -> Dict[str, Any]:
    """The fields of the section at ``path`` (``"data.options"``) as keyword options.

    Each field is read by name, so the config contract counts them as read
    (nested sections become dicts, read the same way). A config without the
    section has no options: ``{}``.

    Raises:
      ConfigError: when ``path`` is a field, not a section.
    """
    if not has_field(config, path):
        return {}
    section = get_field(config, path)
    if not isinstance(section, ml_collections.ConfigDict):
        raise ConfigError(f"--config.{path}={section!r} must be a section of options "
                          f"(config.{path}.NAME = VALUE in a config file)")

    def plain(node: Any) -> Any:
        if isinstance(node, ml_collections.ConfigDict):
            return {key: plain(node[key]) for key in node.keys()}
        return node

    return plain(section)


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
        names (a ``Registry``, a function returning names, or an iterable of
        strings; see ``choice_names``), asked for now.
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
        names = sorted(choice_names(valid))
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


def check_types(config: ml_collections.ConfigDict,
                defaults: ml_collections.ConfigDict) -> None:
    """Raises ``ConfigError`` when a field holds a value of another type than in ``defaults``
    (the config file): an int where a float is expected is fine, as is anything where
    the file has None; a tuple or list must hold elements of the file's element type.

    The command line checks the type of a scalar override, not the elements of a
    tuple (``--config.model.hidden=abc`` parses as ``('abc',)``); this catches those.
    """
    expected = leaf_fields(defaults)
    for path, value in leaf_fields(config).items():
        if path not in expected or _same_kind(value, expected[path]):
            continue
        default = expected[path]
        raise ConfigError(f"--config.{path}={value!r} is not {kind_of(default)}; the config file "
                          f"has {default!r}")


def _same_kind(value: Any, default: Any) -> bool:
    if default is None or value is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, (tuple, list)):
        if not isinstance(value, (tuple, list)):
            return False
        kinds = {type(d) for d in default}
        return len(kinds) != 1 or all(_same_kind(v, default[0]) for v in value)
    return isinstance(value, type(default))


def kind_of(default: Any) -> str:
    """``"an int"``, ``"a tuple of ints"``: the type of a config value, in words."""
    if isinstance(default, (tuple, list)):
        kinds = {type(d) for d in default}
        inner = f" of {type(default[0]).__name__}s" if len(kinds) == 1 else ""
        return f"a {type(default).__name__}{inner}"
    name = type(default).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


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


def has_field(config: ml_collections.ConfigDict, path: str) -> bool:
    """Whether ``config`` has a field (or section) at the dotted ``path``; the field itself
    is not read (``track_reads`` does not count it)."""
    *sections, leaf = path.split(".")
    node = config
    for part in sections:
        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
            return False
        node = node[part]
    return isinstance(node, ml_collections.ConfigDict) and leaf in node


def load_config_file(spec: str) -> ml_collections.ConfigDict:
    """The config a ``--config`` value names, without command-line overrides.

    ``spec`` is ``path/to/config.py`` or ``path/to/config.py:argument`` (passed
    to ``get_config(argument)``, as ``ml_collections.config_flags`` does).

    Raises:
      ConfigError: in one line, when the file does not exist, is not a Python
        file defining ``get_config()``, or fails to load (the exception and
        the line of the config file where it was raised).
    """
    path, _, argument = spec.partition(":")
    if not os.path.exists(path):
        raise ConfigError(f"--config={spec}: no such file")
    if not os.path.isfile(path):
        raise ConfigError(f"--config={spec}: not a file but a directory")
    try:
        module_spec = importlib.util.spec_from_file_location("_experiment_config", path)
        if module_spec is None or module_spec.loader is None:
            raise ConfigError(f"--config={spec}: not a Python file (a config file is a .py file "
                              f"defining get_config())")
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        get_config = getattr(module, "get_config", None)
        if not callable(get_config):
            raise ConfigError(f"--config={spec}: the file defines no get_config() function")
        config = get_config(argument) if argument else get_config()
    except ConfigError:
        raise
    except Exception as e:  # a config file is user code: report its failure in one line
        raise ConfigError(f"--config={spec} failed to load: {_where(e, path)}"
                          f"{type(e).__name__}: {e}".replace("\n", " ")) from None
    if not isinstance(config, ml_collections.ConfigDict):
        raise ConfigError(f"--config={spec}: get_config() returned a {type(config).__name__}, "
                          f"not an ml_collections.ConfigDict")
    return config


def _where(error: BaseException, path: str) -> str:
    """``"line N: "`` of the deepest frame of ``error`` in the file ``path`` ("" if none)."""
    if isinstance(error, SyntaxError) and error.lineno:
        return f"line {error.lineno}: "
    line = None
    tb = error.__traceback__
    while tb is not None:
        if os.path.abspath(tb.tb_frame.f_code.co_filename) == os.path.abspath(path):
            line = tb.tb_lineno
        tb = tb.tb_next
    return f"line {line}: " if line else ""
