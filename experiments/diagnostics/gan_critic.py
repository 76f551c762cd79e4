"""How sharply a trained 2-D GAN's critic separates data from fakes, from a run's checkpoint.

    python -m experiments.diagnostics.gan_critic runs/gan_grid/hinge_sn_s0 \
        runs/gan_grid/hinge_s0 runs/gan_grid/non_saturating_s0 [--draws 2048]

For each workdir of ``experiments/gan.py`` on a 2-D mixture (only read),
restores the last checkpoint's critic (and its game state, e.g. the
spectral-norm vectors) and generator, and prints on ``--draws`` fresh data
points and as many draws of the (un-averaged) generator:

* ``gap``: mean critic output on data minus on fakes (for a Lipschitz-1
  critic at most the Wasserstein-1 distance between the two);
* ``|grad_x f|``: the mean norm of the critic's input gradient on data and
  on fakes, the signal a fake receives about where to move;
* the share of fakes within 3 sd of a mode (the PacGAN protocol's
  high-quality fraction).

A critic whose gradient is tiny everywhere (spectral normalization of every
layer bounds the Lipschitz constant by the product of the layers' bounds,
and the trained network stays far below it) cannot tell a sample 3 sd off a
mode (0.15 on the grid) from one on it: its generator gets no push towards
the modes.
"""

from __future__ import annotations

import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from experiments import gan as gan_experiment
from gmjax.models.gan.mixtures import MODE_MIXTURES, sample_mixture
from gmjax.models.restore import restore_state_fields, saved_steps

FLAGS = flags.FLAGS


def diagnose(workdir: str, draws: int) -> dict:
    """The measurements of one run (module doc)."""
    import ml_collections

    with open(os.path.join(workdir, "config.json")) as f:
        config = ml_collections.ConfigDict(json.load(f))
    if config.data.name not in MODE_MIXTURES:
        raise ValueError(f"{workdir} trained on {config.data.name!r}, not a 2-D mixture")
    if config.model.get("conditional", False):
        raise ValueError(f"{workdir} is a conditional GAN; this diagnostic reads unconditional "
                         f"critics")
    gan, game = gan_experiment.build(config)
    gen_abstract, critic_abstract = gan.abstract_params()
    critic_params, game_state = jax.eval_shape(game.init, critic_abstract)
    directory = os.path.join(workdir, "checkpoints")
    step = max(saved_steps(directory))
    fields = {"gen_params": gen_abstract, "critic_params": critic_params}
    if game_state is not None:
        fields["game"] = game_state
    state = restore_state_fields(directory, step, fields)
    f = game.network(state["critic_params"], state.get("game"))
    mixture = MODE_MIXTURES[config.data.name]
    real = jnp.asarray(sample_mixture(config.data.name, draws, 12345))
    fake = gan.generate(state["gen_params"], jax.random.normal(jax.random.PRNGKey(7),
                                                               (draws, gan.latent_dim)))
    grad = jax.grad(lambda x: jnp.sum(f(x)))
    nearest = np.min(np.linalg.norm(np.asarray(fake)[:, None] - mixture.centers[None], axis=-1),
                     axis=1)
    return {"workdir": workdir, "step": step,
            "gap": float(jnp.mean(f(real)) - jnp.mean(f(fake))),
            "grad_norm_real": float(jnp.mean(jnp.linalg.norm(grad(real), axis=-1))),
            "grad_norm_fake": float(jnp.mean(jnp.linalg.norm(grad(fake), axis=-1))),
            "high_quality_frac": float(np.mean(nearest <= 3 * mixture.sd))}


def main(argv):
    if len(argv) < 2:
        raise app.UsageError("give one or more workdirs of experiments/gan.py 2-D runs")
    for workdir in map(os.path.abspath, argv[1:]):
        try:
            result = diagnose(workdir, FLAGS.draws)
        except (OSError, ValueError) as e:
            print(f"{workdir}: {e}", file=sys.stderr)
            continue
        print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v)
                          for k, v in result.items()}), flush=True)


if __name__ == "__main__":
    flags.DEFINE_integer("draws", 2048, "Data points and generator draws.")
    app.run(main)
