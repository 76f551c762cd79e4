"""The benchmark harness: interleaving, paired ratios, the quiet-machine rule, the writer.

Fake clocks and a fake ``/proc/stat`` make every number exact; the torch
tests (skipped without torch) check that the PyTorch peers of
``benchmarks.flows_vs_torch`` are gmjax's RealNVP: same parameter count, same
log-densities from the same parameters.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from benchmarks import harness

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------------------------------------ interleaving


def test_two_sides_alternate():
    assert harness.round_orders(["a", "b"], 5) == [
        ["a", "b"], ["b", "a"], ["a", "b"], ["b", "a"], ["a", "b"]]
    assert harness.round_orders(["a", "b", "c"], 6) == [
        list("abc"), list("bca"), list("cab"), list("cba"), list("acb"), list("bac")]


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6])
def test_every_side_takes_every_position_and_follows_every_side_equally_often(k):
    names = [f"s{i}" for i in range(k)]
    cycle = k if k % 2 == 0 else 2 * k
    orders = harness.round_orders(names, 2 * cycle)
    assert orders[:cycle] == orders[cycle:]
    orders = orders[:cycle]
    for order in orders:
        assert sorted(order) == names
    positions = collections.Counter((name, order.index(name)) for order in orders
                                    for name in names)
    assert set(positions.values()) == {cycle // k}
    assert len(positions) == k * k
    if k == 1:
        return
    follows = collections.Counter((a, b) for order in orders for a, b in zip(order, order[1:]))
    assert len(follows) == k * (k - 1)  # every ordered pair occurs
    assert len(set(follows.values())) == 1  # and equally often


def test_round_orders_rejects_duplicates_and_no_rounds():
    with pytest.raises(ValueError, match="distinct"):
        harness.round_orders(["a", "a"], 2)
    with pytest.raises(ValueError, match="rounds"):
        harness.round_orders(["a", "b"], 0)


class FakeMachine:
    """A clock that each run advances by its cost times the round's load factor."""

    def __init__(self, cost, load, cpu_share=1.0):
        self.now = self.cpu = 0.0
        self.cost, self.load, self.cpu_share = cost, load, cpu_share
        self.calls = []

    def run(self, name):
        def go():
            round_index = sum(1 for c in self.calls if c == name)
            seconds = self.cost[name] * self.load[round_index]
            self.now += seconds
            self.cpu += self.cpu_share * seconds
            self.calls.append(name)
        return go


def test_time_rounds_follows_the_orders_and_pairs_rounds_under_changing_load():
    load = [1.0, 3.0, 1.0, 5.0]  # the machine slows down and recovers between rounds
    fake = FakeMachine({"gmjax": 0.010, "peer": 0.020}, load, cpu_share=0.5)
    timings = harness.time_rounds({"gmjax": fake.run("gmjax"), "peer": fake.run("peer")},
                                  rounds=4, per=10, clock=lambda: fake.now,
                                  cpu_clock=lambda: fake.cpu)
    assert timings.orders == harness.round_orders(["gmjax", "peer"], 4)
    assert fake.calls == [name for order in timings.orders for name in order]
    np.testing.assert_allclose(timings.ms["gmjax"], [1.0 * f for f in load])  # 10 ms / 10
    np.testing.assert_allclose(timings.ms["peer"], [2.0 * f for f in load])
    np.testing.assert_allclose(timings.cpu_cores["peer"], 0.5)
    ratios = harness.paired_ratios(timings.ms, "peer", "gmjax")
    np.testing.assert_allclose(ratios, 2.0)  # exact in every round, whatever the load
    s = harness.spread(ratios)
    assert s["rounds"] == 4
    np.testing.assert_allclose([s["median"], s["min"], s["max"]], 2.0)


def test_spread_and_paired_ratio_statistics():
    ms = {"a": [2.0, 4.0, 9.0, 3.0, 10.0], "b": [1.0, 1.0, 3.0, 2.0, 2.0]}
    ratios = harness.paired_ratios(ms, "a", "b")
    assert ratios == [2.0, 4.0, 3.0, 1.5, 5.0]
    assert harness.spread(ratios) == {"median": 3.0, "min": 1.5, "max": 5.0, "rounds": 5}
    # The median of paired ratios is not the ratio of medians (4 / 2 = 2 here).
    with pytest.raises(ValueError, match="not paired"):
        harness.paired_ratios({"a": [1.0, 2.0], "b": [1.0]}, "a", "b")
    with pytest.raises(ValueError):
        harness.spread([])


# ------------------------------------------------------------------------------ quiet rule


@pytest.mark.parametrize("load, before, during, expected", [
    (0.5, 0.05, 0.10, []),
    (2.0, 0.25, 0.25, []),  # at the limits, not above
    (2.5, 0.05, 0.10, ["load average 2.50"]),
    (0.5, 0.80, 0.10, ["0.80 cores before the run"]),
    (0.5, 0.05, 1.20, ["1.20 cores during the timed rounds"]),
    (3.0, None, None, ["load average 3.00"]),  # /proc/stat unreadable: the load alone
    (7.4, 2.00, 1.60, ["load average 7.40", "2.00 cores before", "1.60 cores during"]),
])
def test_quiet_rule(load, before, during, expected):
    reasons = harness.QuietRule().reasons(2, load, before, during)
    assert len(reasons) == len(expected)
    for reason, fragment in zip(reasons, expected):
        assert fragment in reason


def write_stat(path, cpus):
    lines = ["cpu  0 0 0 0 0 0 0 0 0 0"]
    lines += [f"cpu{i} " + " ".join(map(str, ticks)) + " 0 0" for i, ticks in enumerate(cpus)]
    path.write_text("\n".join(lines + ["intr 1 2 3", "ctxt 5"]) + "\n")
    return str(path)


def test_cpu_seconds_counts_all_but_idle_and_iowait(tmp_path):
    tick = os.sysconf("SC_CLK_TCK")
    # user nice system idle iowait irq softirq steal
    stat = write_stat(tmp_path / "stat", [[100, 10, 20, 500, 30, 1, 2, 3],
                                          [50, 0, 10, 900, 0, 0, 0, 40]])
    busy, total = harness.cpu_seconds(None, stat)
    assert busy * tick == pytest.approx(136 + 100)
    assert total * tick == pytest.approx(666 + 1000)
    busy1, _ = harness.cpu_seconds([1], stat)
    assert busy1 * tick == pytest.approx(100)
    assert harness.cpu_seconds(None, str(tmp_path / "missing")) is None


class FakeProcStat:
    """``cpu_seconds`` whose busy time grows by ``foreign + own`` CPU seconds per call window."""

    def __init__(self, foreign_per_window):
        self.busy, self.foreign = 0.0, foreign_per_window

    def __call__(self, cpus=None, stat="/proc/stat"):
        self.busy += self.foreign
        return self.busy, 1e9


def busy_guard(monkeypatch, load=0.2, foreign_before=0.0, **kwargs):
    monkeypatch.setattr(harness.os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(harness, "sample_foreign_cores", lambda seconds: foreign_before)
    monkeypatch.setattr(harness.os, "cpu_count", lambda: 2)
    return harness.LoadGuard(**kwargs)


def test_guard_refuses_a_busy_machine_before_running(monkeypatch, capsys):
    guard = busy_guard(monkeypatch, load=5.0)
    with pytest.raises(SystemExit) as stop:
        guard.before()
    assert stop.value.code == harness.EXIT_OVERSUBSCRIBED
    assert "oversubscribed" in capsys.readouterr().err


@pytest.mark.parametrize("allow_busy, refuse", [(True, True), (False, False)])
def test_guard_marks_a_busy_run_when_allowed_or_not_refusing(monkeypatch, allow_busy, refuse):
    guard = busy_guard(monkeypatch, foreign_before=1.5, allow_busy=allow_busy, refuse=refuse)
    guard.before()
    assert guard.finish()
    record = guard.record()
    assert record["oversubscribed"] and record["allow_busy"] == allow_busy
    assert "1.50 cores before the run" in record["reasons"][0]


def test_guard_measures_other_processes_during_the_timed_rounds(monkeypatch):
    guard = busy_guard(monkeypatch)
    guard.before()
    fake = FakeProcStat(foreign_per_window=1000.0)  # far more than the window's own CPU
    monkeypatch.setattr(harness, "cpu_seconds", fake)
    with guard.timed():
        pass
    assert not guard.finish()  # refuses: busy during the rounds, though quiet before
    record = guard.record()
    assert record["oversubscribed"] and record["foreign_cores_during"] > 0.25
    assert "during the timed rounds" in record["reasons"][0]

    quiet = busy_guard(monkeypatch)
    quiet.before()
    monkeypatch.setattr(harness, "cpu_seconds", FakeProcStat(foreign_per_window=0.0))
    with quiet.timed():
        pass
    assert quiet.finish() and not quiet.record()["oversubscribed"]
    assert quiet.record()["foreign_cores_during"] == 0.0


# ------------------------------------------------------------------------------ writer


def test_write_result_records_command_machine_and_load(tmp_path, monkeypatch):
    guard = busy_guard(monkeypatch)
    guard.before()
    guard.finish()
    path = harness.write_result(str(tmp_path / "r" / "x.json"), "flows_vs_torch",
                                {"steps": 3}, {"row": {"ms": np.float32(1.5)}},
                                argv=["--steps", "3", "--out", "a b.json"],
                                load=guard.record(), packages=("no-such-package-xyz",))
    record = json.loads(open(path).read())
    assert record["command"] == ("python3 -m benchmarks.flows_vs_torch --steps 3 "
                                 "--out 'a b.json'")
    assert record["results"] == {"row": {"ms": 1.5}}
    assert record["load"]["oversubscribed"] is False
    versions = record["machine"]["versions"]
    assert versions["no-such-package-xyz"] is None and versions["jax"]
    assert "OMP_WAIT_POLICY" in record["machine"]["threads"]
    assert set(record) >= {"benchmark", "date", "git", "config", "machine"}


def test_load_args_build_the_rule():
    parser = argparse.ArgumentParser()
    harness.add_load_args(parser)
    args = parser.parse_args(["--allow_busy", "--max_foreign_cores", "0.5"])
    guard = harness.LoadGuard.from_args(args)
    assert guard.allow_busy and guard.rule == harness.QuietRule(1.0, 0.5)


# ------------------------------------------------------------------------------ torch peers


def test_torch_realnvp_is_gmjax_realnvp():
    pytest.importorskip("torch")
    import jax
    import torch

    from benchmarks import flows_vs_torch, torch_flows

    args = argparse.Namespace(dim=4, layers=3, hidden=8, steps=2)
    x = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    peers = ["torch"] + (["normflows"] if flows_vs_torch.importlib.util.find_spec("normflows")
                         else [])
    row = flows_vs_torch.realnvp_sides(args, peers, x)  # asserts counts and log-densities
    # 3 x (4*8 + 8 + 8*8 + 8 + 8*8 + 8): the conditioner sees the masked full vector.
    assert set(row["parameters"].values()) == {3 * (40 + 72 + 72)}
    assert max(row["max_abs_log_prob_difference"].values()) < 1e-4
    for peer in peers:  # the torch sides train (gmjax's step is tested with the engine)
        row["runs"][peer]()

    # The check can fail: other masks give other log-densities.
    from gmjax.flows import build_recipe
    from gmjax.flows.coupling import half_mask

    flow = build_recipe("realnvp", (4,), num_layers=3, hidden=(8, 8))
    params = flows_vs_torch.perturbed_params(flow, x)
    swapped = torch_flows.RealNVP([np.asarray(half_mask(4, i + 1)) for i in range(3)], (8, 8))
    for linears, dense in zip(swapped.dense_stacks(), flows_vs_torch.dense_stacks(params, 3)):
        torch_flows.load_dense_stack(linears, dense)
    with torch.no_grad():
        wrong = swapped.log_prob(torch.as_tensor(x)).numpy()
    right = np.asarray(jax.jit(flow.apply)(params, x))
    assert np.max(np.abs(wrong - right)) > 1e-2


def test_flows_vs_torch_refuses_an_oversubscribed_machine(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "never.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.flows_vs_torch", "--max_foreign_cores", "-1",
         "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == harness.EXIT_OVERSUBSCRIBED, done.stderr
    assert "oversubscribed" in done.stderr and "--allow_busy" in done.stderr
    assert not out.exists()
