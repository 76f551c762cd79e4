"""TemperFlow's two training steps for its default 2-D flow, in milliseconds per step.

    python -m benchmarks.flow_step [--batch 1000] [--steps 100] [--rounds 15]

The flow is the ``spline_autoregressive`` recipe of the 2-D TemperFlow
config (4 rational-quadratic spline MAF layers, MADE hidden (32, 32), 8 bins
on [-8, 8]); the target the circle mixture at beta = 0.5. Two steps, each
``steps`` Adam updates scanned in one compiled call as TemperFlow runs them:

* ``reverse_kl``: the ``reverse_kl`` stage loss: latents through the flow's
  sampling direction (the inverse of each MAF layer, D MADE passes per
  layer), log q, the target's log-density, the gradient;
* ``l2_reference``: the ``l2_distance`` stage loss: draws of a frozen reference flow
  (sampling direction, no gradient), then log q at them (the density
  direction, one MADE pass per layer), the gradient.

Every round times one call of each step, the order alternating between
rounds (``benchmarks.harness.time_rounds``), so that a change in the
machine's load hits both; the result is the median over rounds [min, max] in
ms per step. Writes ``benchmarks/results/flow_step.json`` (or ``--out``)
with the compiled steps' XLA cost estimate (flops, bytes accessed) per step
and the machine's load (``harness.LoadGuard``): a run on an oversubscribed
machine is written all the same, marked ``"oversubscribed": true``.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any, Callable, Dict, Mapping

import jax
import jax.flatten_util
import jax.numpy as jnp
import ml_collections
import optax

from benchmarks import harness
from gmjax.flows.base import Flow
from gmjax.models.flow import build_flow
from gmjax.objectives.sampler_losses import FlowFunctions, make_stage_loss
from gmjax.targets import build_target

RESULTS = harness.result_path("flow_step")
MODEL = {"name": "spline_autoregressive", "num_layers": 4, "hidden": (32, 32), "num_bins": 8,
         "bound": 8.0}


def build_steps(batch: int, steps: int, beta: float = 0.5, model: Mapping[str, Any] = MODEL,
                target: str = "circle", **target_options: Any) -> Dict[str, Callable[[], None]]:
    """``{"reverse_kl": run, "l2_reference": run}``: each ``run()`` is one compiled call of
    ``steps`` scanned Adam updates of the flow ``model`` on the target ``target`` (compiled
    here, so the first timed call is warm)."""
    target = build_target(target, **target_options)
    flow = build_flow(ml_collections.ConfigDict(dict(model)), target.dim)
    dim = target.dim

    def sample_and_log_prob(params, key, n):
        return flow.apply(params, key, n, method=Flow.sample_and_log_prob)

    def log_prob(params, x):
        return flow.apply(params, x, method=Flow.log_prob)

    params = flow.init(jax.random.PRNGKey(0), jnp.zeros((2, dim)))
    # Away from the identity the flow is initialized at, so the splines bend.
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    params = unravel(flat + 0.1 * jax.random.normal(jax.random.PRNGKey(1), flat.shape))
    optimizer = optax.adam(1e-3)
    cond = {"beta": jnp.float32(beta), "ref_params": params, "log_u": jnp.float32(0.0)}
    functions = FlowFunctions(sample_and_log_prob, log_prob, sample_and_log_prob)
    losses = {"reverse_kl": make_stage_loss("reverse_kl", functions, target, batch),
              "l2_reference": make_stage_loss("l2_distance", functions, target, batch)}

    def scanned(loss_fn):
        def many(params, opt_state, key, cond):
            def one_step(carry, _):
                params, opt_state, key = carry
                key, step_key = jax.random.split(key)
                (value, _), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, cond,
                                                                               step_key)
                updates, opt_state = optimizer.update(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state, key), value

            return jax.lax.scan(one_step, (params, opt_state, key), None, length=steps)

        return jax.jit(many)

    runs = {}
    for name, loss_fn in losses.items():
        # Everything, the reference flow's parameters in cond too, is an argument, as in
        # TemperFlow: a constant would let XLA fold what depends on it alone.
        state = (params, optimizer.init(params), jax.random.PRNGKey(2), cond)
        compiled = scanned(loss_fn).lower(*state).compile()

        def run(compiled=compiled, state=state):
            jax.block_until_ready(compiled(*state))

        run.cost = _cost(compiled, steps)
        run()
        runs[name] = run
    return runs


def _cost(compiled, steps: int) -> Dict[str, float]:
    """XLA's static estimate per step (the scan body counts once, so no division)."""
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return {k: float(cost[k]) for k in ("flops", "transcendentals", "bytes accessed")
            if k in cost}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=100, help="Adam steps per call")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--out", default=RESULTS)
    args = parser.parse_args()

    guard = harness.LoadGuard(refuse=False)
    guard.before()
    runs = build_steps(args.batch, args.steps)
    with guard.timed():
        ms = harness.time_rounds(runs, args.rounds, per=args.steps).ms
    guard.finish()
    results = {}
    for name, values in ms.items():
        results[name] = {"ms_per_step_median": statistics.median(values),
                         "ms_per_step_min": min(values), "ms_per_step_max": max(values),
                         "xla_cost_per_step": runs[name].cost}
        print(f"{name:14s} {statistics.median(values):7.3f} ms/step "
              f"[{min(values):.3f}, {max(values):.3f}]", flush=True)
    config = {**vars(args), "out": harness.display_path(args.out), "model": MODEL,
              "target": "circle", "beta": 0.5}
    harness.write_result(args.out, "flow_step", config, results,
                         description="ms per Adam step of TemperFlow's two stage losses, "
                                     "scanned steps per call", load=guard.record())


if __name__ == "__main__":
    main()
