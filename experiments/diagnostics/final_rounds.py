"""More training at beta = 1 for a finished TemperFlow run, scored as it goes: the authors'
final reverse-KL refinement (``--kind kl``) or more L2 rounds (``--kind l2``).

    python experiments/diagnostics/final_rounds.py \
        --workdir runs/temperflow_clayton/p8-temperflow --stage 18 --rounds 4 --steps 200

Restores the run's checkpoint after ``--stage`` stages (the workdir is only read), then trains
``rounds`` x ``steps`` steps at beta = 1 and scores 20,000 draws before and
after each round with the experiment's metrics. An L2 round takes the flow as
it starts the round for its reference and estimates log U_1 from it, as a
stage of the sampler does.
"""

from __future__ import annotations

import json

import jax
import numpy as np
from absl import app, flags

from experiments import runner
from experiments import temperflow as E

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the command line; not at import, so tests and other scripts can import
    this module beside scripts that define flags of the same names."""
    flags.DEFINE_string("workdir", None, "A finished experiments/temperflow.py run.")
    flags.DEFINE_integer("stage", None, "Restore the checkpoint after this many stages "
                         "(default: the last); the final L2 stage of an 18-beta run is 18.")
    flags.DEFINE_enum("kind", "kl", ["kl", "l2"], "Reverse KL or the L2 loss.")
    flags.DEFINE_integer("rounds", 4, "Scored rounds of training.")
    flags.DEFINE_integer("steps", 200, "Steps per round (a multiple of train.steps_per_call).")
    flags.DEFINE_float("lr", 1e-4, "Peak learning rate of each round's one-cycle schedule.")
    flags.DEFINE_integer("batch_size", None, "Draws per step (default: the run's data.batch_size).")
    flags.DEFINE_float("log_u", None, "L2 rounds: use this log U_1 (e.g. 0 for a normalized "
                       "target) instead of the importance-sampling estimate.")


def main(argv):
    del argv
    runner.quiet_logging()
    config = E.load_run_config(FLAGS.workdir)
    if FLAGS.batch_size:
        config.data.batch_size = FLAGS.batch_size
    target, sampler, state = E.restore_flow(config, FLAGS.workdir, FLAGS.stage)
    key = jax.random.PRNGKey(config.seed + 1)

    def report(params, label):
        x = np.asarray(sampler.sample(params, jax.random.fold_in(key, 0), 20_000))
        scores = E.score(config, target, x, jax.random.fold_in(key, 1))
        print(label, json.dumps({k: round(v, 4) for k, v in scores.items()
                                 if not k.startswith("positive_frac_")
                                 or k == "positive_frac_max_error"}), flush=True)

    params = state.params
    report(params, "restored:")
    for r in range(FLAGS.rounds):
        round_key = jax.random.fold_in(key, 2 + r)
        extra = {}
        if FLAGS.kind == "l2":
            estimate_key = jax.random.fold_in(key, 1000 + r)
            log_u = (FLAGS.log_u if FLAGS.log_u is not None
                     else sampler.estimate_log_u(params, 1.0, estimate_key))
            extra = {"ref_params": params, "log_u": log_u}
            print(f"round {r + 1}: log U_1 = {log_u:.4f}", flush=True)
        params, summary = sampler.train_stage(params, FLAGS.kind, 1.0, FLAGS.steps, FLAGS.lr,
                                              round_key, **extra)
        report(params, f"after {(r + 1) * FLAGS.steps} {FLAGS.kind.upper()} steps "
                       f"(loss {summary['loss_tail']:.3f}):")


if __name__ == "__main__":
    define_flags()
    flags.mark_flag_as_required("workdir")
    app.run(main)
