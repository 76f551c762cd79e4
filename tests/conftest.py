"""Shared test set-up: the repository root on sys.path, fast XLA compiles, small helpers.

On the CPU, XLA compiles the test programs for speed of compilation, not of
the code: LLVM optimization level 0 and the older elemental fusion emitters
(``_FAST_COMPILE_FLAGS``). Most of the suite's time is compilation of small
programs that each run a few times; these flags cut it about fourfold and
leave the run times about as they were. The HLO is the same; results can
differ from the default build's in the last bits of a float, far below the
tolerances here. ``GMJAX_TEST_XLA_DEFAULTS=1`` keeps XLA's defaults, and a flag
named in XLA_FLAGS is left as given. The flags reach the experiment scripts the
tests start in subprocesses with the environment. Both are flags of the XLA in
the pinned jaxlib (0.10); an XLA without them refuses to start, and then
``GMJAX_TEST_XLA_DEFAULTS=1`` is the way to run the suite.

Compile statistics (opt-in): ``GMJAX_COMPILE_STATS=stats.json python3 -m pytest``
counts the XLA compilations (and their seconds) each test file causes, through
``jax.monitoring`` duration events, and writes them to ``stats.json`` plus a
readable table ``stats.json.txt`` at the end of the run. Under pytest-xdist each
worker writes its own part and the controller merges them. Compilations inside
subprocesses (the CLI and multi-device tests) are not counted.
"""

import collections
import importlib.util
import json
import os
import sys
import time

import pytest

_FAST_COMPILE_FLAGS = {"xla_backend_optimization_level": "0",
                       "xla_cpu_use_fusion_emitters": "false"}


def _cpu_only() -> bool:
    """Whether jax can only use the CPU here (the flags would slow GPU kernels)."""
    platforms = os.environ.get("JAX_PLATFORMS", "")
    if platforms:
        return platforms == "cpu"
    return not any(importlib.util.find_spec(name) for name in
                   ("jax_cuda12_plugin", "jax_cuda13_plugin", "jax_rocm60_plugin", "libtpu"))


# Before jax creates its backend, which reads XLA_FLAGS once.
if not os.environ.get("GMJAX_TEST_XLA_DEFAULTS") and _cpu_only():
    _given = os.environ.get("XLA_FLAGS", "")
    os.environ["XLA_FLAGS"] = " ".join(
        [_given] + [f"--{name}={value}" for name, value in _FAST_COMPILE_FLAGS.items()
                    if name not in _given]).strip()

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

_STATS_PATH = os.environ.get("GMJAX_COMPILE_STATS")

# jax.monitoring duration events (jax/_src/dispatch.py and compiler.py).
_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_EVENTS = {
    _COMPILE_EVENT: "compile",
    "/jax/core/compile/jaxpr_trace_duration": "trace",
    "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower",
    "/jax/compilation_cache/cache_retrieval_time_sec": "cache_hit",
}


@pytest.fixture(autouse=True)
def stop_handlers_unchanged():
    """A test leaves SIGINT and SIGTERM with the handlers it found: ``fit`` swaps them while
    it trains, and a handler left behind would swallow the next Ctrl-C."""
    import signal

    signals = (signal.SIGINT, signal.SIGTERM)
    before = [signal.getsignal(s) for s in signals]
    yield
    after = [signal.getsignal(s) for s in signals]
    for signum, old, new in zip(signals, before, after):
        if new is not old:
            signal.signal(signum, old if old is not None else signal.SIG_DFL)
    assert after == before, f"signal handlers changed by the test: {before} -> {after}"


@pytest.fixture
def repo_root() -> str:
    return ROOT


class _CompileStats:
    """Per-test counts and seconds of jax trace / lower / compile events."""

    def __init__(self):
        self.current = "<collection>"
        self.cpu_start: list = []
        # nodeid -> kind -> [count, seconds]
        self.by_test = collections.defaultdict(
            lambda: collections.defaultdict(lambda: [0, 0.0]))
        self.wall = collections.defaultdict(float)
        # compiled function name -> [count, seconds]
        self.by_function = collections.defaultdict(lambda: [0, 0.0])

    def start_listener(self, event: str, value: float, **kwargs) -> None:
        if event == _COMPILE_EVENT:  # jax records the start time as a scalar
            self.cpu_start.append(time.process_time())

    def listener(self, event: str, duration: float, **kwargs) -> None:
        kind = _EVENTS.get(event)
        if kind is None:
            return
        entry = self.by_test[self.current][kind]
        entry[0] += 1
        entry[1] += float(duration)
        if event == _COMPILE_EVENT and self.cpu_start:
            cpu = self.by_test[self.current]["compile_cpu"]
            cpu[0] += 1
            cpu[1] += time.process_time() - self.cpu_start.pop()
        if kind == "compile":
            function = self.by_function[str(kwargs.get("fun_name", "?"))]
            function[0] += 1
            function[1] += float(duration)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        self.current = item.nodeid
        start = time.perf_counter()
        yield
        self.wall[item.nodeid] += time.perf_counter() - start
        self.current = "<between tests>"

    def as_json(self) -> dict:
        return {"tests": {test: {kind: list(v) for kind, v in kinds.items()}
                          for test, kinds in self.by_test.items()},
                "wall": dict(self.wall),
                "functions": {k: list(v) for k, v in self.by_function.items()}}


def _merge(parts: list[dict]) -> dict:
    tests: dict = {}
    wall: dict = {}
    functions: dict = {}
    for part in parts:
        for name, (count, secs) in part.get("functions", {}).items():
            old = functions.get(name, [0, 0.0])
            functions[name] = [old[0] + count, old[1] + secs]
        for test, kinds in part["tests"].items():
            slot = tests.setdefault(test, {})
            for kind, (count, secs) in kinds.items():
                old = slot.get(kind, [0, 0.0])
                slot[kind] = [old[0] + count, old[1] + secs]
        for test, secs in part["wall"].items():
            wall[test] = wall.get(test, 0.0) + secs
    by_file: dict = {}
    for test, kinds in tests.items():
        name = test.split("::")[0]
        slot = by_file.setdefault(name, {})
        for kind, (count, secs) in kinds.items():
            old = slot.get(kind, [0, 0.0])
            slot[kind] = [old[0] + count, old[1] + secs]
    for test, secs in wall.items():
        name = test.split("::")[0]
        by_file.setdefault(name, {})
        by_file[name]["wall"] = by_file[name].get("wall", 0.0) + secs
    total: dict = {}
    for kinds in by_file.values():
        for kind, value in kinds.items():
            if kind == "wall":
                total["wall"] = total.get("wall", 0.0) + value
                continue
            old = total.get(kind, [0, 0.0])
            total[kind] = [old[0] + value[0], old[1] + value[1]]
    return {"total": total, "files": by_file, "tests": tests, "wall": wall,
            "functions": functions}


def _table(merged: dict) -> str:
    def row(name, kinds):
        c = kinds.get("compile", [0, 0.0])
        cpu = kinds.get("compile_cpu", [0, 0.0])
        t = kinds.get("trace", [0, 0.0])
        h = kinds.get("cache_hit", [0, 0.0])
        return (f"{c[0]:6d} {c[1]:9.1f} {cpu[1]:8.1f} {t[0]:6d} {t[1]:8.1f} {h[0]:6d} "
                f"{kinds.get('wall', 0.0):8.1f}  {name}")
    lines = [f"{'comp':>6} {'comp_s':>9} {'cpu_s':>8} {'trace':>6} {'trace_s':>8} "
             f"{'hits':>6} {'wall_s':>8}  file"]
    files = sorted(merged["files"].items(),
                   key=lambda kv: -kv[1].get("compile", [0, 0.0])[0])
    lines += [row(name, kinds) for name, kinds in files]
    lines.append(row("TOTAL", merged["total"]))
    lines.append("")
    lines.append("top tests by compile count:")
    tests = sorted(merged["tests"].items(),
                   key=lambda kv: -kv[1].get("compile", [0, 0.0])[0])[:40]
    lines += [row(name, dict(kinds, wall=merged["wall"].get(name, 0.0)))
              for name, kinds in tests]
    lines.append("")
    lines.append("top compiled functions by seconds (count, seconds, name):")
    functions = sorted(merged["functions"].items(), key=lambda kv: -kv[1][1])[:40]
    lines += [f"{count:6d} {secs:9.1f}  {name}" for name, (count, secs) in functions]
    return "\n".join(lines) + "\n"


def pytest_configure(config):
    if not _STATS_PATH:
        return
    import jax.monitoring  # pylint: disable=import-outside-toplevel
    stats = _CompileStats()
    jax.monitoring.register_scalar_listener(stats.start_listener)
    jax.monitoring.register_event_duration_secs_listener(stats.listener)
    config.pluginmanager.register(stats, "gmjax_compile_stats")
    config._gmjax_compile_stats = stats  # pylint: disable=protected-access
    config._gmjax_compile_parts = []  # pylint: disable=protected-access


def pytest_sessionfinish(session):
    stats = getattr(session.config, "_gmjax_compile_stats", None)
    if stats is not None and hasattr(session.config, "workeroutput"):
        # An xdist worker: hand the counts to the controller.
        session.config.workeroutput["gmjax_compile_stats"] = json.dumps(
            stats.as_json())


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    parts = getattr(node.config, "_gmjax_compile_parts", None)
    output = getattr(node, "workeroutput", None) or {}
    if parts is not None and "gmjax_compile_stats" in output:
        parts.append(json.loads(output["gmjax_compile_stats"]))


def pytest_unconfigure(config):
    stats = getattr(config, "_gmjax_compile_stats", None)
    if stats is None or hasattr(config, "workeroutput"):
        return
    merged = _merge([stats.as_json()] + config._gmjax_compile_parts)  # pylint: disable=protected-access
    with open(_STATS_PATH, "w", encoding="utf-8") as f:
        json.dump(merged, f, indent=1)
    with open(_STATS_PATH + ".txt", "w", encoding="utf-8") as f:
        f.write(_table(merged))
