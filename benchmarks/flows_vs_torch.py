"""Flow training-step speed: gmjax against PyTorch flow libraries, side by side.

    python -m benchmarks.flows_vs_torch [--dim 8] [--batch 512] [--steps 200]

Times one maximum-likelihood Adam step (forward, backward, update) of

* RealNVP: ``layers`` affine couplings on alternating halves, MLP conditioners
  ``dim/2 -> hidden -> hidden -> dim`` (gmjax recipe ``realnvp``; normflows
  ``AffineCouplingBlock`` + ``Permute(mode="swap")``),
* MAF: ``layers`` affine MADE transforms with reversed orders (gmjax recipe ``maf``;
  zuko ``MAF``),

on the same data, batch and widths, in one process, and writes
``benchmarks/results/flows_vs_torch.json`` with the median milliseconds per
step and the ratio torch / gmjax (> 1: gmjax is faster). Needs the ``peers``
extra (``pip install -e ".[peers]"``: torch CPU build, zuko, normflows).

On a machine shared with other jobs, run with ``OMP_NUM_THREADS=1``: torch's
OpenMP threads busy-wait when the cores are oversubscribed, which measured
630 ms per RealNVP step instead of 22 ms here. The thread count and the load
average go into the result file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from typing import Callable, Dict

import jax
import jax.numpy as jnp
import numpy as np
import optax

RESULTS = os.path.join(os.path.dirname(__file__), "results", "flows_vs_torch.json")


def median_ms(run_steps: Callable[[int], None], steps: int, repeats: int) -> float:
    run_steps(10)  # warm-up (and compilation)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run_steps(steps)
        times.append((time.perf_counter() - t0) / steps * 1e3)
    return statistics.median(times)


def gmjax_step_ms(flow, x: np.ndarray, steps: int, repeats: int) -> float:
    from gmjax.objectives import nll_loss
    from gmjax.training import TrainState, data_mesh, make_train_step, replicate, shard_batch

    mesh = data_mesh(1)
    params = jax.jit(flow.init)(jax.random.PRNGKey(0), x[:2])
    opt = optax.adam(1e-3)
    state = replicate(TrainState.create(params, opt, jax.random.PRNGKey(1)), mesh)
    step = make_train_step(nll_loss(flow.apply), opt, mesh)
    batch = shard_batch(x, mesh)
    holder = {"state": state}

    def run(n):
        s = holder["state"]
        for _ in range(n):
            s, _ = step(s, batch)
        jax.block_until_ready(s)
        holder["state"] = s

    return median_ms(run, steps, repeats)


def torch_step_ms(model, loss_fn, x: np.ndarray, steps: int, repeats: int) -> float:
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xt = torch.as_tensor(x)

    def run(n):
        for _ in range(n):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model, xt)
            loss.backward()
            opt.step()

    return median_ms(run, steps, repeats)


def normflows_realnvp(dim: int, layers: int, hidden: int):
    import normflows as nf

    flows = []
    for _ in range(layers):
        net = nf.nets.MLP([dim // 2, hidden, hidden, dim], init_zeros=True)
        flows += [nf.flows.AffineCouplingBlock(net), nf.flows.Permute(dim, mode="swap")]
    model = nf.NormalizingFlow(nf.distributions.DiagGaussian(dim, trainable=False), flows)
    return model, lambda m, x: m.forward_kld(x)


def zuko_maf(dim: int, layers: int, hidden: int):
    import zuko

    flow = zuko.flows.MAF(dim, transforms=layers, hidden_features=(hidden, hidden))
    return flow, lambda f, x: -f().log_prob(x).mean()


def main() -> Dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dim", type=int, default=8)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import torch
    from gmjax.flows import build_recipe

    x = np.random.default_rng(0).normal(size=(args.batch, args.dim)).astype(np.float32)
    rows = {}
    hidden = (args.hidden, args.hidden)
    realnvp = build_recipe("realnvp", (args.dim,), num_layers=args.layers, hidden=hidden)
    rows["realnvp"] = {
        "gmjax_ms": gmjax_step_ms(realnvp, x, args.steps, args.repeats),
        "peer": "normflows " + __import__("normflows").__version__,
        "peer_ms": torch_step_ms(*normflows_realnvp(args.dim, args.layers, args.hidden), x,
                                 args.steps, args.repeats),
    }
    maf = build_recipe("maf", (args.dim,), num_layers=args.layers, hidden=hidden)
    rows["maf"] = {
        "gmjax_ms": gmjax_step_ms(maf, x, args.steps, args.repeats),
        "peer": "zuko " + __import__("zuko").__version__,
        "peer_ms": torch_step_ms(*zuko_maf(args.dim, args.layers, args.hidden), x,
                                 args.steps, args.repeats),
    }
    for row in rows.values():
        row["ratio_peer_over_gmjax"] = row["peer_ms"] / row["gmjax_ms"]
    result = {
        "benchmark": "flows_vs_torch", "config": vars(args), "results": rows,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "jax": jax.__version__, "torch": torch.__version__,
                    "torch_threads": torch.get_num_threads(),
                    "load_average_1_5_15": os.getloadavg()},
    }
    print(f"{'flow':10s} {'gmjax ms':>10s} {'peer ms':>10s} {'peer/gmjax':>11s}  peer")
    for name, row in rows.items():
        print(f"{name:10s} {row['gmjax_ms']:10.3f} {row['peer_ms']:10.3f} "
              f"{row['ratio_peer_over_gmjax']:11.2f}  {row['peer']}")
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as f:
        json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
