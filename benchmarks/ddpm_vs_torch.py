"""DDPM training-step speed: gmjax against PyTorch eager and torch.compile, paired by round.

    python -m benchmarks.ddpm_vs_torch [--models mlp,unet] [--mlp_batch 128] [--unet_batch 128]
        [--steps N] [--rounds 10] [--threads 1] [--peers torch,torch_compile]
        [--hidden 256,256,256] [--channels 32,64,128] [--num_res_blocks 1]
        [--out PATH] [--allow_busy]

Times one Adam step (forward, backward, update) of DDPM's L_simple with
epsilon prediction (``gmjax.objectives.diffusion.ddpm_loss``: a uniform step
index, fresh Gaussian noise, the mean squared error of the predicted noise;
the linear schedule with T = 1000) on one fixed batch, for two networks:

* ``mlp``: the time-conditioned MLP of ``experiments/configs/diffusion_toy.py``
  (3 x 256 SiLU, a 64-wide time embedding) on 2-D points, batch ``--mlp_batch``;
* ``unet``: the U-Net of ``experiments/configs/diffusion_fashion_mnist.py``
  (32, 64, 128 channels at 28, 14 and 7 pixels, one residual block per level,
  a 128-wide time embedding) on 28x28x1 images, batch ``--unet_batch`` (the
  config's 128).

The gmjax network is the one ``experiments/diffusion.py`` trains
(``build_model`` on the config), and its step is the engine's
``make_train_step`` called with ``log=False``, as ``fit`` calls it between
logging steps. Every peer is the same model (``benchmarks/torch_ddpm.py``):

* ``torch``: written in plain PyTorch, eager;
* ``torch_compile``: the same module, the loss and ``optimizer.step`` through
  ``torch.compile`` (inductor, default mode).

Both sides use plain Adam at the config's learning rate (2e-3 for the MLP,
2e-4 for the U-Net; betas 0.9, 0.999, epsilon 1e-8), without the configs'
warm-up, decay or clipping. Before timing, every side gets the same
parameters (gmjax's initial ones moved off their zero-initialized output
layers by ``perturbed_params``) and must agree with gmjax, for the same
step indices and noise, on the network output, the loss and every gradient
(``OUTPUT_TOLERANCE``, ``LOSS_TOLERANCE``, ``GRADIENT_TOLERANCE``), and on the
parameter count; all are printed and written.

Timing, threads and the refusal of an oversubscribed machine are those of
``benchmarks.flows_vs_torch`` (``benchmarks.harness``): every round times
``--steps`` steps of every side (default 20 for the MLP, 2 for the U-Net),
the order rotating; the ratio peer / gmjax (> 1: gmjax is faster) is taken
within each round and reported as median [min, max]; ``--threads`` pins the
process to that many cores (default 1) for both sides. The run refuses to
report from an oversubscribed machine (exit status 3, nothing written)
unless ``--allow_busy``.

Needs the ``peers`` extra (``pip install -e ".[peers]"``: torch CPU build).
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from benchmarks import harness
from benchmarks.flows_vs_torch import configure_threads, count

NAME = "ddpm_vs_torch"
PEERS = ("torch", "torch_compile")
MODELS = ("mlp", "unet")
DEFAULT_STEPS = {"mlp": 20, "unet": 2}
OUTPUT_TOLERANCE = 1e-4    # max |difference| / max(1, max |gmjax output|)
LOSS_TOLERANCE = 1e-5      # relative
GRADIENT_TOLERANCE = 1e-4  # max |difference| / max |gmjax gradient|, over all parameters
CHECK_KEY = 5              # the PRNG key of the agreement check
PERTURBATION = 0.05


def experiment_config(model: str, args):
    """The experiment config of ``model`` with the network flags applied."""
    if model == "mlp":
        from experiments.configs import diffusion_toy

        config = diffusion_toy.get_config()
        config.model.hidden = tuple(args.hidden)
        config.data.batch_size = args.mlp_batch
    else:
        from experiments.configs import diffusion_fashion_mnist

        config = diffusion_fashion_mnist.get_config()
        config.model.channels = tuple(args.channels)
        config.model.num_res_blocks = args.num_res_blocks
        config.data.batch_size = args.unet_batch
    config.model.family = "ddpm"
    config.model.parameterization = "eps"
    config.model.num_steps = args.num_steps
    return config


def describe(config) -> str:
    m = config.model
    if "hidden" in m:
        net = (f"time-conditioned MLP {'-'.join(map(str, m.hidden))} (SiLU), time embedding "
               f"{m.embed_dim}, on 2-D points")
    else:
        net = (f"U-Net channels {tuple(m.channels)}, {m.num_res_blocks} residual block(s) per "
               f"level, time embedding {m.embed_dim}, on 28x28x1 images")
    return (f"{net}; DDPM L_simple (eps prediction), {m.schedule} schedule, T = {m.num_steps}, "
            f"batch {config.data.batch_size}")


def batch_for(model: str, batch: int, seed: int = 0) -> np.ndarray:
    """A fixed batch: 2-D points (mlp) or 28x28x1 images on the 256-level grid of [-1, 1]
    (unet), NHWC as gmjax takes them."""
    rng = np.random.default_rng(seed)
    if model == "mlp":
        return (2.0 * rng.standard_normal((batch, 2))).astype(np.float32)
    return (rng.integers(0, 256, (batch, 28, 28, 1)) / 127.5 - 1.0).astype(np.float32)


def perturbed_params(net, x: np.ndarray, scale: float = PERTURBATION):
    """gmjax's initial parameters plus ``scale`` N(0, 1) noise on every entry (the U-Net's
    blocks and both networks' output layers start at zero)."""
    import jax
    import jax.flatten_util
    import jax.numpy as jnp

    params = jax.jit(net.init)(jax.random.PRNGKey(0), jnp.asarray(x[:1]),
                               jnp.zeros((1,), jnp.float32))
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    return unravel(flat + scale * jax.random.normal(jax.random.PRNGKey(3), flat.shape))


def check_draws(diffusion, x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The step indices ``[n]`` and noise ``[n, ...]`` gmjax's ``ddpm_loss`` draws from
    ``PRNGKey(CHECK_KEY)`` (it splits the key into a step key and a noise key)."""
    import jax

    t_key, noise_key = jax.random.split(jax.random.PRNGKey(CHECK_KEY))
    t = jax.random.randint(t_key, (x.shape[0],), 0, diffusion.schedule.num_steps)
    return np.asarray(t), np.asarray(jax.random.normal(noise_key, x.shape))


def to_torch_layout(a: np.ndarray):
    """NHWC images -> NCHW torch tensors; 2-D points unchanged."""
    import torch

    a = np.array(a, dtype=a.dtype)
    return torch.as_tensor(a.transpose(0, 3, 1, 2).copy() if a.ndim == 4 else a)


def from_torch_layout(a) -> np.ndarray:
    a = a.detach().numpy()
    return a.transpose(0, 2, 3, 1) if a.ndim == 4 else a


def torch_network(model: str, config):
    from benchmarks import torch_ddpm

    m = config.model
    if model == "mlp":
        return torch_ddpm.TimeMLP(2, tuple(m.hidden), m.embed_dim, float(m.num_steps))
    return torch_ddpm.UNet(1, tuple(m.channels), m.num_res_blocks, m.embed_dim,
                           float(m.num_steps))


def agreement(diffusion, params, net, x: np.ndarray) -> Dict[str, float]:
    """How far the torch ``net`` (holding gmjax's ``params``) is from gmjax at the draws of
    ``check_draws``: the network output, L_simple and its gradient (relative measures, see
    the module constants)."""
    import jax
    import jax.numpy as jnp
    import torch

    from benchmarks import torch_ddpm

    loss_fn = diffusion.loss()
    key = jax.random.PRNGKey(CHECK_KEY)
    (loss, _), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(
        params, jnp.asarray(x), key)
    t, noise = check_draws(diffusion, x)
    abar = np.array(diffusion.schedule.alpha_bars)
    a = abar[t].reshape(-1, *([1] * (x.ndim - 1)))
    xt = (np.sqrt(a) * x + np.sqrt(1.0 - a) * noise).astype(np.float32)
    out = np.asarray(jax.jit(diffusion.eps)(params, jnp.asarray(xt), jnp.asarray(t)))
    # The draws are gmjax's: its loss from them is its loss from the key.
    recomputed = float(np.mean((out.astype(np.float64) - noise) ** 2))
    if abs(recomputed - float(loss)) > 1e-4 * abs(float(loss)):
        raise AssertionError(f"check_draws does not reproduce ddpm_loss's draws: "
                             f"{recomputed} vs {float(loss)}")

    tt = torch.as_tensor(t.astype(np.int64))
    net.zero_grad(set_to_none=True)
    with torch.no_grad():
        out_t = from_torch_layout(net(to_torch_layout(xt), tt))
    loss_t = torch_ddpm.ddpm_loss(net, to_torch_layout(x), torch.as_tensor(abar), tt,
                                  to_torch_layout(noise.astype(np.float32)))
    loss_t.backward()
    # gmjax's gradient tree, loaded like parameters into a twin, lines up with torch's.
    twin = copy.deepcopy(net)
    torch_ddpm.load_gmjax(twin, grads)
    scale = max(float(np.max(np.abs(leaf))) for leaf in jax.tree.leaves(grads))
    worst = max(float(np.max(np.abs(p.grad.detach().numpy() - q.detach().numpy())))
                for p, q in zip(net.parameters(), twin.parameters()))
    net.zero_grad(set_to_none=True)
    return {"output": float(np.max(np.abs(out_t - out))) / max(1.0, float(np.max(np.abs(out)))),
            "loss": abs(float(loss_t.detach()) - float(loss)) / abs(float(loss)),
            "gradient": worst / scale}


def sides(model: str, args, peers: Sequence[str]) -> Dict[str, Any]:
    """One model's runs, parameter counts and agreement (raises on a mismatch)."""
    import torch

    from benchmarks import torch_ddpm
    from experiments.diffusion import build_model

    config = experiment_config(model, args)
    diffusion = build_model(config)
    x = batch_for(model, config.data.batch_size)
    params = perturbed_params(diffusion.net, x)
    lr = float(config.optim.lr)
    steps = args.steps or DEFAULT_STEPS[model]
    runs = {"gmjax": harness.engine_runner(diffusion.loss(), params, x, steps, lr)}
    parameters = {"gmjax": count(params)}
    differences = {}
    abar = torch.as_tensor(np.array(diffusion.schedule.alpha_bars))
    for peer in peers:
        net = torch_network(model, config)
        torch_ddpm.load_gmjax(net, params)
        parameters[peer] = torch_ddpm.count_parameters(net)
        differences[peer] = agreement(diffusion, params, net, x)
        limits = {"output": OUTPUT_TOLERANCE, "loss": LOSS_TOLERANCE,
                  "gradient": GRADIENT_TOLERANCE}
        bad = {k: v for k, v in differences[peer].items() if not v <= limits[k]}
        if bad:
            raise AssertionError(f"{model} / {peer}: differs from gmjax beyond {limits}: {bad}")
        runs[peer] = torch_ddpm.train_step_runner(net, to_torch_layout(x), abar, lr, steps,
                                                  compile=peer == "torch_compile")
    if len(set(parameters.values())) != 1:
        raise AssertionError(f"{model}: parameter counts differ: {parameters}")
    return {"runs": runs, "parameters": parameters, "relative_difference": differences,
            "steps_per_round": steps, "lr": lr, "batch": config.data.batch_size,
            "model": describe(config)}


def choose(text: str, valid: Sequence[str], flag: str) -> List[str]:
    names = [v for v in text.split(",") if v]
    unknown = [v for v in names if v not in valid]
    if unknown:
        raise ValueError(f"unknown {flag} {', '.join(unknown)}; valid choices: "
                         f"{', '.join(valid)}")
    return names


def parse_ints(text: str) -> List[int]:
    return [int(v) for v in text.split(",") if v]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated subset of {', '.join(MODELS)}")
    parser.add_argument("--mlp_batch", type=int, default=128)
    parser.add_argument("--unet_batch", type=int, default=128)
    parser.add_argument("--hidden", type=parse_ints, default=[256, 256, 256],
                        help="the MLP's hidden widths")
    parser.add_argument("--channels", type=parse_ints, default=[32, 64, 128],
                        help="the U-Net's widths per level")
    parser.add_argument("--num_res_blocks", type=int, default=1)
    parser.add_argument("--num_steps", type=int, default=1000, help="T of the schedule")
    parser.add_argument("--steps", type=int, default=0,
                        help="steps timed per side and round (default: 20 for the MLP, 2 for "
                             "the U-Net)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for each side (torch and XLA); see flows_vs_torch")
    parser.add_argument("--peers", default=",".join(PEERS),
                        help=f"comma-separated subset of {', '.join(PEERS)}")
    parser.add_argument("--out", default=harness.result_path(NAME))
    harness.add_load_args(parser)
    args = parser.parse_args(argv)
    for name in ("mlp_batch", "unet_batch", "num_res_blocks", "num_steps", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.steps < 0:
        parser.error(f"--steps must be >= 1 (or 0: the defaults), got {args.steps}")
    if not args.hidden or min(args.hidden) < 1 or not args.channels or min(args.channels) < 1:
        parser.error("--hidden and --channels must be positive widths")
    if 28 % 2 ** (len(args.channels) - 1):
        parser.error(f"--channels has {len(args.channels)} levels; 28x28 images allow at most "
                     f"3 (28, 14, 7)")
    try:
        models = choose(args.models, MODELS, "--models")
        peers = choose(args.peers, PEERS, "--peers")
        pinned = configure_threads(args.threads)
    except ValueError as e:
        parser.error(str(e))
    if not models:
        parser.error(f"--models is empty; valid choices: {', '.join(MODELS)}")
    if importlib.util.find_spec("torch") is None:
        print('needs torch: pip install -e ".[peers]"', file=sys.stderr)
        return 1
    import torch

    torch.set_num_threads(args.threads)

    guard = harness.LoadGuard.from_args(args)
    guard.before()
    rows = {}
    for model in models:
        row = sides(model, args, peers)
        rows[model] = harness.measure_sides(row, args.rounds, row["steps_per_round"], guard)

    ok = guard.finish()  # no ratio from an oversubscribed run, unless --allow_busy
    for model, row in rows.items():
        print(f"{model}: {row['model']}; agreement {row['relative_difference']}")
    print(f"{'model':6s} {'side':14s} {'params':>8s} {'ms/step median [min, max]':>30s} "
          f"{'cores':>5s} {'ratio to gmjax, paired' if ok else '':>26s}")
    for model, row in rows.items():
        for side, ms in row["ms_per_step"].items():
            ratio = row["ratio_to_gmjax"].get(side) if ok else None
            print(f"{model:6s} {side:14s} {row['parameters'][side]:8d} "
                  f"{harness.format_spread(ms):>30s} "
                  f"{row['cpu_cores_used'][side]['median']:5.2f} "
                  f"{harness.format_spread(ratio, 2) if ratio else '':>26s}")
    if not ok:
        return harness.EXIT_OVERSUBSCRIBED
    config = {**vars(args), "out": harness.display_path(args.out), "models": models,
              "peers": peers, "pinned_cores": pinned,
              "optimizer": "plain Adam at the config's lr (betas 0.9, 0.999, eps 1e-8), no "
                           "schedule or clipping, on every side",
              "tolerances": {"output": OUTPUT_TOLERANCE, "loss": LOSS_TOLERANCE,
                             "gradient": GRADIENT_TOLERANCE}}
    harness.write_result(
        args.out, NAME, config, rows, argv=argv,
        description="ms per DDPM Adam step (L_simple, eps prediction); ratio = peer ms / "
                    "gmjax ms, paired by round; the same network on every side",
        load=guard.record(), packages=("torch",))
    return 0


if __name__ == "__main__":
    sys.exit(main())
