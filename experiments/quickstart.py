"""The quick start: small models on built-in toy data, in a few minutes on a CPU.

    python experiments/quickstart.py --workdir runs/quickstart
    python experiments/quickstart.py --sections=temperflow_circle   # one section only

Each family that has landed adds a section; each section is an ordinary
experiment run in ``<workdir>/<section>/`` (so it resumes like any other),
and ``<workdir>/metrics.json`` gathers their final metrics. Sections so far:

* ``flow_<data>``: a RealNVP fitted by maximum likelihood to ``8gaussians``
  and ``moons`` -- ``density.png`` shows data, samples and the learned density.
* ``temperflow_circle``: TemperFlow on the 8-mode circle target with a small
  budget (fewer, shorter stages than ``experiments/configs/temperflow_2d.py``)
  -- ``samples.png`` shows its draws over the target density, ``beta_trace.png``
  the temperatures it chose.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Dict, List, Tuple

import ml_collections
from absl import app, flags

from experiments import flow, runner, temperflow
from experiments.configs import flow_toy, temperflow_2d

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the command line; not at import, so tests and other scripts can import
    this module beside scripts that define flags of the same names."""
    flags.DEFINE_string("workdir", "runs/quickstart", "Where every section writes its results.")
    flags.DEFINE_integer("steps", 3_000, "Training steps per section.")
    flags.DEFINE_bool("progress", None, "Show progress bars (default: only on a terminal).")
    flags.DEFINE_list("sections", None, "Run only these sections (default: all of them).")


def sections(steps: int) -> List[Tuple[str, Callable, ml_collections.ConfigDict, Any, Any]]:
    """(name, train_and_evaluate, config, choices, positive) for every section."""
    out = []
    for data in ("8gaussians", "moons"):
        config = flow_toy.get_config()
        config.data.name = data
        config.data.num_train = 20_000
        config.train.steps = steps
        config.train.log_every = 100
        config.train.eval_every = 1_000
        config.train.checkpoint_every = 1_000
        config.model.num_layers = 6
        config.eval.num_samples = 4_000
        out.append((f"flow_{data}", flow.train_and_evaluate, config, flow.CHOICES, flow.POSITIVE))
    # TemperFlow's stages scale with --steps: 600 / 100 / 300 steps at the default 3,000.
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
    out.append(("temperflow_circle", temperflow.train_and_evaluate, config, temperflow.CHOICES,
                temperflow.POSITIVE))
    return out


def main(argv):
    del argv
    runner.quiet_logging()
    summary: Dict[str, Any] = {}
    chosen = sections(FLAGS.steps)
    names = [name for name, *_ in chosen]
    unknown = sorted(set(FLAGS.sections or ()) - set(names))
    if unknown:
        raise app.UsageError(f"--sections: unknown {', '.join(unknown)}; valid: {', '.join(names)}")
    if FLAGS.sections:
        chosen = [section for section in chosen if section[0] in FLAGS.sections]
    for name, train_and_evaluate, config, choices, positive in chosen:
        workdir = os.path.join(FLAGS.workdir, name)
        print(f"== {name} -> {workdir}", flush=True)
        summary[name] = dict(runner.run(train_and_evaluate, config, workdir, choices, positive,
                                        progress=FLAGS.progress))
        print(json.dumps({k: float(f"{v:.4g}") if isinstance(v, float) else v
                          for k, v in summary[name].items()}), flush=True)
    path = runner.write_metrics(FLAGS.workdir, summary)
    print(f"quick start done: {path}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
