"""The generator's gradient as the discriminator grows confident: minimax vs non-saturating.

    python experiments/gan_vanishing_gradient.py --workdir runs/gan_vanishing_gradient

Goodfellow et al. (2014, Sec. 3) and Arjovsky and Bottou ("Towards principled
methods for training GANs", ICLR 2017, Sec. 2.2 and Fig. 2) argue that the
minimax generator loss ``L_G = E_z log(1 - D(G(z)))`` saturates: with
``D = sigmoid(d)``, ``grad L_G = -E_z D(G(z)) grad d(G(z))``, which vanishes
as the discriminator rejects the fakes (``D(G(z)) -> 0``), while the
non-saturating loss ``-E_z log D(G(z))`` has gradient
``-E_z (1 - D(G(z))) grad d(G(z))``, which does not.

The study fixes a generator (the MLP of ``experiments/configs/gan_ring.py``
at initialization, and after ``--pretrain_steps`` steps of the
non-saturating game), trains a fresh discriminator alone on the 8-mode ring
against it with the BCE loss (Adam, ``--lr``), and every ``--measure_every``
discriminator updates records, on one fixed batch of ``--batch_size`` real
points and latents, the mean ``D(G(z))``, the discriminator's accuracy
(``D > 1/2`` on real, ``< 1/2`` on fake) and the norm of the gradient of
both generator losses with respect to the generator's parameters. Repeated
over ``--seeds`` seeds.

Writes ``gan_vanishing_gradient.json`` and ``gan_vanishing_gradient.png``
(gradient norm, log scale, against discriminator updates and against mean
``D(G(z))``) into ``--workdir``.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags

from gmjax.models.gan import build_gan, sample_mixture
from gmjax.objectives.adversarial import make_gan_game
from gmjax.objectives.adversarial.losses import (discriminator_loss, minimax_generator_loss,
                                                 non_saturating_generator_loss)

FLAGS = flags.FLAGS
LOSSES = {"minimax": minimax_generator_loss, "non_saturating": non_saturating_generator_loss}
HIDDEN = (128, 128, 128)  # the players of experiments/configs/gan_ring.py


def define_flags() -> None:
    """Defines the command line (not at import: tests import this module)."""
    flags.DEFINE_string("workdir", "runs/gan_vanishing_gradient", "Where to write the results.")
    flags.DEFINE_integer("critic_steps", 2_000, "Discriminator updates against the fixed G.")
    flags.DEFINE_integer("measure_every", 50, "Discriminator updates between measurements.")
    flags.DEFINE_integer("pretrain_steps", 500, "Non-saturating game steps of the second G.")
    flags.DEFINE_integer("batch_size", 256, "Real points and latents per batch.")
    flags.DEFINE_float("lr", 1e-3, "Adam learning rate of the discriminator (b1 = 0.5).")
    flags.DEFINE_integer("seeds", 3, "Seeds (generator init, data, discriminator init).")


def pretrain(gan, gen_params, critic_params, x: np.ndarray, steps: int, batch_size: int,
             key: jax.Array):
    """``steps`` steps of the plain non-saturating game (Adam 1e-3, b1 0.5): the generator."""
    if steps == 0:
        return gen_params
    game = make_gan_game(gan.generator, gan.discriminator, gan.latent_dim)
    opt = optax.adam(1e-3, b1=0.5)
    state = (gen_params, critic_params, opt.init(gen_params), opt.init(critic_params))

    @jax.jit
    def step(state, i):
        g, c, gs, cs = state
        k = jax.random.fold_in(key, i)
        batch = jnp.asarray(x)[jax.random.randint(jax.random.fold_in(k, 7), (batch_size,), 0,
                                                  len(x))]
        cg, _ = jax.grad(game.critic_loss, has_aux=True)(c, g, batch, k, None)
        u, cs = opt.update(cg, cs, c)
        c = optax.apply_updates(c, u)
        gg, _ = jax.grad(game.gen_loss, has_aux=True)(g, c, batch, jax.random.fold_in(k, 1), None)
        u, gs = opt.update(gg, gs, g)
        return (optax.apply_updates(g, u), c, gs, cs), None

    state, _ = jax.lax.scan(step, state, jnp.arange(steps))
    return state[0]


def measure_run(gan, gen_params, x: np.ndarray, key: jax.Array, *, critic_steps: int,
                measure_every: int, batch_size: int, lr: float) -> Dict[str, List[float]]:
    """Trains a fresh discriminator against the fixed ``gen_params``; the measurements."""
    init_key, train_key, fixed_key = jax.random.split(key, 3)
    critic_params = gan.discriminator.init(init_key, jnp.zeros((1, 2)))
    opt = optax.adam(lr, b1=0.5)
    data = jnp.asarray(x)
    real = data[jax.random.randint(fixed_key, (batch_size,), 0, len(x))]
    z = jax.random.normal(jax.random.fold_in(fixed_key, 1), (batch_size, gan.latent_dim))
    d = gan.discriminator.apply

    def update(carry, i):
        c, s = carry
        k = jax.random.fold_in(train_key, i)
        batch = data[jax.random.randint(k, (batch_size,), 0, len(x))]
        fake = gan.generator.apply(gen_params, jax.random.normal(
            jax.random.fold_in(k, 1), (batch_size, gan.latent_dim)))
        grads = jax.grad(lambda c: discriminator_loss(d(c, batch), d(c, fake)))(c)
        u, s = opt.update(grads, s, c)
        return (optax.apply_updates(c, u), s), None

    @jax.jit
    def train(carry, start):
        carry, _ = jax.lax.scan(update, carry, start + jnp.arange(measure_every))
        return carry

    @jax.jit
    def measure(c):
        fake_logits = d(c, gan.generator.apply(gen_params, z))
        real_logits = d(c, real)
        out = {"mean_d_fake": jnp.mean(jax.nn.sigmoid(fake_logits)),
               "mean_d_real": jnp.mean(jax.nn.sigmoid(real_logits)),
               "accuracy": 0.5 * (jnp.mean(real_logits > 0) + jnp.mean(fake_logits < 0))}
        for name, loss in LOSSES.items():
            grads = jax.grad(lambda g: loss(d(c, gan.generator.apply(g, z))))(gen_params)
            out[f"grad_norm_{name}"] = optax.tree.norm(grads)
        return out

    carry = (critic_params, opt.init(critic_params))
    record: Dict[str, List[float]] = {"critic_step": []}
    for start in range(0, critic_steps + 1, measure_every):
        if start:
            carry = train(carry, start - measure_every)
        values = jax.device_get(measure(carry[0]))
        record["critic_step"].append(start)
        for name, value in values.items():
            record.setdefault(name, []).append(float(value))
    return record


def run(workdir: str, *, critic_steps: int, measure_every: int, pretrain_steps: int,
        batch_size: int, lr: float, seeds: int) -> Dict[str, Any]:
    """Every (generator, seed) run; writes the JSON and the figure into ``workdir``."""
    if critic_steps < 1 or measure_every < 1 or critic_steps % measure_every:
        raise ValueError(f"need --critic_steps >= 1 a multiple of --measure_every >= 1, got "
                         f"{critic_steps} and {measure_every}")
    if pretrain_steps < 0 or batch_size < 1 or seeds < 1 or not lr > 0:
        raise ValueError(f"need --pretrain_steps >= 0, --batch_size >= 1, --seeds >= 1 and "
                         f"--lr > 0, got {pretrain_steps}, {batch_size}, {seeds}, {lr}")
    gan = build_gan({"name": "mlp", "latent_dim": 2, "hidden": HIDDEN, "remedy": "none"}, (2,))
    generators = {"G at initialization": 0, f"G after {pretrain_steps} game steps":
                  pretrain_steps}
    runs = []
    for seed in range(seeds):
        x = sample_mixture("ring", 50_000, seed)
        key = jax.random.PRNGKey(seed)
        gen_params, critic_params = gan.init(key)
        for label, steps in generators.items():
            g = pretrain(gan, gen_params, critic_params, x, steps, batch_size,
                         jax.random.fold_in(key, 1))
            record = measure_run(gan, g, x, jax.random.fold_in(key, 2), critic_steps=critic_steps,
                                 measure_every=measure_every, batch_size=batch_size, lr=lr)
            runs.append({"generator": label, "pretrain_steps": steps, "seed": seed, **record})
            last = {k: f"{v[-1]:.3g}" for k, v in record.items() if k != "critic_step"}
            print(json.dumps({"generator": label, "seed": seed, **last}), flush=True)
    summary = {"description": "Norm of the generator's gradient (all parameters) of the minimax "
                              "and non-saturating losses on one fixed batch, while a fresh "
                              "discriminator trains alone against the fixed generator on the "
                              "8-mode ring (MLPs 3 x 128, BCE loss, Adam b1 0.5).",
               "command": f"python3 experiments/gan_vanishing_gradient.py "
                          f"--critic_steps={critic_steps} --measure_every={measure_every} "
                          f"--pretrain_steps={pretrain_steps} --batch_size={batch_size} "
                          f"--lr={lr:g} --seeds={seeds}",
               "settings": {"critic_steps": critic_steps, "measure_every": measure_every,
                            "pretrain_steps": pretrain_steps, "batch_size": batch_size,
                            "lr": lr, "seeds": seeds, "hidden": list(HIDDEN)},
               "runs": runs}
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "gan_vanishing_gradient.json"), "w") as f:
        json.dump(summary, f, indent=1)
    plot(os.path.join(workdir, "gan_vanishing_gradient.png"), runs)
    return summary


def plot(path: str, runs: List[Dict[str, Any]]) -> str:
    """Gradient norms against discriminator updates and against mean D(G(z)), log y."""
    import matplotlib.pyplot as plt

    from gmjax.viz.figure import legend, panels, save_figure, style_axes

    fig, axes = panels(1, 2, (5.0, 3.8))
    left, right = axes[0]
    labels = sorted({r["generator"] for r in runs}, key=lambda s: ("init" not in s, s))
    styles = {name: style for name, style in zip(labels, ("-", "--", ":"))}
    colors = {"minimax": "C3", "non_saturating": "C0"}
    for r in runs:
        for loss, color in colors.items():
            first = r["seed"] == 0
            name = f"{loss}, {r['generator']}" if first else None
            grads = np.maximum(np.asarray(r[f"grad_norm_{loss}"]), 1e-30)
            left.plot(r["critic_step"], grads, styles[r["generator"]], color=color, lw=1.2,
                      alpha=0.8, label=name)
            right.plot(r["mean_d_fake"], grads, "o" if "init" in r["generator"] else "^",
                       color=color, ms=3, alpha=0.6, ls="none", label=name)
    left.set_yscale("log")
    right.set_yscale("log")
    right.set_xscale("log")
    right.invert_xaxis()  # left to right: the discriminator grows more confident
    style_axes(left, "discriminator updates against the fixed G",
               "||grad_G L_G|| (generator parameters)", "gradient vs training of D")
    style_axes(right, "mean D(G(z)) on a fixed batch (log, decreasing)",
               "||grad_G L_G|| (generator parameters)", "gradient vs D's confidence")
    legend(left)
    out = save_figure(fig, path, "The minimax generator loss saturates as D rejects the fakes")
    plt.close(fig)
    return out


def main(argv):
    del argv
    try:
        run(FLAGS.workdir, critic_steps=FLAGS.critic_steps, measure_every=FLAGS.measure_every,
            pretrain_steps=FLAGS.pretrain_steps, batch_size=FLAGS.batch_size, lr=FLAGS.lr,
            seeds=FLAGS.seeds)
    except ValueError as e:
        raise app.UsageError(str(e)) from None


if __name__ == "__main__":
    define_flags()
    app.run(main)
