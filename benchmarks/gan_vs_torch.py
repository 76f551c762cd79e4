"""GAN training-step speed: gmjax's DCGAN step against the same model in PyTorch, paired by round.

    python -m benchmarks.gan_vs_torch [--channels 32] [--latent_dim 32] [--batch 64]
        [--steps 20] [--rounds 15] [--threads 1] [--peers torch,torch_compile]
        [--out PATH] [--allow_busy]

Times one outer step of the non-saturating game on one fixed batch of
``batch`` uint8 28x28 images: one discriminator update (real batch, fresh
fakes treated as data) and one generator update (new latents), Adam with
lr 5e-4 and b1 0.5 for both players (``experiments/configs/gan_fashion_mnist.py``).

**Model**: gmjax's ``dcgan`` networks with ``norm="pixel"`` and
``upsample="resize"`` (the Fashion-MNIST config's), ``channels`` ``c`` and
latent size ``latent_dim``. Every peer is that same model
(``benchmarks/torch_gan.py``):

* ``torch``: written in plain PyTorch, eager;
* ``torch_compile``: the same modules, both losses and both ``optimizer.step``
  through ``torch.compile`` (inductor, default mode).

Before timing, the torch side gets gmjax's parameters and must agree with
gmjax on ``G(z)``, ``d(x)`` and both losses for one fixed ``z`` and batch
(to 1e-4), and on the parameter count; both are printed and written.

The gmjax step is ``make_minmax_step`` (``critic_steps=1``) on the game of
``GAN.game``, called with ``log=False`` as ``fit`` calls it between logging
steps.

Timing, threads and the refusal of an oversubscribed machine are those of
``benchmarks.flows_vs_torch`` (``benchmarks.harness``; ``--threads`` pins
both sides to the same cores, default 1; exit status 3 and nothing written
when busy, unless ``--allow_busy``).

Needs the ``peers`` extra (``pip install -e ".[peers]"``: torch CPU build).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from typing import Any, Callable, Dict, Optional, Sequence

import numpy as np

from benchmarks import harness
from benchmarks.flows_vs_torch import configure_threads, count

NAME = "gan_vs_torch"
PEERS = ("torch", "torch_compile")
OUTPUT_TOLERANCE = 1e-4
LR, B1 = 5e-4, 0.5  # experiments/configs/gan_fashion_mnist.py


def model_config(channels: int, latent_dim: int) -> Dict[str, Any]:
    """The ``model`` block of the benchmarked GAN."""
    return {"name": "dcgan", "latent_dim": latent_dim, "channels": channels, "norm": "pixel",
            "upsample": "resize", "loss": "non_saturating"}


def gmjax_side(channels: int, latent_dim: int):
    """``(gan, game, gen_params, critic_params)`` of the benchmarked DCGAN."""
    import jax

    from gmjax.models.gan import build_gan

    gan = build_gan(model_config(channels, latent_dim), (28, 28, 1))
    game = gan.game(model_config(channels, latent_dim), critic_steps=1)
    gen_params, critic_params = jax.jit(gan.init)(jax.random.PRNGKey(0))
    return gan, game, gen_params, critic_params


def gmjax_runner(game, gen_params, critic_params, x: np.ndarray,
                 steps: int) -> Callable[[], None]:
    """``run()``: ``steps`` engine min-max steps (``log=False``) on the batch ``x``."""
    import jax
    import jax.numpy as jnp
    import optax

    from gmjax.training import MinMaxState, data_mesh, make_minmax_step, replicate

    mesh = data_mesh(1)
    gen_opt, critic_opt = optax.adam(LR, b1=B1), optax.adam(LR, b1=B1)
    critic_params, game_state = game.init(critic_params)
    state = MinMaxState.create(gen_params, critic_params, gen_opt, critic_opt,
                               jax.random.PRNGKey(1), game=game_state)
    holder = {"state": replicate(state, mesh)}
    step = make_minmax_step(game.critic_loss, game.gen_loss, critic_opt, gen_opt, mesh,
                            critic_steps=1, stateful=True)
    batch = jnp.asarray(x[None])  # [critic_steps = 1, batch, 28, 28, 1]; one device

    def run() -> None:
        state = holder["state"]
        for _ in range(steps):
            state, _ = step(state, batch, log=False)
        jax.block_until_ready(state)
        holder["state"] = state

    return run


def agreement(gan, game, gen_params, critic_params, generator, discriminator,
              x: np.ndarray) -> Dict[str, float]:
    """Max |gmjax - torch| of ``G(z)``, ``d(x)``, ``d(G(z))`` and both losses (fixed ``z``)."""
    import jax
    import jax.numpy as jnp
    import torch

    from benchmarks import torch_gan
    from gmjax.objectives.adversarial import sample_latent

    key = jax.random.PRNGKey(5)
    z = np.asarray(sample_latent(key, x.shape[0], gan.latent_dim))
    fake = np.asarray(jax.jit(gan.generate)(gen_params, jnp.asarray(z)))
    real_logits = np.asarray(jax.jit(game.network(critic_params, None))(
        jnp.asarray(x, jnp.float32) * (2.0 / 255.0) - 1.0))
    fake_logits = np.asarray(jax.jit(game.network(critic_params, None))(jnp.asarray(fake)))
    critic_loss, _ = jax.jit(game.critic_loss)(critic_params, gen_params, jnp.asarray(x), key,
                                               None)
    gen_loss, _ = jax.jit(game.gen_loss)(gen_params, critic_params, jnp.asarray(x), key, None)
    with torch.no_grad():
        zt, xt = torch.as_tensor(np.array(z)), torch.as_tensor(np.array(x))
        fake_t = generator(zt)
        errors = {
            "generator": np.max(np.abs(fake_t.permute(0, 2, 3, 1).numpy() - fake)),
            "d_real": np.max(np.abs(discriminator(torch_gan.to_model_space(xt)).numpy()
                                    - real_logits)),
            "d_fake": np.max(np.abs(discriminator(fake_t).numpy() - fake_logits)),
            "critic_loss": abs(float(torch_gan.critic_loss(
                discriminator, torch_gan.to_model_space(xt), fake_t)) - float(critic_loss)),
            "gen_loss": abs(float(torch_gan.generator_loss(discriminator, fake_t))
                            - float(gen_loss)),
        }
    return {name: float(v) for name, v in errors.items()}


def sides(args, peers: Sequence[str], x: np.ndarray) -> Dict[str, Any]:
    """The DCGAN row's runs, parameter counts and output agreement (asserted)."""
    import torch

    from benchmarks import torch_gan

    gan, game, gen_params, critic_params = gmjax_side(args.channels, args.latent_dim)
    runs = {"gmjax": gmjax_runner(game, gen_params, critic_params, x, args.steps)}
    parameters = {"gmjax": count(gen_params) + count(critic_params)}
    errors = {}
    for peer in peers:
        generator = torch_gan.Generator(args.latent_dim, args.channels)
        discriminator = torch_gan.Discriminator(args.channels)
        torch_gan.load_gmjax(generator, discriminator, gen_params, critic_params)
        errors[peer] = agreement(gan, game, gen_params, critic_params, generator,
                                 discriminator, x)
        worst = max(errors[peer].values())
        if worst > OUTPUT_TOLERANCE:
            raise AssertionError(f"{peer}: outputs differ from gmjax's: {errors[peer]}")
        parameters[peer] = (torch_gan.count_parameters(generator)
                            + torch_gan.count_parameters(discriminator))
        runs[peer] = torch_gan.train_step_runner(
            generator, discriminator, torch.as_tensor(x), args.latent_dim, args.steps, LR, B1,
            compile=peer == "torch_compile")
    if len(set(parameters.values())) != 1:
        raise AssertionError(f"parameter counts differ: {parameters}")
    return {"runs": runs, "parameters": parameters, "max_abs_difference": errors}


def available_peers(requested: Sequence[str]) -> list:
    return harness.available_peers(requested, PEERS)


def measure(row: Dict[str, Any], args, guard: harness.LoadGuard) -> Dict[str, Any]:
    return harness.measure_sides(row, args.rounds, args.steps, guard)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--latent_dim", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="steps timed per side and round")
    parser.add_argument("--rounds", "--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for each side (torch and XLA); see flows_vs_torch")
    parser.add_argument("--peers", default=",".join(PEERS),
                        help=f"comma-separated subset of {', '.join(PEERS)}")
    parser.add_argument("--out", default=harness.result_path(NAME))
    harness.add_load_args(parser)
    args = parser.parse_args(argv)
    for name in ("channels", "latent_dim", "batch", "steps", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")

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
    x = np.random.default_rng(0).integers(0, 256, size=(args.batch, 28, 28, 1), dtype=np.uint8)
    rows = {"dcgan": measure(sides(args, peers, x), args, guard)}

    ok = guard.finish()  # no ratio from an oversubscribed run, unless --allow_busy
    harness.print_rows(rows, ok, "model")
    if not ok:
        return harness.EXIT_OVERSUBSCRIBED
    config = {**vars(args), "out": harness.display_path(args.out), "peers": peers,
              "pinned_cores": pinned, "model": model_config(args.channels, args.latent_dim),
              "optimizer": f"Adam lr {LR:g}, b1 {B1:g} (b2 0.999, eps 1e-8) for both players"}
    harness.write_result(
        args.out, NAME, config, rows, argv=argv,
        description="ms per outer GAN step (one discriminator + one generator Adam update, "
                    "non-saturating loss); ratio = peer ms / gmjax ms, paired by round; "
                    "DCGAN (pixel norm, resize-convolutions) on 28x28 images on every side",
        load=guard.record(), packages=("torch",))
    return 0


if __name__ == "__main__":
    sys.exit(main())
