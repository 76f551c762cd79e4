"""The variance of the VAE's gradient estimators on one model and batch, across training.

    python experiments/vae_gradient_variance.py --workdir runs/vae_gradient_variance

A VAE (MLP, latent size ``--latent_dim``) is trained on the dynamically
binarized 8x8 digits with the ELBO and the reparameterization gradient. At
``--num_checkpoints`` points of training (step 0 and geometrically spaced
steps up to ``--steps``), on one fixed batch of ``--batch_size`` binarized
test images, each estimator's gradient of the batch-mean negative bound with
respect to the encoder's parameters phi is drawn ``--num_draws`` times with
independent keys, and the study reports

    Var = sum_j Var_draws[g_j],      |E g|^2 = sum_j (mean_draws g_j)^2,

summed over every coordinate j of phi. The estimators
(``gmjax.objectives.elbo.GRADIENT_ESTIMATORS``):

* ELBO with one sample and a Monte Carlo KL, so all three estimate the same
  quantity from the same draw: ``total`` (reparameterization; Kingma &
  Welling, 2014), ``stl`` (path derivative; Roeder et al., 2017) and
  ``score`` (REINFORCE; Williams, 1992) with a constant baseline set to the
  batch's mean ELBO at that point of training (what the running-mean
  baseline tracks);
* the IWAE bound with ``--iwae_k`` samples: ``total`` and ``dreg`` (Tucker et
  al., 2019).

Writes ``gradient_variance.json`` (steps, variances, squared norms of the
mean gradients, the settings) and ``gradient_variance.png`` (variance against
the training step, log scale) into ``--workdir``.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Dict, List, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags

from gmjax.data import BatchIterator, binarize_dynamic, binarize_static, load_dataset
from gmjax.models.vae import build_vae
from gmjax.objectives.elbo import BASELINE_KEY, elbo_loss, iwae_loss, init_baseline
from gmjax.viz.vae import plot_gradient_variance

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the command line (not at import: tests import this module)."""
    flags.DEFINE_string("workdir", "runs/vae_gradient_variance", "Where to write the results.")
    flags.DEFINE_integer("steps", 3_000, "Training steps of the model.")
    flags.DEFINE_integer("num_checkpoints", 6, "Points of training at which to measure.")
    flags.DEFINE_integer("num_draws", 200, "Gradient draws per estimator and point.")
    flags.DEFINE_integer("batch_size", 100, "Examples in the fixed batch (and training batch).")
    flags.DEFINE_integer("latent_dim", 8, "Latent size of the VAE.")
    flags.DEFINE_integer("iwae_k", 10, "Samples of the IWAE bound.")
    flags.DEFINE_integer("seed", 0, "Random seed.")


def checkpoint_steps(steps: int, num: int) -> List[int]:
    """0 and ``num - 1`` roughly geometrically spaced steps ending at ``steps``."""
    if num < 2 or steps < 1:
        raise ValueError(f"need --num_checkpoints >= 2 and --steps >= 1, got {num} and {steps}")
    later = np.round(np.geomspace(max(1, steps / 100), steps, num - 1)).astype(int)
    later[-1] = steps
    return [0, *sorted({int(s) for s in later})]


def estimator_losses(model, iwae_k: int) -> Dict[str, Callable]:
    """``{label: loss(params, x, key)}`` for every estimator the study compares."""
    return {
        "ELBO total": elbo_loss(model, kl="mc", estimator="total"),
        "ELBO stl": elbo_loss(model, kl="mc", estimator="stl"),
        "ELBO score + baseline": elbo_loss(model, kl="mc", estimator="score",
                                           baseline="running_mean"),
        f"IWAE k={iwae_k} total": iwae_loss(model, num_samples=iwae_k, estimator="total"),
        f"IWAE k={iwae_k} dreg": iwae_loss(model, num_samples=iwae_k, estimator="dreg"),
    }


def gradient_statistics(loss: Callable, params: Any, x: jax.Array, key: jax.Array,
                        num_draws: int) -> Tuple[jax.Array, jax.Array]:
    """``(variance, mean_sq_norm)`` of ``grad_phi loss(params, x, key)`` over ``num_draws``
    keys, summed over the encoder's coordinates (jittable)."""

    def encoder_grad(k):
        grads = jax.grad(lambda p: loss(p, x, k)[0])(params)
        return jnp.concatenate([g.ravel() for g in jax.tree.leaves(grads["encoder"])])

    draws = jax.lax.map(encoder_grad, jax.random.split(key, num_draws))
    return (jnp.sum(jnp.var(draws, axis=0, ddof=1)),
            jnp.sum(jnp.mean(draws, axis=0) ** 2))


def run(workdir: str, *, steps: int, num_checkpoints: int, num_draws: int, batch_size: int,
        latent_dim: int, iwae_k: int, seed: int) -> Dict[str, Any]:
    """Trains the VAE, measures every estimator at each checkpoint, writes JSON and PNG."""
    if num_draws < 2 or batch_size < 1 or latent_dim < 1 or iwae_k < 2:
        raise ValueError(f"need --num_draws >= 2, --batch_size >= 1, --latent_dim >= 1 and "
                         f"--iwae_k >= 2, got {num_draws}, {batch_size}, {latent_dim}, {iwae_k}")
    measure_at = checkpoint_steps(steps, num_checkpoints)
    train = load_dataset("digits", "train").x
    test = load_dataset("digits", "test").x
    x = jnp.asarray(binarize_static(test[:batch_size], np.random.default_rng(seed)))
    model = build_vae({"name": "vae", "net": "mlp", "hidden": (128, 128),
                       "latent_dim": latent_dim}, train.shape[1:])
    key = jax.random.PRNGKey(seed)
    init_key, train_key, measure_key = jax.random.split(key, 3)
    params = model.init(init_key, x[:1])
    train_loss = elbo_loss(model, preprocess=binarize_dynamic)  # total, analytic KL
    optimizer = optax.adam(1e-3)
    opt_state = optimizer.init(params)

    @jax.jit
    def update(params, opt_state, batch, k):
        grads, _ = jax.grad(train_loss, has_aux=True)(params, batch, k)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    losses = estimator_losses(model, iwae_k)
    measure = {name: jax.jit(lambda p, k, loss=loss: gradient_statistics(loss, p, x, k,
                                                                         num_draws))
               for name, loss in losses.items()}
    mean_elbo = jax.jit(lambda p, k: elbo_loss(model, kl="mc")(p, x, k)[1]["elbo"])
    batches = BatchIterator(np.asarray(train), batch_size, seed=seed)
    results: Dict[str, Dict[str, List[float]]] = {
        stat: {name: [] for name in losses} for stat in ("variance", "mean_sq_norm")}
    elbos: List[float] = []
    step = 0
    for target in measure_at:
        while step < target:
            params, opt_state = update(params, opt_state, jnp.asarray(batches.batch(step)),
                                       jax.random.fold_in(train_key, step))
            step += 1
        point_key = jax.random.fold_in(measure_key, step)
        elbo = float(jnp.mean(jax.vmap(lambda k: mean_elbo(params, k))(
            jax.random.split(point_key, 64))))
        elbos.append(elbo)
        # The score estimator's constant baseline: the batch's mean ELBO here.
        scored = init_baseline(params, "running_mean", point_key, x[:1])
        scored[BASELINE_KEY] = {"mean": jnp.asarray(elbo, jnp.float32)}
        for name in losses:
            p = scored if name.startswith("ELBO score") else params
            variance, sq_norm = measure[name](p, point_key)
            results["variance"][name].append(float(variance))
            results["mean_sq_norm"][name].append(float(sq_norm))
        print(json.dumps({"step": step, "elbo": round(elbo, 3),
                          **{n: float(f"{v[-1]:.4g}") for n, v in results["variance"].items()}}),
              flush=True)

    summary = {"steps": measure_at, "elbo": elbos, **results,
               "settings": {"steps": steps, "num_draws": num_draws, "batch_size": batch_size,
                            "latent_dim": latent_dim, "iwae_k": iwae_k, "seed": seed,
                            "data": "digits (binarized test batch)",
                            "parameters": "encoder (phi)"}}
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "gradient_variance.json"), "w") as f:
        json.dump(summary, f, indent=2)
    plot_gradient_variance(os.path.join(workdir, "gradient_variance.png"), measure_at,
                           results["variance"],
                           title=f"VAE on 8x8 digits: {num_draws} gradient draws on one batch "
                                 f"of {batch_size}")
    return summary


def main(argv):
    del argv
    try:
        run(FLAGS.workdir, steps=FLAGS.steps, num_checkpoints=FLAGS.num_checkpoints,
            num_draws=FLAGS.num_draws, batch_size=FLAGS.batch_size, latent_dim=FLAGS.latent_dim,
            iwae_k=FLAGS.iwae_k, seed=FLAGS.seed)
    except ValueError as e:
        raise app.UsageError(str(e)) from None


if __name__ == "__main__":
    define_flags()
    app.run(main)
