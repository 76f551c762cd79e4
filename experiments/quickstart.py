"""The quick start: small models on built-in toy data, in a few minutes on a CPU.

    python experiments/quickstart.py --workdir runs/quickstart
    python experiments/quickstart.py --sections=temperflow_circle   # one section only

Each section is an ordinary experiment run in ``<workdir>/<section>/`` (so it
resumes like any other), and ``<workdir>/metrics.json`` gathers their final
metrics. The sections:

* ``flow_<data>``: a flow fitted by maximum likelihood -- four rational-quadratic
  spline couplings to ``8gaussians``, a six-layer RealNVP to ``moons`` --
  ``density.png`` shows data, samples and the learned density, ``curves.png``
  the training loss and test NLL. The spline flow is there because affine
  couplings need far more steps to split eight separated modes: at the default
  3,000 steps RealNVP leaves a smeared ring (``nll_excess``, the paired
  estimate of KL(p || q), 0.23 nats) where four spline couplings reach 0.04.
* ``temperflow_circle``: TemperFlow on the 8-mode circle target with a small
  budget (fewer, shorter stages than ``experiments/configs/temperflow_2d.py``)
  -- ``samples.png`` shows its draws beside exact draws and the target density,
  ``beta_trace.png`` the temperatures it chose, ``weight_trace.png`` the flow's
  mode weights along the way.
* ``vae_digits``: a VAE with a 2-D latent on the 8x8 digits --
  ``manifold.png`` decodes a grid of latent points, ``latent_scatter.png``
  shows the test codes by digit, ``reconstructions.png``, ``samples.png`` and
  ``interpolation.png`` the rest; ``metrics.json`` has the ELBO and the
  importance-sampled test log-likelihood.
* ``cnf_8gaussians``: flow matching (the straight conditional path, Lipman et
  al. 2023) of a time-conditioned velocity field on ``8gaussians``, trained
  without a single ODE solve and evaluated with one (``experiments/cnf.py``) --
  ``trajectories.png`` shows samples moving from the base (t = 0) to the data
  (t = 1), ``density.png`` the CNF density; ``metrics.json`` has the test NLL,
  ``nll_excess`` and the velocity evaluations per sample (``nfe_sample``).
* ``gan_ring``: a non-saturating GAN with MLP players on the 8-mode ring
  (radius 1, sd 0.01) -- ``samples.png`` shows its samples over training as
  a row of panels, ``critic.png`` the discriminator on the plane;
  ``metrics.json`` has the PacGAN mode coverage (``modes_captured`` of 8,
  ``high_quality_frac``).
* ``diffusion_8gaussians``: a DDPM (T = 200, L_simple) with a time-conditioned
  MLP on 8 gaussians -- ``reverse.png`` shows ancestral sampling from noise to
  the samples as a row of panels, ``score.png`` the learned score on the plane;
  ``metrics.json`` has the two-sample distances of ancestral and DDIM samples
  side by side and the variational bound (``elbo``).
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any, Callable, Dict, NamedTuple

import ml_collections
from absl import app, flags

from gmjax import experiment

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the command line; not at import, so tests and other scripts can import
    this module beside scripts that define flags of the same names."""
    flags.DEFINE_string("workdir", "runs/quickstart", "Where every section writes its results.")
    flags.DEFINE_integer("steps", 3_000, "Training steps per section.")
    flags.DEFINE_bool("progress", None, "Show progress bars (default: only on a terminal).")
    flags.DEFINE_list("sections", None, "Run only these sections (default: all of them).")


class Section(NamedTuple):
    experiment: experiment.Experiment
    config: ml_collections.ConfigDict    # the run's config
    defaults: ml_collections.ConfigDict  # the config file it was made from


# Per data set: the flow recipe and the options that differ from the shared ones below.
FLOW_RECIPES: Dict[str, Dict[str, Any]] = {
    "8gaussians": {"model.name": "spline_coupling", "model.num_layers": 4,
                   "data.batch_size": 256, "optim.lr": 3e-3},
    "moons": {"model.name": "realnvp", "model.num_layers": 6},
}


def flow_section(data: str, steps: int) -> Section:
    from experiments import flow
    from experiments.configs import flow_toy

    config = flow_toy.get_config()
    config.data.name = data
    config.data.num_train = 20_000
    config.train.steps = steps
    config.train.log_every = 100
    config.train.eval_every = 1_000
    config.train.checkpoint_every = 1_000
    config.eval.num_samples = 4_000
    for key, value in FLOW_RECIPES[data].items():
        block, name = key.split(".")
        config[block][name] = value
    return Section(flow.EXPERIMENT, config, flow_toy.get_config())


def temperflow_section(steps: int) -> Section:
    """TemperFlow's stages scale with ``steps``: 600 / 100 / 300 steps at the default 3,000."""
    from experiments import temperflow
    from experiments.configs import temperflow_2d

    unit = max(1, steps // 30)
    config = temperflow_2d.get_config()
    config.data.name = "circle"
    config.data.batch_size = 500
    config.sampler.kl_decay = 0.6          # fewer, larger temperature steps
    config.train.steps_per_call = unit
    config.sampler.steps_init = 6 * unit
    config.train.steps = unit              # per middle stage
    config.sampler.steps_final = 3 * unit
    config.eval.replicates = 3
    config.eval.timing_repeats = 1
    return Section(temperflow.EXPERIMENT, config, temperflow_2d.get_config())


def vae_section(steps: int) -> Section:
    """A VAE with a 2-D latent on the 8x8 digits: half of ``steps`` updates (1,500 at the
    default 3,000), 50 per compiled call; a minute or less on two CPU cores."""
    from experiments import vae
    from experiments.configs import vae_digits

    unit = 50
    config = vae_digits.get_config()
    config.train.steps = max(unit, steps // 2 // unit * unit)
    config.train.steps_per_call = unit
    config.train.log_every = unit
    config.train.eval_every = max(unit, config.train.steps // 3 // unit * unit)
    config.train.checkpoint_every = config.train.steps
    config.model.latent_dim = 2
    config.eval.manifold = True
    config.eval.is_samples = 500
    return Section(vae.EXPERIMENT, config, vae_digits.get_config())


def gan_section(steps: int) -> Section:
    """A GAN on the 8-mode ring: two thirds of ``steps`` outer steps (2,000 at the default
    3,000), 10 per compiled call; well under a minute on two CPU cores."""
    from experiments import gan
    from experiments.configs import gan_ring

    unit = 10
    config = gan_ring.get_config()
    config.train.steps = max(unit, 2 * steps // 3 // unit * unit)
    config.train.steps_per_call = unit
    config.train.log_every = 100
    config.train.eval_every = max(unit, config.train.steps // 4 // unit * unit)
    config.train.checkpoint_every = config.train.steps
    config.eval.panels = 5
    return Section(gan.EXPERIMENT, config, gan_ring.get_config())


def diffusion_section(data: str, steps: int) -> Section:
    """A DDPM on a toy density: ``steps`` updates (3,000 at the default), 50 per compiled
    call, T = 200 steps of noise; under a minute on two CPU cores."""
    from experiments import diffusion
    from experiments.configs import diffusion_toy

    unit = 50
    config = diffusion_toy.get_config()
    config.data.name = data
    config.data.num_train = 20_000
    config.data.num_test = 4_000
    config.train.steps = max(unit, steps // unit * unit)
    config.train.steps_per_call = unit
    config.train.log_every = unit
    config.train.eval_every = max(unit, config.train.steps // 3 // unit * unit)
    config.train.checkpoint_every = config.train.steps
    config.model.hidden = (128, 128, 128)
    config.model.num_steps = 200
    config.eval.ddim_steps = 20
    config.eval.num_samples = 2_000
    config.eval.nll_examples = 2_000
    return Section(diffusion.EXPERIMENT, config, diffusion_toy.get_config())


def cnf_section(data: str, steps: int) -> Section:
    """Flow matching on a 2-D toy: ``steps`` updates (3,000 at the default), 50 per compiled
    call, a 64-64 field; training takes seconds, the ODE evaluation most of the minute."""
    from experiments import cnf
    from experiments.configs import cnf_toy

    unit = 50
    config = cnf_toy.get_config()
    config.data.name = data
    config.data.num_train = 20_000
    config.data.num_test = 4_000
    config.model.hidden = (64, 64)
    config.train.steps = max(unit, steps // unit * unit)
    config.train.steps_per_call = unit
    config.train.log_every = unit
    config.train.eval_every = 0
    config.train.checkpoint_every = config.train.steps
    config.eval.num_samples = 4_000
    return Section(cnf.EXPERIMENT, config, cnf_toy.get_config())


# Each section is built (and its script imported) only when it runs.
SECTIONS: Dict[str, Callable[[int], Section]] = {
    "flow_8gaussians": functools.partial(flow_section, "8gaussians"),
    "flow_moons": functools.partial(flow_section, "moons"),
    "temperflow_circle": temperflow_section,
    "vae_digits": vae_section,
    "gan_ring": gan_section,
    "diffusion_8gaussians": functools.partial(diffusion_section, "8gaussians"),
    "cnf_8gaussians": functools.partial(cnf_section, "8gaussians"),
}


def main(argv):
    del argv
    experiment.quiet_logging()
    unknown = sorted(set(FLAGS.sections or ()) - set(SECTIONS))
    if unknown:
        raise app.UsageError(f"--sections: unknown {', '.join(unknown)}; "
                             f"valid: {', '.join(SECTIONS)}")
    summary: Dict[str, Any] = {}
    for name, build in SECTIONS.items():
        if FLAGS.sections and name not in FLAGS.sections:
            continue
        section = build(FLAGS.steps)
        workdir = os.path.join(FLAGS.workdir, name)
        print(f"== {name} -> {workdir}", flush=True)
        summary[name] = dict(experiment.run(section.experiment, section.config, workdir,
                                            progress=FLAGS.progress, defaults=section.defaults))
        print(json.dumps({k: float(f"{v:.4g}") if isinstance(v, float) else v
                          for k, v in summary[name].items()}), flush=True)
    path = experiment.write_metrics(FLAGS.workdir, summary)
    print(f"quick start done: {path}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
