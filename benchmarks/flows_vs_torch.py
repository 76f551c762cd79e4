"""Flow training-step speed: gmjax against PyTorch, side by side, paired by round.

    python -m benchmarks.flows_vs_torch [--dim 8] [--layers 8] [--hidden 64] [--batch 512]
        [--steps 100] [--rounds 15] [--threads 1] [--out PATH] [--allow_busy]

Times one maximum-likelihood Adam step (forward, backward, update; lr 1e-3,
the optimizers' default betas and epsilon) on one fixed batch of
``batch`` standard-normal ``dim``-vectors, of two models.

**RealNVP**: gmjax's ``realnvp`` recipe, ``layers`` affine couplings on
alternating halves (``half_mask``). Each conditioner is an MLP over the
*masked full vector*, ``dim -> hidden -> hidden -> 2 dim`` (8 -> 64 -> 64 -> 16
by default; distrax ``MaskedCoupling`` feeds it ``m * x``), its output read as
(shift, raw log-scale) pairs, the log-scale bounded by ``3 tanh(raw / 3)``.
Every peer is that same model (``benchmarks/torch_flows.py``):

* ``torch``: written in plain PyTorch, eager;
* ``torch_compile``: the same module, loss and ``optimizer.step`` through
  ``torch.compile`` (inductor, default mode);
* ``normflows``: normflows' ``MaskedAffineFlow`` layers whose ``s`` and ``t``
  are two heads of one shared conditioner (when normflows is installed).

Before timing, all sides get the same (perturbed) parameters, copied from
gmjax, and must agree on the log-densities of the batch (to 1e-3) and on
the parameter count; both are printed and written.

**MAF**: gmjax's ``maf`` recipe (MADE ``dim -> hidden -> hidden -> 2 dim``,
orders reversed every layer) against zuko's ``MAF`` with the same widths
(when zuko is installed); the parameter counts must agree. zuko bounds the
log-scale its own way, so this row compares libraries, not one model.

The gmjax step is the engine's ``make_train_step`` called with ``log=False``,
as ``fit`` calls it between logging steps (no gradient norm).

Timing (``benchmarks.harness``): each round times ``steps`` steps of every
side of a row once, the order rotating between rounds; the ratio peer / gmjax
(> 1: gmjax is faster) is taken within each round and reported as median
[min, max] over the rounds, with the CPU cores each side kept busy. The run
refuses to report from an oversubscribed machine (``harness.QuietRule``;
exit status 3, nothing written) unless ``--allow_busy``.

Threads. ``--threads N`` (default 1) gives both sides the same N cores: the
process is pinned to the first N of its CPUs (``sched_setaffinity``) before
XLA starts, which sizes XLA's thread pool to them (XLA's
``intra_op_parallelism_threads`` and ``--xla_cpu_multi_thread_eigen`` flags
do not limit the CPU client of this jax version; the affinity does), and
torch gets ``torch.set_num_threads(N)`` and ``OMP_NUM_THREADS=N``.
``OMP_WAIT_POLICY`` is ``PASSIVE`` (unless set), so idle OpenMP threads
sleep instead of spin-waiting: spinning threads on cores that other
processes also want made a torch step take 20-40 times as long, which says
nothing about either library. One core is the default because the model is
small (a 512 x 64 hidden layer), so the row compares the code, not the
thread pools. The settings and the CPU each side kept busy go into the
result file.

Needs the ``peers`` extra (``pip install -e ".[peers]"``: torch CPU build,
zuko, normflows).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from benchmarks import harness

NAME = "flows_vs_torch"
PEERS = ("torch", "torch_compile", "normflows", "zuko")
LOG_PROB_TOLERANCE = 1e-3


def configure_threads(threads: int) -> List[int]:
    """Pins the process to ``threads`` cores and sets OpenMP's threads; returns the cores.

    Must run before jax computes anything and before torch is imported.
    """
    cores = harness.usable_cores()
    if not 1 <= threads <= len(cores):
        raise ValueError(f"--threads must be between 1 and {len(cores)} (the usable cores), "
                         f"got {threads}")
    pinned = cores[:threads]
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, pinned)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")
    return pinned


def perturbed_params(flow, x: np.ndarray, scale: float = 0.05):
    """gmjax parameters moved off the identity (the output layers start at zero)."""
    import jax
    import jax.flatten_util

    params = jax.jit(flow.init)(jax.random.PRNGKey(0), x[:2])
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    return unravel(flat + scale * jax.random.normal(jax.random.PRNGKey(3), flat.shape))


def dense_stacks(params, layers: int) -> List[List[tuple]]:
    """Each coupling's conditioner ``[(kernel, bias), ...]`` from gmjax's realnvp parameters."""
    out = []
    for i in range(layers):
        net = params["params"][f"layers_{i}"]["net"]
        out.append([(np.asarray(net[k]["kernel"]), np.asarray(net[k]["bias"]))
                    for k in sorted(net, key=lambda name: int(name.split("_")[-1]))])
    return out


def count(tree) -> int:
    import jax

    return int(sum(np.size(leaf) for leaf in jax.tree.leaves(tree)))


def flow_nll(flow) -> Callable:
    """The flows' training loss, gmjax's ``nll_loss`` of ``flow.apply``."""
    from gmjax.objectives import nll_loss

    return nll_loss(flow.apply)


def realnvp_sides(args, peers: Sequence[str], x: np.ndarray) -> Dict[str, Any]:
    """The RealNVP row's runs, parameter counts and log-density agreement."""
    import jax
    import torch

    from benchmarks import torch_flows
    from gmjax.flows import build_recipe
    from gmjax.flows.coupling import half_mask

    hidden = (args.hidden, args.hidden)
    flow = build_recipe("realnvp", (args.dim,), num_layers=args.layers, hidden=hidden)
    params = perturbed_params(flow, x)
    reference = np.asarray(jax.jit(flow.apply)(params, x))
    masks = [np.asarray(half_mask(args.dim, i)) for i in range(args.layers)]
    stacks = dense_stacks(params, args.layers)
    xt = torch.as_tensor(x)

    runs = {"gmjax": harness.engine_runner(flow_nll(flow), params, x, args.steps)}
    parameters = {"gmjax": count(params)}
    log_prob_error = {}
    for peer in peers:
        if peer in ("torch", "torch_compile"):
            model = torch_flows.RealNVP(masks, hidden)
            for linears, dense in zip(model.dense_stacks(), stacks):
                torch_flows.load_dense_stack(linears, dense)
            log_prob, loss_fn = model.log_prob, model
        elif peer == "normflows":
            model = torch_flows.normflows_realnvp(masks, hidden)
            for linears, dense in zip(torch_flows.normflows_dense_stacks(model), stacks):
                torch_flows.load_dense_stack(linears, dense)
            log_prob, loss_fn = model.log_prob, model.forward_kld
        else:
            continue
        with torch.no_grad():
            error = float(np.max(np.abs(log_prob(xt).numpy() - reference)))
        if error > LOG_PROB_TOLERANCE:
            raise AssertionError(f"{peer}: log-densities differ from gmjax's by {error:.2e}")
        parameters[peer] = torch_flows.count_parameters(model)
        log_prob_error[peer] = error
        runs[peer] = torch_flows.train_runner(model.parameters(), loss_fn, xt, args.steps,
                                              compile=peer == "torch_compile")
    if len(set(parameters.values())) != 1:
        raise AssertionError(f"parameter counts differ: {parameters}")
    return {"runs": runs, "parameters": parameters, "max_abs_log_prob_difference": log_prob_error}


def maf_sides(args, peers: Sequence[str], x: np.ndarray) -> Dict[str, Any]:
    """The MAF row: gmjax's ``maf`` recipe and zuko's ``MAF``."""
    import jax
    import torch

    from benchmarks import torch_flows
    from gmjax.flows import build_recipe

    hidden = (args.hidden, args.hidden)
    flow = build_recipe("maf", (args.dim,), num_layers=args.layers, hidden=hidden)
    params = jax.jit(flow.init)(jax.random.PRNGKey(0), x[:2])
    runs = {"gmjax": harness.engine_runner(flow_nll(flow), params, x, args.steps)}
    parameters = {"gmjax": count(params)}
    if "zuko" in peers:
        model, loss_fn = torch_flows.zuko_maf(args.dim, args.layers, hidden)
        parameters["zuko"] = torch_flows.count_parameters(model)
        runs["zuko"] = torch_flows.train_runner(model.parameters(), loss_fn,
                                                torch.as_tensor(x), args.steps)
    if len(set(parameters.values())) != 1:
        raise AssertionError(f"parameter counts differ: {parameters}")
    return {"runs": runs, "parameters": parameters}


def available_peers(requested: Sequence[str]) -> list:
    return harness.available_peers(requested, PEERS,
                                   lambda peer: peer if peer in ("normflows", "zuko") else "torch")


def measure(row: Dict[str, Any], args, guard: harness.LoadGuard) -> Dict[str, Any]:
    return harness.measure_sides(row, args.rounds, args.steps, guard)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dim", type=int, default=8)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--steps", type=int, default=100, help="steps timed per side and round")
    parser.add_argument("--rounds", "--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for each side (torch and XLA); see the module doc")
    parser.add_argument("--peers", default=",".join(PEERS),
                        help=f"comma-separated subset of {', '.join(PEERS)}")
    parser.add_argument("--out", default=harness.result_path(NAME))
    harness.add_load_args(parser)
    args = parser.parse_args(argv)

    try:
        pinned = configure_threads(args.threads)
    except ValueError as e:
        parser.error(str(e))
    if importlib.util.find_spec("torch") is None:
        print('needs torch: pip install -e ".[peers]"', file=sys.stderr)
        return 1
    import torch

    torch.set_num_threads(args.threads)
    try:
        peers = available_peers([p for p in args.peers.split(",") if p])
    except ValueError as e:
        parser.error(str(e))

    guard = harness.LoadGuard.from_args(args)
    guard.before()
    x = np.random.default_rng(0).normal(size=(args.batch, args.dim)).astype(np.float32)
    rows = {"realnvp": measure(realnvp_sides(args, peers, x), args, guard)}
    if "zuko" in peers:
        rows["maf"] = measure(maf_sides(args, peers, x), args, guard)

    ok = guard.finish()  # no ratio from an oversubscribed run, unless --allow_busy
    harness.print_rows(rows, ok, "flow")
    if not ok:
        return harness.EXIT_OVERSUBSCRIBED
    config = {**vars(args), "out": harness.display_path(args.out), "peers": peers,
              "pinned_cores": pinned,
              "optimizer": "Adam lr 1e-3 (optax.adam / torch.optim.Adam defaults otherwise)"}
    harness.write_result(
        args.out, NAME, config, rows, argv=argv,
        description="ms per maximum-likelihood Adam step; ratio = peer ms / gmjax ms, paired "
                    "by round; RealNVP conditioners dim -> hidden -> hidden -> 2 dim on the "
                    "masked full vector on every side",
        load=guard.record(), packages=("torch", "normflows", "zuko"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
