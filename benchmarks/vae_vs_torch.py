"""VAE training-step speed: gmjax against PyTorch eager and torch.compile, paired by round.

    python -m benchmarks.vae_vs_torch [--batches 32,128,1024] [--steps 20] [--rounds 10]
        [--threads 1] [--peers torch,torch_compile] [--xla_variants default,onednn,...]
        [--hidden 500,500] [--latent 50] [--out PATH] [--allow_busy]

Times one Adam step (forward, backward, update; lr 1e-3, the optimizers'
defaults otherwise) of the classic MLP VAE, 784-500-500-50 with tanh units and
a Bernoulli decoder (the ``vae_mnist`` config's network), on one fixed batch
of binary 28x28 images, for each batch size in ``--batches``. The loss is the
negative ELBO with one reparameterized sample and the analytic KL
(``gmjax.objectives.elbo_loss``; a fresh ``eps`` every step on every side).
The sides are one model (``benchmarks/torch_vae.py``):

* ``gmjax``: the engine's ``make_train_step`` called with ``log=False``, as
  ``fit`` calls it between logging steps;
* ``torch``: the same network and loss in plain PyTorch, eager;
* ``torch_compile``: the same module, loss and ``optimizer.step`` through
  ``torch.compile`` (inductor, default mode).

Before timing, the torch sides get gmjax's initial parameters and must agree
with it on the loss at the same ``eps`` (to ``LOSS_TOLERANCE`` relative) and
on the parameter count.

**Share of the matmul peak.** The same run measures the machine's float32
matmul peak as XLA reaches it: the best of ``--peak_repeats`` timed
``jnp.dot`` calls of two ``--peak_size`` square matrices, on the same pinned
cores. Each side's step is then reported as a share of that peak: the step's
matmul FLOPs (``step_matmul_flops``: forward ``2 n sum(in * out)`` over the
six dense layers, backward twice that less the first layer's unused input
gradient) per second of its measured time, over the peak. The elementwise
work (tanh, softplus, Adam) is not counted, so the share is a lower bound of
the busy fraction.

**XLA CPU options.** ``--xla_variants`` (default: none) re-runs the gmjax
side, and the peak, in one fresh process per entry of ``XLA_VARIANTS`` with
its flags appended to ``XLA_FLAGS`` (read once, when XLA starts), after the
main comparison: ``default`` (no flag), ``onednn`` (oneDNN thunks for the
matmul fusions), ``onednn_custom_call``, ``onednn_fusions`` (oneDNN fusions of
dot and elementwise ops), ``no_xnnpack`` (XNNPACK is on by default in this
jaxlib), ``xnn_fusions``, ``xnn_graph`` (greedy XNNPACK subgraphs) and
``fast_math``. Each variant records ms per step per batch, its peak, its
loss at a fixed key (a fast-math variant may change the numbers) and the ratio
of its median to the ``default`` variant's; a variant whose flag this jaxlib
rejects is recorded with its error. Variants run in separate processes, one
after the other, so their ratios are not paired by round.

Timing and threads as in ``benchmarks.flows_vs_torch`` (``benchmarks.harness``):
every round times ``--steps`` steps of every side, the order rotating; the
ratio peer / gmjax (> 1: gmjax is faster) is taken within each round and
reported as median [min, max]; ``--threads`` pins the process (and the
variants' processes) to that many cores. The run refuses to report from an
oversubscribed machine (exit status 3, nothing written) unless ``--allow_busy``.

Needs the ``peers`` extra (``pip install -e ".[peers]"``: torch CPU build).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from benchmarks import harness
from benchmarks.flows_vs_torch import configure_threads

NAME = "vae_vs_torch"
PEERS = ("torch", "torch_compile")
DATA_SHAPE = (28, 28, 1)
LOSS_TOLERANCE = 1e-5  # relative
CHECK_KEY = 5  # the PRNG key of the loss check
XLA_VARIANTS: Dict[str, str] = {
    "default": "",
    "onednn": "--xla_cpu_use_onednn=true",
    "onednn_custom_call": ("--xla_cpu_use_onednn=true "
                           "--xla_cpu_experimental_onednn_custom_call=true"),
    "onednn_fusions": ("--xla_cpu_use_onednn=true "
                       "--xla_cpu_experimental_onednn_fusion_type=dot,eltwise"),
    "no_xnnpack": "--xla_cpu_use_xnnpack=false",
    "xnn_fusions": "--xla_cpu_experimental_xnn_fusion_type=dot,eltwise",
    "xnn_graph": "--xla_cpu_experimental_xnn_graph_fusion_mode=XNN_GRAPH_FUSION_MODE_GREEDY",
    "fast_math": "--xla_cpu_enable_fast_math=true",
}
RESULT_PREFIX = "VARIANT_RESULT "


def widths(hidden: Sequence[int], latent: int) -> List[tuple]:
    """``(in, out)`` of the six dense layers: encoder, then decoder."""
    data = int(np.prod(DATA_SHAPE))
    enc = [data, *hidden, 2 * latent]
    dec = [latent, *reversed(hidden), data]
    return [*zip(enc[:-1], enc[1:]), *zip(dec[:-1], dec[1:])]


def parameter_count(hidden: Sequence[int], latent: int) -> int:
    return sum(a * b + b for a, b in widths(hidden, latent))


def step_matmul_flops(batch: int, hidden: Sequence[int], latent: int) -> int:
    """Matmul FLOPs of one training step: forward ``2 n sum(in out)``, backward the weight
    gradients (as many) and the input gradients of every layer but the first."""
    layers = widths(hidden, latent)
    macs = sum(a * b for a, b in layers)
    first = layers[0][0] * layers[0][1]
    return 2 * batch * (3 * macs - first)


def build_gmjax(hidden: Sequence[int], latent: int):
    """``(model, objective)``: gmjax's MLP VAE and its negative-ELBO train loss."""
    from gmjax.models.vae import build_objective, build_vae

    model = build_vae({"name": "vae", "net": "mlp", "hidden": tuple(hidden),
                       "activation": "tanh", "latent_dim": latent,
                       "likelihood": "bernoulli"}, DATA_SHAPE)
    objective = build_objective(model, {"name": "elbo", "num_samples": 1, "estimator": "total",
                                        "kl": "analytic", "binarize": "none"})
    return model, objective


def binary_batch(batch: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((batch, *DATA_SHAPE)) < 0.3).astype(np.float32)


def gmjax_loss_at_check_key(objective, params, x: np.ndarray, latent: int):
    """``(loss, eps)``: gmjax's loss at ``PRNGKey(CHECK_KEY)`` and the ``eps [n, d]`` it drew
    (``DiagonalGaussian.sample_and_log_prob`` draws ``normal(key, [1, n, d])``)."""
    import jax

    key = jax.random.PRNGKey(CHECK_KEY)
    loss = float(jax.jit(objective.loss)(params, x, key)[0])
    eps = np.array(jax.random.normal(key, (1, x.shape[0], latent)))[0]
    return loss, eps


def count(tree) -> int:
    import jax

    return int(sum(np.size(leaf) for leaf in jax.tree.leaves(tree)))


def sides(hidden: Sequence[int], latent: int, batch: int, steps: int,
          peers: Sequence[str]) -> Dict[str, Any]:
    """One batch size's runs, parameter counts and loss agreement (raises on a mismatch)."""
    import jax

    _, objective = build_gmjax(hidden, latent)
    x = binary_batch(batch)
    params = objective.init(jax.random.PRNGKey(0), x[:1])
    loss, eps = gmjax_loss_at_check_key(objective, params, x, latent)
    runs = {"gmjax": harness.engine_runner(objective.loss, params, x, steps)}
    parameters = {"gmjax": count(params)}
    losses = {"gmjax": loss}
    if peers:
        import torch

        from benchmarks import torch_flows, torch_vae

        xt = torch.as_tensor(x.reshape(batch, -1))
        for peer in peers:
            model = torch_vae.MLPVAE(xt.shape[1], hidden, latent)
            torch_vae.load_gmjax_params(model, params)
            with torch.no_grad():
                losses[peer] = float(model(xt, torch.as_tensor(eps)))
            parameters[peer] = torch_flows.count_parameters(model)
            runs[peer] = torch_flows.train_runner(model.parameters(), model, xt, steps,
                                                  compile=peer == "torch_compile")
    if len(set(parameters.values())) != 1:
        raise AssertionError(f"parameter counts differ: {parameters}")
    difference = {p: abs(v - loss) / abs(loss) for p, v in losses.items() if p != "gmjax"}
    for peer, d in difference.items():
        if d > LOSS_TOLERANCE:
            raise AssertionError(f"{peer}: loss {losses[peer]} differs from gmjax's {loss} "
                                 f"(relative {d:.2e})")
    return {"runs": runs, "parameters": parameters, "loss_at_check_key": losses,
            "relative_loss_difference": difference}


def matmul_peak(size: int, repeats: int) -> Dict[str, float]:
    """The best float32 GFLOP/s of ``jnp.dot`` of two ``size x size`` matrices."""
    import jax
    import jax.numpy as jnp

    a, b = (jax.random.normal(jax.random.PRNGKey(i), (size, size), jnp.float32) for i in (0, 1))
    dot = jax.jit(jnp.dot)
    jax.block_until_ready(dot(a, b))
    seconds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(dot(a, b))
        seconds.append(time.perf_counter() - t0)
    flops = 2 * size ** 3
    return {"gflops": flops / min(seconds) / 1e9,
            "gflops_median": flops / float(np.median(seconds)) / 1e9,
            "size": size, "repeats": repeats}


def measure(row: Dict[str, Any], args, flops: int, peak_gflops: float,
            guard: Optional[harness.LoadGuard]) -> Dict[str, Any]:
    row = harness.measure_sides(row, args.rounds, args.steps, guard)
    row["matmul_flops_per_step"] = flops

    def share(ms: float) -> float:  # of the matmul peak, at ``ms`` per step
        return flops / (ms * 1e-3) / (peak_gflops * 1e9)

    row["share_of_matmul_peak"] = {  # share falls as time grows: min share at max ms
        name: {"median": share(s["median"]), "min": share(s["max"]), "max": share(s["min"]),
               "rounds": s["rounds"]}
        for name, s in row["ms_per_step"].items()}
    return row


def available_peers(requested: Sequence[str]) -> List[str]:
    return harness.available_peers(requested, PEERS)


def variant_worker(args) -> int:
    """The gmjax side and the peak under this process's ``XLA_FLAGS``; one JSON line out."""
    peak = matmul_peak(args.peak_size, args.peak_repeats)
    rows = {}
    for batch in args.batches:
        row = sides(args.hidden, args.latent, batch, args.steps, [])
        flops = step_matmul_flops(batch, args.hidden, args.latent)
        row = measure(row, args, flops, peak["gflops"], None)
        rows[str(batch)] = {"ms_per_step": row["ms_per_step"]["gmjax"],
                            "share_of_matmul_peak": row["share_of_matmul_peak"]["gmjax"],
                            "loss_at_check_key": row["loss_at_check_key"]["gmjax"]}
    print(RESULT_PREFIX + json.dumps({"matmul_peak": peak, "batches": rows}), flush=True)
    return 0


def run_variants(args, names: Sequence[str]) -> Dict[str, Any]:
    """Every XLA variant in a fresh process (see the module doc)."""
    out: Dict[str, Any] = {}
    base = os.environ.get("XLA_FLAGS", "")
    common = ["--variant_worker", "--threads", str(args.threads), "--steps", str(args.steps),
              "--rounds", str(args.rounds), "--batches", ",".join(map(str, args.batches)),
              "--hidden", ",".join(map(str, args.hidden)), "--latent", str(args.latent),
              "--peak_size", str(args.peak_size), "--peak_repeats", str(args.peak_repeats)]
    for name in names:
        flags = " ".join(f for f in (base, XLA_VARIANTS[name]) if f)
        env = dict(os.environ, XLA_FLAGS=flags)
        print(f"== XLA variant {name}: XLA_FLAGS={flags!r}", flush=True)
        done = subprocess.run([sys.executable, "-m", f"benchmarks.{NAME}", *common], env=env,
                              capture_output=True, text=True,
                              cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        lines = [l for l in done.stdout.splitlines() if l.startswith(RESULT_PREFIX)]
        if done.returncode != 0 or not lines:
            tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            out[name] = {"xla_flags": XLA_VARIANTS[name], "error": tail[-500:]}
            continue
        out[name] = {"xla_flags": XLA_VARIANTS[name],
                     **json.loads(lines[-1][len(RESULT_PREFIX):])}
    default = out.get("default", {}).get("batches")
    for name, record in out.items():
        if default and "batches" in record:
            for batch, row in record["batches"].items():
                row["ratio_to_default"] = (row["ms_per_step"]["median"]
                                           / default[batch]["ms_per_step"]["median"])
    return out


def parse_ints(text: str) -> List[int]:
    return [int(v) for v in text.split(",") if v]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=parse_ints, default=[32, 128, 1024])
    parser.add_argument("--hidden", type=parse_ints, default=[500, 500])
    parser.add_argument("--latent", type=int, default=50)
    parser.add_argument("--steps", type=int, default=20, help="steps timed per side and round")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for each side (torch and XLA); see flows_vs_torch")
    parser.add_argument("--peers", default=",".join(PEERS),
                        help=f"comma-separated subset of {', '.join(PEERS)}")
    parser.add_argument("--xla_variants", default="",
                        help=f"comma-separated subset of {', '.join(XLA_VARIANTS)} "
                             f"(or 'all'): the gmjax side under each, see the module doc")
    parser.add_argument("--peak_size", type=int, default=2048)
    parser.add_argument("--peak_repeats", type=int, default=10)
    parser.add_argument("--variant_worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=harness.result_path(NAME))
    harness.add_load_args(parser)
    args = parser.parse_args(argv)

    if not args.batches or min(args.batches) < 1 or args.latent < 1 or args.steps < 1 \
            or args.rounds < 1 or not args.hidden or min(args.hidden) < 1:
        parser.error("--batches, --hidden, --latent, --steps and --rounds must be positive")
    variants = (list(XLA_VARIANTS) if args.xla_variants == "all"
                else [v for v in args.xla_variants.split(",") if v])
    unknown = [v for v in variants if v not in XLA_VARIANTS]
    if unknown:
        parser.error(f"unknown --xla_variants {', '.join(unknown)}; valid choices: "
                     f"{', '.join(XLA_VARIANTS)}, all")
    try:
        pinned = configure_threads(args.threads)
        peers = available_peers([p for p in args.peers.split(",") if p])
    except ValueError as e:
        parser.error(str(e))
    if args.variant_worker:
        return variant_worker(args)
    if peers:
        import torch

        torch.set_num_threads(args.threads)

    guard = harness.LoadGuard.from_args(args)
    guard.before()
    with guard.timed():
        peak = matmul_peak(args.peak_size, args.peak_repeats)
    rows = {}
    for batch in args.batches:
        flops = step_matmul_flops(batch, args.hidden, args.latent)
        rows[str(batch)] = measure(sides(args.hidden, args.latent, batch, args.steps, peers),
                                   args, flops, peak["gflops"], guard)
    ok = guard.finish()  # no ratio from an oversubscribed run, unless --allow_busy
    print(f"float32 matmul peak (jnp.dot {args.peak_size}^2): {peak['gflops']:.1f} GFLOP/s")
    print(f"{'batch':>5s} {'side':14s} {'params':>8s} {'ms/step median [min, max]':>27s} "
          f"{'cores':>5s} {'% of peak':>9s} {'ratio to gmjax, paired' if ok else '':>26s}")
    for batch, row in rows.items():
        for side, ms in row["ms_per_step"].items():
            ratio = row["ratio_to_gmjax"].get(side) if ok else None
            print(f"{batch:>5s} {side:14s} {row['parameters'][side]:8d} "
                  f"{harness.format_spread(ms):>27s} "
                  f"{row['cpu_cores_used'][side]['median']:5.2f} "
                  f"{100 * row['share_of_matmul_peak'][side]['median']:8.1f}% "
                  f"{harness.format_spread(ratio, 2) if ratio else '':>26s}")
    if not ok:
        return harness.EXIT_OVERSUBSCRIBED
    variant_results = run_variants(args, variants) if variants else {}
    for name, record in variant_results.items():
        if "error" in record:
            print(f"XLA variant {name:20s} error: {record['error']}")
            continue
        cells = ", ".join(f"batch {b}: {r['ms_per_step']['median']:.3f} ms"
                          f" ({r.get('ratio_to_default', float('nan')):.2f}x default)"
                          for b, r in record["batches"].items())
        print(f"XLA variant {name:20s} peak {record['matmul_peak']['gflops']:.1f} GFLOP/s; "
              f"{cells}")
    config = {**vars(args), "out": harness.display_path(args.out), "peers": peers,
              "xla_variants": variants, "pinned_cores": pinned,
              "optimizer": "Adam lr 1e-3 (optax.adam / torch.optim.Adam defaults otherwise)",
              "model": f"MLP VAE {int(np.prod(DATA_SHAPE))}-"
                       f"{'-'.join(map(str, args.hidden))}-{args.latent} (tanh), Bernoulli "
                       f"decoder, negative ELBO with the analytic KL, one sample"}
    harness.write_result(
        args.out, NAME, config, {"matmul_peak": peak, "batches": rows,
                                 "xla_variants": variant_results}, argv=argv,
        description="ms per VAE Adam step; ratio = peer ms / gmjax ms, paired by round; "
                    "share_of_matmul_peak = the step's matmul FLOPs per second over the "
                    "measured jnp.dot float32 peak",
        load=guard.record(), packages=("torch",))
    return 0


if __name__ == "__main__":
    sys.exit(main())
