"""Imports inside gmjax/ flow one way, read from the source with ``ast`` (nothing is imported).

The layers, lowest first (docs/design.md, "Layers"):

    bottom (gmjax/*.py: registry and shared utilities)
      < data, targets, nets < flows < objectives < models < samplers, training
      < experiment

A module may import its own subpackage and any lower layer, never a higher
one or a peer of its own layer, with one exception: samplers may import
training (TemperFlow is trained by the shared train steps), training never
imports samplers. ``metrics`` and ``viz`` depend on arrays only: they import
nothing from gmjax but the bottom modules, and only models and the layers
above them use them, with one exception: a target scores samples against its
own modes with ``metrics`` (``Target.quality_metrics``). Training code (data,
nets, flows, objectives) never depends on evaluation code. Nothing in gmjax imports the ``experiments`` scripts
or names their paths outside docstrings.
"""

from __future__ import annotations

import ast
import os
from typing import Iterator, List, Optional, Tuple

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "gmjax")

BOTTOM = "<bottom>"
RANKS = {
    BOTTOM: 0,
    "data": 1, "targets": 1, "nets": 1,
    "flows": 2,
    "objectives": 3,
    "models": 4,
    "samplers": 5, "training": 5,
    "experiment": 6,
}
ARRAYS_ONLY = ("metrics", "viz")  # import bottom only; imported from models upwards
ARRAYS_ONLY_USERS_FROM = RANKS["models"]
ARRAYS_ONLY_EXTRA_USERS = {("targets", "metrics")}
ALLOWED_PEERS = {("samplers", "training")}  # (importer, imported) within one rank


def modules() -> List[Tuple[str, str]]:
    """(dotted module name, path) of every .py file under gmjax/."""
    found = []
    for directory, _, files in os.walk(PACKAGE):
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            path = os.path.join(directory, name)
            parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found.append((".".join(parts), path))
    return sorted(found)


def layer(module: str) -> str:
    """The layer of a dotted gmjax module: its subpackage, or BOTTOM for gmjax/*.py."""
    parts = module.split(".")
    if len(parts) == 1:
        return BOTTOM  # gmjax itself
    if os.path.isdir(os.path.join(PACKAGE, parts[1])):
        return parts[1]
    return BOTTOM


def imports(module: str, path: str) -> Iterator[Tuple[int, str]]:
    """(line, absolute dotted name) of every import in the file, at any depth."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    is_package = os.path.basename(path) == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".")
                if not is_package:
                    base = base[:-1]
                base = base[:len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            yield node.lineno, name
            for alias in node.names:  # ``from gmjax import metrics`` imports gmjax.metrics
                yield node.lineno, f"{name}.{alias.name}"


def violation(importer: str, imported: str) -> Optional[str]:
    """Why ``importer`` must not import ``imported`` (both dotted), or None when it may."""
    top = imported.split(".")[0]
    if top == "experiments":
        return "gmjax must not import the experiment scripts"
    if top != "gmjax":
        return None
    path = os.path.join(ROOT, *imported.split("."))
    if not (os.path.isdir(path) or os.path.isfile(path + ".py")):
        return None  # ``from gmjax.x import name`` with name an attribute: gmjax.x is checked
    source, target = layer(importer), layer(imported)
    if source == target:
        return None
    for name in (source, target):
        if name not in RANKS and name not in ARRAYS_ONLY:
            return f"gmjax.{name} has no place in the layer order; add it to RANKS"
    if source in ARRAYS_ONLY:
        return None if target == BOTTOM else f"{source} may import only the bottom modules"
    if target in ARRAYS_ONLY:
        if RANKS[source] >= ARRAYS_ONLY_USERS_FROM or (source, target) in ARRAYS_ONLY_EXTRA_USERS:
            return None
        return f"{target} is for models and above; {source} must not depend on it"
    if RANKS[target] < RANKS[source] or (source, target) in ALLOWED_PEERS:
        return None
    relation = "a peer" if RANKS[target] == RANKS[source] else "above"
    return f"{target} is {relation} of {source}"


def offending_imports() -> List[str]:
    found = []
    for module, path in modules():
        for line, imported in imports(module, path):
            why = violation(module, imported)
            if why:
                found.append(f"{os.path.relpath(path, ROOT)}:{line}: {module} imports "
                             f"{imported} ({why})")
    return sorted(set(found))


def test_imports_go_only_downwards():
    found = offending_imports()
    for line in found:
        print(line)
    assert not found, "wrong-way imports:\n" + "\n".join(found)


def experiments_paths() -> List[str]:
    """String constants (docstrings aside) that name the experiments/ scripts or folder."""
    found = []
    for _, path in modules():
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        docstrings = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body
                if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value,
                                                                         ast.Constant):
                    docstrings.add(id(body[0].value))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and id(node) not in docstrings
                    and ("experiments/" in node.value or node.value == "experiments")):
                found.append(f"{os.path.relpath(path, ROOT)}:{node.lineno}: {node.value!r}")
    return found


def test_no_code_names_the_experiments_folder():
    found = experiments_paths()
    for line in found:
        print(line)
    assert not found, "gmjax code naming experiments/ paths:\n" + "\n".join(found)


# --- the checker itself -----------------------------------------------------------------


@pytest.mark.parametrize("importer, imported, allowed", [
    ("gmjax.flows.coupling", "gmjax.nets.mlp", True),
    ("gmjax.flows.coupling", "gmjax.registry", True),
    ("gmjax.models.gan.model", "gmjax.objectives.adversarial", True),
    ("gmjax.samplers.temperflow", "gmjax.training.step", True),
    ("gmjax.models.image_metrics", "gmjax.metrics", True),
    ("gmjax.metrics.kid", "gmjax.metrics.checks", True),
    ("gmjax.targets.latent_ebm", "gmjax.models.gan", False),
    ("gmjax.objectives.likelihood", "gmjax.metrics.likelihood", False),
    ("gmjax.training.loop", "gmjax.samplers.mcmc", False),
    ("gmjax.data.toy", "gmjax.targets.base", False),
    ("gmjax.metrics.modes", "gmjax.targets", False),
    ("gmjax.viz.images", "gmjax.metrics", False),
    ("gmjax.registry", "gmjax.data", False),
    ("gmjax.models.flow", "experiments.runner", False),
])
def test_the_rules_on_known_cases(importer, imported, allowed):
    assert (violation(importer, imported) is None) == allowed


def test_relative_imports_are_resolved(tmp_path):
    path = tmp_path / "__init__.py"
    path.write_text("from . import coupling\nfrom ..nets import mlp\n")
    names = [name for _, name in imports("gmjax.flows", str(path))]
    assert "gmjax.flows.coupling" in names and "gmjax.nets.mlp" in names
