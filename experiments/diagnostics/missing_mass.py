"""Where a finished Clayton run's flow lacks the target's mass, from exact draws of p.

    python experiments/diagnostics/missing_mass.py \
        --workdir runs/temperflow_clayton/p16-temperflow [--stage 21] [--draws 40000]

Restores the flow after ``--stage`` stages (the workdir is only read), draws X ~ p
exactly and reports the forward KL(p || q) = E_p[log f - log q] (the Clayton
density is normalized), then E_p[log f - log q] within groups of the draws:

* by the number of negative coordinates among the first 8 (the sign pattern's
  count; 8 is the all-majority pattern, which holds a third of the mass), with
  the flow's own share of each count beside p's: the copula's dependence makes
  p's shares U-shaped, while a flow that lost the dependence has nearly
  binomial ones;
* by quantiles of sum_j log F_j(X_j), the depth of X in the copula's joint
  lower tail. Clayton copulas are lower-tail dependent: when one coordinate is
  deep in its lower tail the others are too, so part of the mass lies on a
  thin ridge along the diagonal below (-1, ..., -1).

A large log f - log q in a group says the flow puts almost no mass there; the
samplers' reverse-KL and reference-based L2 losses only see where the flow
draws, so they cannot pull mass into such a region.
"""

from __future__ import annotations

from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from experiments import runner
from experiments import temperflow as E

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the command line; not at import, so tests and other scripts can import
    this module beside scripts that define flags of the same names."""
    flags.DEFINE_string("workdir", None, "A finished experiments/temperflow.py run on clayton.")
    flags.DEFINE_integer("stage", None, "Restore the checkpoint after this many stages "
                         "(default: the last).")
    flags.DEFINE_integer("draws", 40_000, "Exact draws of the target.")


def report(target, log_q: Callable[[jax.Array], jax.Array], key: jax.Array, draws: int,
           label: str, flow_draws: Optional[np.ndarray] = None) -> float:
    """Prints the breakdown described above for a flow density ``log_q``; returns the KL.

    ``flow_draws``: draws of the flow, to print its share of each sign count beside p's.
    """
    x = target.sample(seed=key, sample_shape=(draws,))
    gap = np.asarray(target.log_prob(x) - log_q(x), np.float64)
    depth = np.asarray(jnp.sum(target.marginal_log_cdf(x), axis=-1), np.float64)
    k8 = target.num_bimodal
    negatives = np.asarray(target.negative_counts(x))
    flow_share = None if flow_draws is None else E.sign_count_shares(target, flow_draws)
    print(f"{label} (p = {target.dim}): forward KL(p || q) = {gap.mean():.3f} nats "
          f"from {draws} exact draws; log f - log q > 2 on {np.mean(gap > 2):.3f} of them")
    print(f"by the number of negative coordinates among the first {k8} (share of p, "
          f"mean log f - log q{', share of the flow' if flow_share is not None else ''}):")
    for k in range(k8 + 1):
        m = negatives == k
        if m.any():
            extra = f"  {flow_share[k]:.3f}" if flow_share is not None else ""
            print(f"  {k}: {m.mean():.3f}  {gap[m].mean():8.3f}{extra}")
    print("by the lower-tail depth sum_j log F_j(x_j), in quantile bins of p:")
    edges = np.quantile(depth, [0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0])
    for lo, hi, q in zip(edges[:-1], edges[1:], ("0-5%", "5-25%", "25-50%", "50-75%",
                                                  "75-95%", "95-100%")):
        m = (depth >= lo) & (depth <= hi)
        print(f"  {q:>7} [{lo:8.1f}, {hi:6.1f}]: {gap[m].mean():8.3f}")
    return float(gap.mean())


def main(argv):
    del argv
    runner.quiet_logging()
    config = E.load_run_config(FLAGS.workdir)
    if config.data.name != "clayton":
        raise app.UsageError(f"{FLAGS.workdir} is a run on {config.data.name!r}; this "
                             f"diagnostic reads Clayton runs (data.name = 'clayton')")
    target, sampler, state = E.restore_flow(config, FLAGS.workdir, FLAGS.stage)
    flow_draws = sampler.sample(state.params, jax.random.PRNGKey(config.seed + 8), FLAGS.draws)
    report(target, lambda x: sampler.log_prob(state.params, x),
           jax.random.PRNGKey(config.seed + 7), FLAGS.draws, FLAGS.workdir, flow_draws)


if __name__ == "__main__":
    define_flags()
    flags.mark_flag_as_required("workdir")
    app.run(main)
