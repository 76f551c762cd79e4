"""How much of the target a run's flow lets an importance-sampling estimate see.

    python experiments/diagnostics/reference_coverage.py \
        --workdir runs/temperflow_clayton/p8-temperflow [--stage 18] [--beta 1] \
        [--draws 20000] [--scales 1.25,1.5,2,3] [--shares 0.3,0.5]

Restores the flow after ``--stage`` stages (the workdir is only read) and takes
it as the reference of a stage at ``--beta``: it prints log U_beta, the
effective sample size and, for Clayton, the self-normalized P_beta(x_j > 0)
(mean over the first 8 coordinates), estimated from ``--draws`` draws of

* the flow itself (what the sampler uses);
* the defensive references of ``sampler.defensive_share`` / ``defensive_scale``
  (a share of the latents from N(0, s^2 I), pushed through the flow), for each
  ``--scales`` x ``--shares``;
* a Gaussian fitted to the flow's draws, widened by each scale, mixed with the
  flow in each share (the mixture's density needs the flow's inverse pass).

A reference that misses part of p gives log U_beta too low (the Clayton target
is normalized: log U_1 = 0) and weights that follow the flow, not the target.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from gmjax import experiment
from gmjax.experiment.temperflow import load_run
from gmjax.metrics import importance_weight_trace
from gmjax.objectives.tempering import log_normalizer, terms_ess
from gmjax.samplers.temperflow import TemperFlow
from gmjax.targets.clayton import ClaytonTarget

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the command line; not at import, so tests and other scripts can import
    this module beside scripts that define flags of the same names."""
    flags.DEFINE_string("workdir", None, "A finished experiments/temperflow.py run.")
    flags.DEFINE_integer("stage", None, "Restore the checkpoint after this many stages "
                         "(default: the last).")
    flags.DEFINE_float("beta", 1.0, "The temperature of the estimates.")
    flags.DEFINE_integer("draws", 20_000, "Reference draws per estimate.")
    flags.DEFINE_list("scales", ["1.25", "1.5", "2", "3"], "Widening factors s (> 1).")
    flags.DEFINE_list("shares", ["0.3", "0.5"], "Shares a of the wide component, in (0, 1).")
    flags.DEFINE_integer("seed", 1, "Seed of the draws.")


def summarize(target, x, log_f: np.ndarray, log_r: np.ndarray) -> str:
    """log U_beta, the ESS and (Clayton) P_beta(x_j > 0) by IS from draws ``x`` of r."""
    line = (f"log U {float(log_normalizer(jnp.asarray(log_f), jnp.asarray(log_r))):+.3f}  "
            f"ESS {float(terms_ess(jnp.asarray(log_f - log_r))):8.1f}")
    if isinstance(target, ClaytonTarget):
        trace = importance_weight_trace(np.asarray(target.weight_indicators(jnp.asarray(x))),
                                        log_f, log_r)
        line += f"  P(x_j > 0) {np.mean(trace['weights_target_is']):.3f}"
    return line


def main(argv):
    del argv
    experiment.quiet_logging()
    config, kernel, state = load_run(FLAGS.workdir, FLAGS.stage)
    target = kernel.target
    scales = [float(s) for s in FLAGS.scales]
    shares = [float(a) for a in FLAGS.shares]
    if any(s <= 1.0 for s in scales) or any(not 0.0 < a < 1.0 for a in shares):
        raise app.UsageError(f"--scales must be > 1 and --shares in (0, 1); got "
                             f"{FLAGS.scales} and {FLAGS.shares}")
    n, key = FLAGS.draws, jax.random.PRNGKey(FLAGS.seed)

    def log_f(x):
        return FLAGS.beta * np.asarray(kernel.target_log_prob(x), np.float64)

    print(f"{FLAGS.workdir}, stage {FLAGS.stage or 'last'}, beta = {FLAGS.beta}, {n} draws")
    y, log_r = kernel.sample_and_log_prob(state.params, key, n)
    print(f"  the flow itself:                 "
          f"{summarize(target, y, log_f(y), np.asarray(log_r, np.float64))}")
    for s in scales:
        for a in shares:
            wide = TemperFlow(kernel.flow, target, dataclasses.replace(
                kernel.config, defensive_share=a, defensive_scale=s), config.optim,
                mesh=kernel.mesh)
            x, log_m = wide.reference_sample_and_log_prob(state.params, key, n)
            print(f"  latent N(0, {s:g}^2 I), share {a:g}:   "
                  f"{summarize(target, x, log_f(x), np.asarray(log_m, np.float64))}")

    # A Gaussian in x fitted to the flow's draws, widened and mixed in (stratified).
    yn = np.asarray(y, np.float64)
    mean, chol = yn.mean(axis=0), np.linalg.cholesky(np.cov(yn.T))
    rng = np.random.default_rng(FLAGS.seed)
    for s in scales:
        for a in shares:
            m = int(round(a * n))
            g = mean + rng.standard_normal((m, yn.shape[1])) @ (s * chol).T
            x = np.concatenate([yn[:n - m], g]).astype(np.float32)
            sol = np.linalg.solve(s * chol, (x - mean).T).T
            log_g = (-0.5 * np.sum(sol ** 2, axis=1) - np.sum(np.log(s * np.diag(chol)))
                     - 0.5 * x.shape[1] * np.log(2 * np.pi))
            log_q = np.asarray(kernel.log_prob(state.params, jnp.asarray(x)), np.float64)
            log_m = np.logaddexp(np.log1p(-a) + log_q, np.log(a) + log_g)
            print(f"  x-space Gaussian x{s:g}, share {a:g}: "
                  f"{summarize(target, x, log_f(x), log_m)}")


if __name__ == "__main__":
    define_flags()
    flags.mark_flag_as_required("workdir")
    app.run(main)
