"""Every flow gmjax has, by name: ``FLOWS.layers`` and ``FLOWS.recipes``.

A **layer** is one bijector whose parameters a Flax module owns.
``FLOWS.layers.get(name)`` returns a ``LayerSpec``: ``build(event_shape, index,
**options) -> FlowLayer`` makes the ``index``-th layer of a stack (layers
alternate masks or orders by index), and ``event_rank`` says which examples
the layer takes (1: vectors ``[d]``, 3: images ``[h, w, c]``).

A **recipe** is a whole ``Flow`` as a paper describes it (RealNVP, MAF,
Glow, ...): a stack of layers over a standard normal base, data side first.
``FLOWS.recipes.get(name)`` returns a ``RecipeSpec``: ``build(event_shape,
**options) -> Flow``. Configs name recipes (``model.name``), and
``gmjax.models.flow.build_flow`` builds them from the config's ``model`` block.

The two namespaces share names where a paper's flow is a stack of one layer
kind: the ``maf`` recipe is eight ``maf`` layers.

    from gmjax.flows import FLOWS, build_layer, build_recipe

    print(FLOWS.describe())  # every layer and recipe, one line each
    flow = build_recipe("realnvp", (2,), num_layers=4)
    layer = build_layer("planar", (2,), index=0)
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable, Optional, Tuple

from gmjax.flows.base import Flow, FlowLayer
from gmjax.registry import Registry


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    build: Callable[..., FlowLayer]  # (event_shape, index, **options) -> FlowLayer
    event_rank: int
    identity_at_init: bool = False  # the layer promises f = id right after init
    keeps_shape: bool = True  # False for squeeze, which only lives inside a multi-scale flow
    # Inverse and log-det hold up to a solver's accuracy (continuous flows): the property suite
    # loosens its tolerance and differentiates in reverse mode (diffrax solves are custom_vjp).
    approximate: bool = False


@dataclasses.dataclass(frozen=True)
class RecipeSpec:
    build: Callable[..., Flow]  # (event_shape, **options) -> Flow
    event_rank: int


@dataclasses.dataclass(frozen=True)
class FlowRegistry:
    """The flow layers and the flow recipes, each a ``Registry`` of its own."""

    layers: Registry[LayerSpec]
    recipes: Registry[RecipeSpec]

    def layer_names(self, event_rank: Optional[int] = None) -> list[str]:
        """Layer names, all or those taking events of ``event_rank``."""
        return [n for n in self.layers.names()
                if event_rank is None or self.layers.get(n).event_rank == event_rank]

    def recipe_names(self, event_rank: Optional[int] = None) -> list[str]:
        """Recipe names, all or those taking events of ``event_rank`` (the ``model.name``
        choices of a script: 1 for vectors, 3 for images)."""
        return [n for n in self.recipes.names()
                if event_rank is None or self.recipes.get(n).event_rank == event_rank]

    def describe(self) -> str:
        """One line per layer and recipe: name, event rank and the first docstring line
        of its builder (or of the builder's module)."""
        lines = []
        for kind, registry in (("layer", self.layers), ("recipe", self.recipes)):
            for name in registry.names():
                spec = registry.get(name)
                doc = (inspect.getdoc(spec.build)
                       or inspect.getdoc(inspect.getmodule(spec.build)) or "").split("\n")[0]
                lines.append(f"{kind:6s}  {name:32s} rank {spec.event_rank}  {doc}")
        return "\n".join(lines)


FLOWS = FlowRegistry(layers=Registry("flow layer"), recipes=Registry("flow recipe"))


def register_layer(name: str, event_rank: int, identity_at_init: bool = False,
                   keeps_shape: bool = True, approximate: bool = False):
    """Decorator registering ``build(event_shape, index, **options) -> FlowLayer``."""

    def add(build: Callable[..., FlowLayer]) -> Callable[..., FlowLayer]:
        FLOWS.layers.register(name)(LayerSpec(build, event_rank, identity_at_init, keeps_shape,
                                              approximate))
        return build

    return add


def register_recipe(name: str, event_rank: int):
    """Decorator registering ``build(event_shape, **options) -> Flow``.

    Every option needs a default, so that a config block holding only some of
    them (or those of other recipes) still builds.
    """

    def add(build: Callable[..., Flow]) -> Callable[..., Flow]:
        FLOWS.recipes.register(name)(RecipeSpec(build, event_rank))
        return build

    return add


def _check_rank(kind: str, name: str, event_rank: int, event_shape: Tuple[int, ...]) -> None:
    if len(event_shape) != event_rank:
        raise ValueError(f"flow {kind} {name!r} takes events of rank {event_rank}, "
                         f"got shape {tuple(event_shape)}")


def build_layer(name: str, event_shape: Tuple[int, ...], index: int = 0,
                **options: Any) -> FlowLayer:
    """The ``index``-th layer of kind ``name`` on events of ``event_shape``."""
    spec = FLOWS.layers.get(name)
    _check_rank("layer", name, spec.event_rank, event_shape)
    return spec.build(tuple(event_shape), index, **options)


def build_recipe(name: str, event_shape: Tuple[int, ...], **options: Any) -> Flow:
    """The recipe ``name`` on events of ``event_shape``, with ``options`` as keyword arguments."""
    spec = FLOWS.recipes.get(name)
    _check_rank("recipe", name, spec.event_rank, event_shape)
    return spec.build(tuple(event_shape), **options)


def stack(layer: str, event_shape: Tuple[int, ...], num_layers: int, **options: Any) -> Flow:
    """``num_layers`` layers of one registered kind (alternating masks/orders by index)."""
    layers = [build_layer(layer, event_shape, i, **options) for i in range(num_layers)]
    return Flow(layers=layers, event_shape=tuple(event_shape))
