"""Where a Clayton run's flow lacks the target's mass, from exact draws of p.

    python experiments/diagnostics/missing_mass.py \
        --workdir runs/temperflow_clayton/p16-temperflow [--stage 21] [--draws 40000]

Restores the flow after ``--stage`` stages (the workdir is only read), draws
X ~ p exactly and prints the forward KL(p || q) = E_p[log f - log q] (the
Clayton density is normalized), then E_p[log f - log q] within groups of the
draws (``gmjax.experiment.temperflow.missing_mass``):

* by the number of negative coordinates among the first 8 (the sign pattern's
  count; 8 is the all-negative pattern, which holds a third of the mass), with
  the flow's own share of each count beside p's: the copula's dependence makes
  p's shares U-shaped, while a flow that lost the dependence has nearly
  binomial ones;
* by quantiles of sum_j log F_j(X_j), the depth of X in the copula's joint
  lower tail. Clayton copulas are lower-tail dependent: when one coordinate is
  deep in its lower tail the others are too, so part of the mass lies on a
  thin ridge along the diagonal below (-1, ..., -1).

A large log f - log q in a group says the flow puts almost no mass there; the
samplers' reverse-KL and reference-based losses only see where the flow draws,
so they cannot pull mass into such a region.
"""

from __future__ import annotations

import jax
from absl import app, flags

from gmjax import experiment
from gmjax.experiment.temperflow import load_run, missing_mass, missing_mass_text

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the command line; not at import, so tests and other scripts can import
    this module beside scripts that define flags of the same names."""
    flags.DEFINE_string("workdir", None, "A finished experiments/temperflow.py run on clayton.")
    flags.DEFINE_integer("stage", None, "Restore the checkpoint after this many stages "
                         "(default: the last).")
    flags.DEFINE_integer("draws", 40_000, "Exact draws of the target.")


def main(argv):
    del argv
    experiment.quiet_logging()
    config, kernel, state = load_run(FLAGS.workdir, FLAGS.stage)
    if config.data.name != "clayton":
        raise app.UsageError(f"{FLAGS.workdir} is a run on {config.data.name!r}; this "
                             f"diagnostic reads Clayton runs (data.name = 'clayton')")
    flow_draws = kernel.sample(state.params, jax.random.PRNGKey(config.seed + 8), FLAGS.draws)
    result = missing_mass(kernel.target, lambda x: kernel.log_prob(state.params, x),
                          jax.random.PRNGKey(config.seed + 7), FLAGS.draws, flow_draws)
    print(missing_mass_text(result, FLAGS.workdir))


if __name__ == "__main__":
    define_flags()
    flags.mark_flag_as_required("workdir")
    app.run(main)
