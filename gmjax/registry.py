"""Name -> factory registries, so a config string picks a component.

Every family keeps one registry per kind of component (optimizers, data sets,
flow layers, GAN losses, ...). Asking for a name that is not registered fails
with a message that lists every valid choice, which is what a user who typed
``--config.optim.name=adamm`` needs to see. ``check_options`` does the same for
the keyword options a config passes to a registered factory.
"""

from __future__ import annotations

import inspect
from typing import Callable, Dict, Generic, Iterable, Iterator, List, Mapping, Optional, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """A mapping from names to objects (usually factories) of one kind."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: Dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@REGISTRY.register("name")`` adds the decorated object."""

        def add(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        """Returns the entry for ``name`` or raises a ``ValueError`` naming the valid ones."""
        try:
            return self._entries[name]
        except KeyError:
            raise ValueError(
                f"unknown {self.kind} {name!r}; valid choices: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)


def option_names(factory: Callable[..., object], fixed: Iterable[str] = ()) -> Optional[List[str]]:
    """The keyword options ``factory`` takes beyond the ``fixed`` arguments its caller
    passes itself, in order; ``None`` when it takes any (``**kwargs``)."""
    fixed = set(fixed)
    params = inspect.signature(factory).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in fixed]


def check_options(factory: Callable[..., object], options: Mapping[str, object], what: str,
                  fixed: Iterable[str] = ()) -> None:
    """Raises ``ValueError`` when ``factory`` cannot take ``options`` as keyword arguments:
    an option it does not know or a required one missing, naming ``what`` (``"target
    'circle'"``) and the options it takes. ``fixed``: the arguments the caller passes itself.
    """
    fixed = set(fixed)
    known = option_names(factory, fixed)
    params = inspect.signature(factory).parameters.values()
    required = [p.name for p in params if p.default is p.empty and p.name not in fixed
                and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = [] if known is None else sorted(set(options) - set(known))
    missing = [name for name in required if name not in options]
    if not unknown and not missing:
        return
    takes = f"takes the options {', '.join(known)}" if known else "takes no options"
    problems = ([f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}"]
                if unknown else []) + ([f"missing {', '.join(missing)}"] if missing else [])
    raise ValueError(f"{what} {takes}; {'; '.join(problems)}")
