"""What every benchmark shares: interleaved timing, paired ratios, a quiet-machine rule, one writer.

Timing. ``time_rounds`` times every side of a comparison once per round, in
an order that changes from round to round (``round_orders``: a Williams
design, so that over each cycle of rounds every side takes every position,
and follows every other side, equally often). A change in the machine's load then hits all sides alike,
and ``paired_ratios`` divides the two sides' times *within* each round;
``spread`` reports a list as median [min, max]. Per round it also records
the CPU seconds this process used per wall second (``cpu_cores``): one
thread computing shows about 1, threads spin-waiting show more.

The quiet-machine rule (``QuietRule``). Timings taken while other processes
compete for the cores measure those processes as much as the code. A run is
**oversubscribed** when any of these holds:

1. the 1-minute load average at the start exceeds ``max_load_per_core``
   (default 1.0) times the cores: more runnable tasks than cores over
   the last minute;
2. other processes kept more than ``max_foreign_cores`` (default 0.25) cores
   busy during a short sample taken before the benchmark starts;
3. the same during the timed rounds.

"Other processes' CPU use" is the busy time of all the machine's CPUs in
``/proc/stat`` minus this process's own CPU time (``time.process_time``),
per wall second; where ``/proc/stat`` cannot be read only rule 1 applies.
Both measures are machine-wide, and so are the cores they are held
against (``os.cpu_count``), also when a benchmark pins itself to fewer.
``LoadGuard`` applies the rule: ratio benchmarks (``refuse=True``) stop on an
oversubscribed run with exit status ``EXIT_OVERSUBSCRIBED``, print why and
write nothing, unless ``--allow_busy`` is given, in which case the result
file says ``"oversubscribed": true`` and why. Benchmarks of absolute time or
of accuracy (``refuse=False``) always write, with the same record.

Results. ``write_result`` writes one JSON layout for every benchmark: name,
the command that made it, UTC date, git commit, the configuration, the
results, the load record and the machine (cores, platform, package
versions, the thread settings of XLA, OpenMP and torch).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
EXIT_OVERSUBSCRIBED = 3
CORE_PACKAGES = ("jax", "jaxlib", "flax", "optax", "distrax", "numpy")
# Environment variables that set how many threads XLA, OpenMP and BLAS use and how they wait.
THREAD_VARIABLES = ("XLA_FLAGS", "OMP_NUM_THREADS", "OMP_WAIT_POLICY", "KMP_BLOCKTIME",
                    "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TORCHINDUCTOR_COMPILE_THREADS")


def result_path(name: str) -> str:
    """``benchmarks/results/<name>.json``."""
    return os.path.join(RESULTS_DIR, f"{name}.json")


# ------------------------------------------------------------------------------ timing


def round_orders(names: Sequence[str], rounds: int) -> List[List[str]]:
    """The order of the sides in each round: the rows of a Williams design, cycled.

    For k sides the first row is ``0, 1, k-1, 2, k-2, ...`` and row r adds r
    (mod k); for odd k the reversed rows follow. Over each cycle (k rounds
    for even k, 2k for odd k) every side takes every position equally often
    and directly follows every other side equally often, so neither a
    position nor a predecessor's leftovers (caches, clock speed) favours a
    side. Two sides alternate: AB, BA, AB, ...
    """
    names = list(names)
    if len(set(names)) != len(names):
        raise ValueError(f"side names must be distinct, got {names}")
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    k = len(names)
    first = [0 if i == 0 else (i + 1) // 2 if i % 2 else k - i // 2 for i in range(k)]
    rows = [[(j + r) % k for j in first] for r in range(k)]
    if k % 2:
        rows += [row[::-1] for row in rows]
    return [[names[j] for j in rows[r % len(rows)]] for r in range(rounds)]


@dataclasses.dataclass
class Timings:
    """What ``time_rounds`` measured.

    Attributes:
      ms: side -> milliseconds per unit (step, call) in each round, in round order.
      cpu_cores: side -> this process's CPU seconds per wall second in each round.
      orders: the order the sides ran in, per round.
    """

    ms: Dict[str, List[float]]
    cpu_cores: Dict[str, List[float]]
    orders: List[List[str]]


def time_rounds(runs: Mapping[str, Callable[[], Any]], rounds: int, per: int = 1,
                clock: Callable[[], float] = time.perf_counter,
                cpu_clock: Callable[[], float] = time.process_time) -> Timings:
    """Times every ``run()`` once per round, in ``round_orders``; ``per`` units per call.

    Each ``run`` must block until its work is done (``jax.block_until_ready``)
    and be warm (compiled) already.
    """
    if per < 1:
        raise ValueError(f"per must be >= 1, got {per}")
    orders = round_orders(list(runs), rounds)
    ms: Dict[str, List[float]] = {name: [] for name in runs}
    cores: Dict[str, List[float]] = {name: [] for name in runs}
    for order in orders:
        for name in order:
            c0, t0 = cpu_clock(), clock()
            runs[name]()
            t1, c1 = clock(), cpu_clock()
            ms[name].append((t1 - t0) / per * 1e3)
            cores[name].append((c1 - c0) / (t1 - t0) if t1 > t0 else float("nan"))
    return Timings(ms, cores, orders)


def paired_ratios(ms: Mapping[str, Sequence[float]], numerator: str,
                  denominator: str) -> List[float]:
    """``ms[numerator][r] / ms[denominator][r]`` for every round r (> 1: the denominator is faster)."""
    a, b = ms[numerator], ms[denominator]
    if len(a) != len(b):
        raise ValueError(f"{numerator} has {len(a)} rounds, {denominator} {len(b)}: not paired")
    return [x / y for x, y in zip(a, b)]


def spread(values: Sequence[float]) -> Dict[str, float]:
    """``{"median", "min", "max", "rounds"}`` of ``values``."""
    if not values:
        raise ValueError("no values")
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "rounds": len(values)}


def format_spread(s: Mapping[str, float], digits: int = 3) -> str:
    return f"{s['median']:.{digits}f} [{s['min']:.{digits}f}, {s['max']:.{digits}f}]"


def measure_sides(row: Dict[str, Any], rounds: int, steps: int,
                  guard: Optional["LoadGuard"] = None, baseline: str = "gmjax") -> Dict[str, Any]:
    """Times the sides of one comparison and fills ``row`` with the results.

    ``row["runs"]`` (side -> ``run()``, popped) are warmed up twice each (``torch.compile``
    compiles on its second call), then timed by ``time_rounds`` (``steps`` units per call,
    inside ``guard.timed()`` when a guard is given). Adds ``ms_per_step`` and
    ``cpu_cores_used`` (side -> ``spread``), ``ratio_to_<baseline>`` (other side ->
    ``spread`` of the paired ratios side / baseline) and the round ``orders``; returns
    ``row``.
    """
    runs = row.pop("runs")
    for run in runs.values():
        run()
        run()
    with guard.timed() if guard is not None else contextlib.nullcontext():
        timings = time_rounds(runs, rounds, per=steps)
    row["ms_per_step"] = {name: spread(v) for name, v in timings.ms.items()}
    row["cpu_cores_used"] = {name: spread(v) for name, v in timings.cpu_cores.items()}
    row[f"ratio_to_{baseline}"] = {name: spread(paired_ratios(timings.ms, name, baseline))
                                   for name in runs if name != baseline}
    row["orders"] = timings.orders
    return row


def engine_runner(loss: Callable, params: Any, x: Any, steps: int,
                  lr: float = 1e-3) -> Callable[[], None]:
    """``run()``: ``steps`` gmjax engine train steps (``make_train_step`` with plain Adam at
    ``lr``, called with ``log=False`` as ``fit`` calls it between logging steps) of ``loss``
    on the fixed batch ``x``, on one device; the state carries over between calls."""
    import jax
    import optax

    from gmjax.training import TrainState, data_mesh, make_train_step, replicate, shard_batch

    mesh = data_mesh(1)
    opt = optax.adam(lr)
    holder = {"state": replicate(TrainState.create(params, opt, jax.random.PRNGKey(1)), mesh)}
    step = make_train_step(loss, opt, mesh)
    batch = shard_batch(x, mesh)

    def run() -> None:
        state = holder["state"]
        for _ in range(steps):
            state, _ = step(state, batch, log=False)
        jax.block_until_ready(state)
        holder["state"] = state

    return run


def print_rows(rows: Mapping[str, Mapping[str, Any]], show_ratios: bool,
               label: str = "model") -> None:
    """One line per (row, side) of ``measure_sides`` rows: parameters, ms per step, cores
    used and, when ``show_ratios`` (not for an oversubscribed run), the paired ratio."""
    print(f"{label:8s} {'side':14s} {'params':>7s} {'ms/step median [min, max]':>27s} "
          f"{'cores':>5s} {'ratio to gmjax, paired' if show_ratios else '':>26s}")
    for name, row in rows.items():
        for side, ms in row["ms_per_step"].items():
            ratio = row["ratio_to_gmjax"].get(side) if show_ratios else None
            print(f"{name:8s} {side:14s} {row['parameters'][side]:7d} "
                  f"{format_spread(ms):>27s} {row['cpu_cores_used'][side]['median']:5.2f} "
                  f"{format_spread(ratio, 2) if ratio else '':>26s}")


def available_peers(requested: Sequence[str], valid: Sequence[str],
                    module_of: Callable[[str], str] = lambda peer: "torch") -> List[str]:
    """The peers of ``requested`` whose package (``module_of(peer)``) is installed; an
    unknown name raises ``ValueError`` naming the valid ones, a missing package is skipped
    with a note on stderr."""
    out = []
    for peer in requested:
        if peer not in valid:
            raise ValueError(f"unknown peer {peer!r}; valid choices: {', '.join(valid)}")
        module = module_of(peer)
        if importlib.util.find_spec(module) is None:
            print(f"skipping {peer}: {module} is not installed", file=sys.stderr)
            continue
        out.append(peer)
    return out


# ------------------------------------------------------------------------------ machine load


def usable_cores() -> List[int]:
    """The CPUs this process may run on (its affinity)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def cpu_seconds(cpus: Optional[Sequence[int]] = None,
                stat: str = "/proc/stat") -> Optional[Tuple[float, float]]:
    """``(busy, total)`` CPU seconds so far of ``cpus`` (None: all) from ``/proc/stat``.

    None where the file cannot be read.

    Busy is everything but idle and iowait (user, nice, system, irq, softirq, steal).
    """
    try:
        with open(stat) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    wanted = None if cpus is None else set(cpus)
    busy = total = 0
    for line in lines:
        fields = line.split()
        if not fields or not fields[0].startswith("cpu") or not fields[0][3:].isdigit():
            continue
        if wanted is not None and int(fields[0][3:]) not in wanted:
            continue
        ticks = [int(v) for v in fields[1:9]]
        idle = ticks[3] + ticks[4]
        total += sum(ticks)
        busy += sum(ticks) - idle
    if total == 0:
        return None
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    return busy / tick, total / tick


class ForeignCpu:
    """Other processes' CPU use over a window, in cores: ``(busy - own) / wall``.

    ``start()``, then ``stop()`` (any number of windows accumulate); ``cores``
    is None where ``/proc/stat`` cannot be read. ``cpus``: which CPUs count
    (None: all of the machine's).
    """

    def __init__(self, cpus: Optional[Sequence[int]] = None):
        self.cpus = None if cpus is None else list(cpus)
        self.busy = self.own = self.wall = 0.0
        self.readable = True
        self._start = None

    def start(self) -> None:
        self._start = (cpu_seconds(self.cpus), time.process_time(), time.perf_counter())

    def stop(self) -> None:
        system0, own0, wall0 = self._start
        system1, own1, wall1 = cpu_seconds(self.cpus), time.process_time(), time.perf_counter()
        if system0 is None or system1 is None:
            self.readable = False
        else:
            self.busy += system1[0] - system0[0]
        self.own += own1 - own0
        self.wall += wall1 - wall0

    @property
    def cores(self) -> Optional[float]:
        if not self.readable or self.wall <= 0:
            return None
        return max(0.0, self.busy - self.own) / self.wall


def sample_foreign_cores(seconds: float = 2.0) -> Optional[float]:
    """Other processes' CPU use, in cores, while this process sleeps for ``seconds``."""
    window = ForeignCpu()
    window.start()
    time.sleep(seconds)
    window.stop()
    return window.cores


@dataclasses.dataclass(frozen=True)
class QuietRule:
    """When a run counts as oversubscribed (see the module docstring)."""

    max_load_per_core: float = 1.0
    max_foreign_cores: float = 0.25

    def reasons(self, cores: int, load_before: float, foreign_before: Optional[float],
                foreign_during: Optional[float] = None) -> List[str]:
        """Why the run is oversubscribed; empty when it is not."""
        out = []
        if load_before > self.max_load_per_core * cores:
            out.append(f"1-minute load average {load_before:.2f} at the start exceeds "
                       f"{self.max_load_per_core:g} x {cores} cores")
        for when, value in (("before the run", foreign_before),
                            ("during the timed rounds", foreign_during)):
            if value is not None and value > self.max_foreign_cores:
                out.append(f"other processes used {value:.2f} cores {when} "
                           f"(limit {self.max_foreign_cores:g})")
        return out


class LoadGuard:
    """Applies ``QuietRule`` around a benchmark and records the machine's load.

    ``before()`` at the start (stops the program when ``refuse`` and the
    machine is already busy, unless ``allow_busy``), ``with guard.timed():``
    around the timed rounds, ``finish()`` at the end: True when a result may
    be written. ``record()`` is the ``load`` block of the result file.
    """

    def __init__(self, allow_busy: bool = False, refuse: bool = True,
                 rule: QuietRule = QuietRule(), sample_seconds: float = 2.0):
        self.allow_busy, self.refuse, self.rule = allow_busy, refuse, rule
        self.sample_seconds = sample_seconds
        self.cores = os.cpu_count() or 1
        self.load_before: Optional[Tuple[float, float, float]] = None
        self.load_after: Optional[Tuple[float, float, float]] = None
        self.foreign_before: Optional[float] = None
        self.during = ForeignCpu()
        self.timed_windows = 0

    @classmethod
    def from_args(cls, args: argparse.Namespace, refuse: bool = True) -> "LoadGuard":
        return cls(allow_busy=args.allow_busy, refuse=refuse,
                   rule=QuietRule(args.max_load_per_core, args.max_foreign_cores))

    def reasons(self) -> List[str]:
        during = self.during.cores if self.timed_windows else None
        return self.rule.reasons(self.cores, self.load_before[0], self.foreign_before, during)

    def before(self) -> None:
        self.load_before = os.getloadavg()
        self.foreign_before = sample_foreign_cores(self.sample_seconds)
        self._stop_if_busy("before the run")

    @contextlib.contextmanager
    def timed(self) -> Iterator[None]:
        self.during.start()
        try:
            yield
        finally:
            self.during.stop()
            self.timed_windows += 1

    def finish(self) -> bool:
        self.load_after = os.getloadavg()
        return self._stop_if_busy("after the run", exit_now=False)

    def _stop_if_busy(self, when: str, exit_now: bool = True) -> bool:
        reasons = self.reasons()
        if not reasons:
            return True
        lines = "\n  ".join(reasons)
        if not self.refuse or self.allow_busy:
            print(f"warning: oversubscribed ({when}):\n  {lines}\n  the result file marks it",
                  file=sys.stderr)
            return True
        print(f"oversubscribed ({when}): no result reported.\n  {lines}\n  Other processes "
              f"share the cores, so the timings would say as much about them as about the "
              f"code. Rerun on a quiet machine, or pass --allow_busy to write a result "
              f"marked oversubscribed.", file=sys.stderr)
        if exit_now:
            sys.exit(EXIT_OVERSUBSCRIBED)
        return False

    def record(self) -> Dict[str, Any]:
        reasons = self.reasons() if self.load_before is not None else []
        return {
            "oversubscribed": bool(reasons), "reasons": reasons, "allow_busy": self.allow_busy,
            "rule": dataclasses.asdict(self.rule), "cores": self.cores,
            "load_average_1_5_15_before": self.load_before,
            "load_average_1_5_15_after": self.load_after,
            "foreign_cores_before": self.foreign_before,
            "foreign_cores_during": self.during.cores if self.timed_windows else None,
            "own_cores_during": (self.during.own / self.during.wall
                                 if self.during.wall > 0 else None),
        }


def add_load_args(parser: argparse.ArgumentParser) -> None:
    """``--allow_busy``, ``--max_load_per_core``, ``--max_foreign_cores``."""
    rule = QuietRule()
    parser.add_argument("--allow_busy", action="store_true",
                        help="report and write a result from an oversubscribed run, marked so")
    parser.add_argument("--max_load_per_core", type=float, default=rule.max_load_per_core,
                        help="oversubscribed above this 1-minute load average per core")
    parser.add_argument("--max_foreign_cores", type=float, default=rule.max_foreign_cores,
                        help="oversubscribed when other processes use more cores than this")


# ------------------------------------------------------------------------------ results


def package_versions(packages: Sequence[str]) -> Dict[str, Optional[str]]:
    """Installed version of each package (None where it is not installed)."""
    out = {}
    for name in packages:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def thread_settings() -> Dict[str, Any]:
    """The environment variables that set thread counts, and torch's own counts if loaded."""
    out: Dict[str, Any] = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    torch = sys.modules.get("torch")
    if torch is not None:
        out["torch_num_threads"] = torch.get_num_threads()
        out["torch_num_interop_threads"] = torch.get_num_interop_threads()
    return out


def machine_info(packages: Sequence[str] = ()) -> Dict[str, Any]:
    """Cores, platform, Python and package versions, thread settings, JAX's devices."""
    info: Dict[str, Any] = {
        "cpu_count": os.cpu_count(), "affinity": usable_cores(),
        "platform": platform.platform(), "machine": platform.machine(),
        "processor": platform.processor(), "python": platform.python_version(),
        "versions": package_versions(tuple(CORE_PACKAGES) + tuple(packages)),
        "threads": thread_settings(),
    }
    jax = sys.modules.get("jax")
    if jax is not None:
        info["jax_backend"] = jax.default_backend()
        info["jax_devices"] = [str(d) for d in jax.devices()]
    return info


def git_state() -> Dict[str, Any]:
    """The repository's commit and whether the work tree has changes (read-only git calls)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def git(*args: str) -> Optional[str]:
        try:
            return subprocess.run(("git", *args), cwd=root, capture_output=True, text=True,
                                  check=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"),
            "dirty": None if status is None else bool(status)}


def display_path(path: str) -> str:
    """``path`` relative to the repository root when it lies inside it, else absolute."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.abspath(path)
    return os.path.relpath(path, root) if path.startswith(root + os.sep) else path


def command_line(module: str, argv: Optional[Sequence[str]] = None) -> str:
    """``python3 -m <module> <args>``: the command that reproduces this run."""
    argv = sys.argv[1:] if argv is None else argv
    return " ".join(["python3", "-m", module, *map(shlex.quote, argv)])


def write_result(path: str, benchmark: str, config: Mapping[str, Any], results: Any, *,
                 description: str = "", load: Optional[Mapping[str, Any]] = None,
                 packages: Sequence[str] = (), argv: Optional[Sequence[str]] = None,
                 **extra: Any) -> str:
    """Writes the benchmark's result file and returns its path."""
    record = {
        "benchmark": benchmark, "description": description,
        "command": command_line(f"benchmarks.{benchmark}", argv),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git": git_state(), "config": dict(config), "results": results, **extra,
        "load": dict(load) if load is not None else None,
        "machine": machine_info(packages),
    }
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(record, f, indent=2, default=_jsonable)
        f.write("\n")
    print(f"wrote {path}")
    return path


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy / jax scalars and arrays
        return value.tolist()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"not JSON-serializable: {type(value).__name__}")
