"""More training at beta = 1 for a TemperFlow run, scored round by round: the authors'
reverse-KL refinement (``--kind kl``) or more rounds of the run's stage loss (``--kind stage``).

    python experiments/diagnostics/final_rounds.py \
        --workdir runs/temperflow_clayton/p8-temperflow --stage 18 --rounds 4 --steps 200

Restores the run's kernel and state after ``--stage`` stages
(``gmjax.experiment.temperflow.load_run``; the workdir is only read), then
trains ``--rounds`` x ``--steps`` steps at beta = 1 and scores 20,000 draws
before and after each round with the experiment's metrics
(``gmjax.experiment.temperflow.evaluate``). Each round is one stage of the
kernel -- ``prepare_stage``, then ``stage_train_state`` (a fresh optimizer
whose schedule peaks at ``--lr``) and ``train_step`` on the engine's ``fit``:

* ``kl``: a ``refine`` stage, the reverse KL to p;
* ``stage``: a ``final`` stage of the run's ``sampler.stage_loss`` whose
  reference is the flow as the round starts, with log U_1 estimated from it
  (or ``--log_u``), as every round of the sampler's final stage does.
"""

from __future__ import annotations

import json
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from gmjax import experiment
from gmjax.experiment.temperflow import evaluate, load_run, make_kernel
from gmjax.samplers.temperflow import FINAL, REFINE, Stage, TemperFlow, TemperFlowState
from gmjax.training.loop import fit

FLAGS = flags.FLAGS

SCORED_DRAWS = 20_000


def define_flags() -> None:
    """Defines the command line; not at import, so tests and other scripts can import
    this module beside scripts that define flags of the same names."""
    flags.DEFINE_string("workdir", None, "A finished experiments/temperflow.py run.")
    flags.DEFINE_integer("stage", None, "Restore the checkpoint after this many stages "
                         "(default: the last); the final stage of an 18-beta run is 18.")
    flags.DEFINE_enum("kind", "kl", ["kl", "stage"], "kl: the reverse KL (the authors' "
                      "refinement); stage: the run's sampler.stage_loss from a fresh reference.")
    flags.DEFINE_integer("rounds", 4, "Scored rounds of training.")
    flags.DEFINE_integer("steps", 200, "Steps per round (a multiple of train.steps_per_call).")
    flags.DEFINE_float("lr", 1e-4, "Peak learning rate of each round's schedule.")
    flags.DEFINE_integer("batch_size", None, "Draws per step (default: the run's data.batch_size).")
    flags.DEFINE_float("log_u", None, "--kind stage: use this log U_1 (e.g. 0 for a normalized "
                       "target) instead of the importance-sampling estimate.")


def round_stage(kernel: TemperFlow, state: TemperFlowState, kind: str, index: int, steps: int,
                lr: float) -> Stage:
    """Round ``index`` (0, 1, ...) at beta = 1 as a stage after the restored ones."""
    phase, loss = (REFINE, "reverse_kl") if kind == "kl" else (FINAL, kernel.config.stage_loss)
    return Stage(state.schedule.stage + index, phase, loss, 1.0, steps, lr, round=index + 1)


def train_round(kernel: TemperFlow, state: TemperFlowState, stage: Stage, cond):
    """The flow's parameters after ``stage`` and the engine's last logged record."""
    calls = kernel.config.steps_per_call
    with tempfile.TemporaryDirectory() as scratch:  # fit's logs and checkpoint, discarded
        result = fit(kernel.stage_train_state(state, stage), kernel.train_step(stage.loss),
                     lambda step: cond, num_steps=stage.steps, workdir=scratch,
                     mesh=kernel.mesh, log_every=calls, checkpoint_every=stage.steps,
                     steps_per_call=calls, shared_batch=True, save_final=False,
                     desc=f"round {stage.round} {stage.loss}")
    return result.state.params, result.last_log


def main(argv):
    del argv
    experiment.quiet_logging()
    config, kernel, state = load_run(FLAGS.workdir, FLAGS.stage)
    if FLAGS.batch_size:
        config.data.batch_size = FLAGS.batch_size
        kernel = make_kernel(config, kernel.target)
    calls = kernel.config.steps_per_call
    if FLAGS.steps <= 0 or FLAGS.steps % calls:
        raise app.UsageError(f"--steps={FLAGS.steps} must be a positive multiple of the run's "
                             f"train.steps_per_call={calls}")
    key = jax.random.PRNGKey(config.seed + 1)

    def report(params, label):
        x = np.asarray(kernel.sample(params, jax.random.fold_in(key, 0), SCORED_DRAWS))
        scores = evaluate(config, kernel.target, x, jax.random.fold_in(key, 1))
        print(label, json.dumps({k: round(v, 4) for k, v in scores.items()
                                 if not k.startswith("positive_frac_")
                                 or k == "positive_frac_max_error"}), flush=True)

    report(state.params, "restored:")
    for r in range(FLAGS.rounds):
        stage = round_stage(kernel, state, FLAGS.kind, r, FLAGS.steps, FLAGS.lr)
        if FLAGS.kind == "stage":
            state = state.replace(ref_params=state.params)  # a fresh reference
        cond, _ = kernel.prepare_stage(state, stage)
        if FLAGS.kind == "stage":
            if FLAGS.log_u is not None:
                cond["log_u"] = jnp.float32(FLAGS.log_u)
            print(f"round {r + 1}: log U_1 = {float(cond['log_u']):.4f}", flush=True)
        params, last_log = train_round(kernel, state, stage, cond)
        state = state.replace(params=params)
        report(params, f"after {(r + 1) * FLAGS.steps} {stage.loss} steps "
                       f"(loss {last_log['loss']:.3f} over the last {calls}):")


if __name__ == "__main__":
    define_flags()
    flags.mark_flag_as_required("workdir")
    app.run(main)
