"""Rational-quadratic spline evaluation: gmjax's spline against distrax's.

    python -m benchmarks.spline_speed [--dim 8] [--batch 500] [--steps 100] [--repeats 7]
        [--out PATH] [--allow_busy]

Both evaluate the same spline with the same parameters (the test
``test_gather_spline_equals_distrax_values_log_dets_and_gradients`` holds them
to 1e-12 in float64); distrax vectorizes a scalar function and picks the bin
with a mask over all K bins, gmjax counts the knots below x and picks that
bin's quantities by a one-hot product, with the bin axis first. Timed, in one
process, in ``--repeats`` rounds that time each implementation once, the
order alternating between rounds (``benchmarks.harness``), so that a change
in the machine's load hits both:

* ``elementwise``: forward + gradient and inverse + gradient of a
  ``[batch, dim]`` array through splines with ``bins`` bins;
* ``temperflow_kl`` and ``temperflow_l2``: ``steps`` Adam steps of TemperFlow's
  two losses scanned in one call (reverse KL; the L2 loss against a
  reference; at beta = 0.5, ``benchmarks.flow_step.build_steps``) on the
  Clayton target, for the Clayton config's flow, a 4-layer spline coupling
  flow with hidden (32, 32), 16 bins on [-6, 6].

Writes ``benchmarks/results/spline_speed.json`` (or ``--out``): median
milliseconds per call or step for each implementation and the ratio distrax /
gmjax (> 1: gmjax is faster), taken within each round, as median [min, max]
over rounds. An oversubscribed run (``harness.QuietRule``) writes nothing and
exits with status 3, unless ``--allow_busy``, which marks the result.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from typing import Callable, Dict

import distrax
import jax
import jax.numpy as jnp

from benchmarks import harness
from benchmarks.flow_step import build_steps
from gmjax.flows import spline as spline_module

RESULTS = harness.result_path("spline_speed")


def distrax_spline(self, theta):  # theta [3K + 1, ...]: distrax takes the parameters last
    return distrax.RationalQuadraticSpline(jnp.moveaxis(theta, 0, -1), range_min=-self.bound,
                                           range_max=self.bound, boundary_slopes="identity")


IMPLEMENTATIONS = {"gmjax": spline_module.RQSpline.__call__, "distrax": distrax_spline}


def use(name: str) -> None:
    spline_module.RQSpline.__call__ = IMPLEMENTATIONS[name]


def elementwise_cases(args) -> Dict[str, Callable[[], Callable[[], None]]]:
    k = args.bins
    theta = jax.random.normal(jax.random.PRNGKey(0), (3 * k + 1, args.batch, args.dim))
    x = 4.0 * jax.random.uniform(jax.random.PRNGKey(1), (args.batch, args.dim), minval=-1.0)

    def case(direction):
        def build():
            spline = spline_module.RQSpline(bound=5.0)

            @jax.jit
            def run(theta, x):
                def total(theta):
                    y, log_det = getattr(spline(theta), f"{direction}_and_log_det")(x)
                    return jnp.sum(y) + jnp.sum(log_det)
                return jax.value_and_grad(total)(theta)

            return lambda: jax.block_until_ready(run(theta, x))
        return build

    return {"elementwise_forward_grad": case("forward"),
            "elementwise_inverse_grad": case("inverse")}


def temperflow_cases(args) -> Dict[str, Callable[[], Callable[[], None]]]:
    model = {"name": "spline_coupling", "num_layers": 4, "hidden": (32, 32), "num_bins": 16,
             "bound": 6.0}

    def case(kind):
        def build():
            return build_steps(args.batch, args.steps, model=model, target="clayton",
                               dim=args.dim)[kind]
        return build

    return {"temperflow_kl": case("reverse_kl"), "temperflow_l2": case("l2_reference")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dim", type=int, default=8)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--bins", type=int, default=16)
    parser.add_argument("--steps", type=int, default=100, help="Adam steps per call")
    parser.add_argument("--repeats", type=int, default=7, help="timing rounds")
    parser.add_argument("--out", default=RESULTS)
    harness.add_load_args(parser)
    args = parser.parse_args(argv)

    guard = harness.LoadGuard.from_args(args)
    guard.before()
    results = {}
    for name, build in {**elementwise_cases(args), **temperflow_cases(args)}.items():
        per = args.steps if name.startswith("temperflow") else 1
        runs = {}
        for impl in IMPLEMENTATIONS:  # compile both before timing either
            use(impl)
            runs[impl] = build()
            runs[impl]()
        use("gmjax")
        with guard.timed():
            ms = harness.time_rounds(runs, args.repeats, per=per).ms
        ratio = harness.spread(harness.paired_ratios(ms, "distrax", "gmjax"))
        results[name] = {"gmjax_ms": statistics.median(ms["gmjax"]),
                         "distrax_ms": statistics.median(ms["distrax"]),
                         "ratio_distrax_over_gmjax": ratio}
    ok = guard.finish()  # no ratio from an oversubscribed run, unless --allow_busy
    for name, r in results.items():
        ratio = f"ratio {harness.format_spread(r['ratio_distrax_over_gmjax'], 2)}" if ok else ""
        print(f"{name:28s} gmjax {r['gmjax_ms']:8.2f} ms  distrax {r['distrax_ms']:8.2f} ms  "
              f"{ratio}")
    if not ok:
        return harness.EXIT_OVERSUBSCRIBED
    harness.write_result(
        args.out, "spline_speed", {**vars(args), "out": harness.display_path(args.out)},
        results, argv=argv, load=guard.record(),
        description="gmjax's rational-quadratic spline vs distrax's; ratio = distrax ms / "
                    "gmjax ms, paired by round")
    return 0


if __name__ == "__main__":
    sys.exit(main())
