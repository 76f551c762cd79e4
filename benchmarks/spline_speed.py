"""Rational-quadratic spline evaluation: gmjax's spline against distrax's.

    python -m benchmarks.spline_speed [--dim 8] [--batch 500] [--steps 100] [--repeats 7]

Both evaluate the same spline with the same parameters (the test
``test_gather_spline_equals_distrax_values_log_dets_and_gradients`` holds them
to 1e-12 in float64); distrax vectorizes a scalar function and picks the bin
with a mask over all K bins, gmjax counts the knots below x and picks that
bin's quantities by a one-hot product, with the bin axis first. Timed, in one
process, alternating the two so that a change in the machine's load hits both:

* ``elementwise``: forward + gradient and inverse + gradient of a
  ``[batch, dim]`` array through splines with ``bins`` bins;
* ``temperflow_kl`` and ``temperflow_l2``: ``steps`` Adam steps of TemperFlow's
  two losses scanned in one call (reverse KL; the L2 loss against a
  reference; at beta = 0.5, ``benchmarks.flow_step.build_steps``) on the
  Clayton target, for the Clayton config's flow, a 4-layer spline coupling
  flow with hidden (32, 32), 16 bins on [-6, 6].

Writes ``benchmarks/results/spline_speed.json``: median milliseconds per call
or step for each implementation and the ratio distrax / gmjax (> 1: gmjax is
faster), with the load average at the start and the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from typing import Callable, Dict

import distrax
import jax
import jax.numpy as jnp

from benchmarks.flow_step import build_steps
from gmjax.flows import spline as spline_module

RESULTS = os.path.join(os.path.dirname(__file__), "results", "spline_speed.json")


def distrax_spline(self, theta):  # theta [3K + 1, ...]: distrax takes the parameters last
    return distrax.RationalQuadraticSpline(jnp.moveaxis(theta, 0, -1), range_min=-self.bound,
                                           range_max=self.bound, boundary_slopes="identity")


IMPLEMENTATIONS = {"gmjax": spline_module.RQSpline.__call__, "distrax": distrax_spline}


def use(name: str) -> None:
    spline_module.RQSpline.__call__ = IMPLEMENTATIONS[name]


def time_ms(fn: Callable[[], None], per: int) -> float:
    """Milliseconds per step of one call of an already compiled ``fn``."""
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) / per * 1e3


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dim", type=int, default=8)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--bins", type=int, default=16)
    parser.add_argument("--steps", type=int, default=100, help="Adam steps per call")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default=RESULTS)
    args = parser.parse_args()

    load_start = os.getloadavg()
    results = {}
    for name, build in {**elementwise_cases(args), **temperflow_cases(args)}.items():
        per = args.steps if name.startswith("temperflow") else 1
        runs = {}
        for impl in IMPLEMENTATIONS:  # compile both before timing either
            use(impl)
            runs[impl] = build()
            runs[impl]()
        use("gmjax")
        ms = {impl: [] for impl in IMPLEMENTATIONS}
        for _ in range(args.repeats):  # alternate, so load changes hit both
            for impl, run in runs.items():
                ms[impl].append(time_ms(run, per))
        med = {impl: statistics.median(v) for impl, v in ms.items()}
        results[name] = {"gmjax_ms": med["gmjax"], "distrax_ms": med["distrax"],
                         "ratio_distrax_over_gmjax": med["distrax"] / med["gmjax"]}
        print(f"{name:28s} gmjax {med['gmjax']:8.2f} ms  distrax {med['distrax']:8.2f} ms  "
              f"ratio {med['distrax'] / med['gmjax']:.2f}", flush=True)
    out = {"config": {**vars(args), "out": os.path.relpath(args.out)}, "results": results,
           "jax": jax.__version__, "distrax": distrax.__version__, "machine": platform.machine(),
           "cpus": os.cpu_count(), "load_average_start": load_start,
           "load_average_end": os.getloadavg()}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
