"""The VAE-against-IWAE table on MNIST and Fashion-MNIST: one ``experiments/vae.py`` run per cell.

    python experiments/vae_table.py --data mnist,fashion_mnist --steps 600 \
        --test_examples 1000 --eval_examples 500 --workdir runs/vae_table --out docs/results

Three models per data set, the same network (the ``vae_mnist`` config: MLP
784-500-500-50, tanh, Bernoulli decoder on dynamically binarized images), the
same optimizer and the same number of steps: the VAE (ELBO, k = 1, total
derivative), IWAE with k = 5 (total derivative) and IWAE with k = 50 (DReG
gradients, Tucker et al., 2019). Each cell is an ordinary run in
``<workdir>/<data>_<run>/`` (so an interrupted table resumes; ``--runs``
picks cells, and cells of one data set may run in separate processes). The
test split is ``--test_examples`` images (binarized once, fixed seed); the
test metrics (``is_log_likelihood`` with ``--is_samples`` draws, ``elbo``,
``iwae_k`` with k = 50, ``bits_per_dim``) are taken on its first
``--eval_examples`` (``eval.num_examples``), the same images for every
model. ``docs/results/vae_<data>.json`` records them with the protocol and
the ``experiments/vae.py`` command of every cell; a cell updates its entry and
keeps the others measured under the same protocol. ``docs/generate_tables.py``
renders the tables of ``docs/vae.md`` from those files.

Splits: only the MNIST *test* set (10,000 images) is in the repository's
data, so MNIST trains on ``test[:8000]`` and is evaluated on
``test[8000:8000 + test_examples]`` (``experiments/configs/vae_mnist.py``);
Fashion-MNIST trains on its 60,000 training images and is evaluated on
``test[:test_examples]``.
"""

from __future__ import annotations

import json
import os
import platform
from typing import Any, Dict, List, Tuple

from absl import app, flags

from experiments import vae
from experiments.configs import vae_fashion_mnist, vae_mnist
from gmjax import experiment

FLAGS = flags.FLAGS

# Run name -> (objective.name, objective.num_samples, objective.estimator).
RUNS: Dict[str, Tuple[str, int, str]] = {
    "vae": ("elbo", 1, "total"),
    "iwae_k5": ("iwae", 5, "total"),
    "iwae_k50_dreg": ("iwae", 50, "dreg"),
}
CONFIGS = {"mnist": vae_mnist, "fashion_mnist": vae_fashion_mnist}
# The first test image of the evaluation: MNIST's first 8,000 test images are its training set.
TEST_START = {"mnist": 8_000, "fashion_mnist": 0}
TEST_SIZE = 10_000
STEPS_PER_CALL = 25
MIN_EXAMPLES = 32  # reconstructions.png shows 32 test images


def define_flags() -> None:
    """Defines the command line; not at import, so tests can import this module."""
    flags.DEFINE_string("workdir", "runs/vae_table", "Where every cell's run goes.")
    flags.DEFINE_list("data", list(CONFIGS), f"Data sets, of {', '.join(CONFIGS)}.")
    flags.DEFINE_list("runs", list(RUNS), f"Models, of {', '.join(RUNS)}.")
    flags.DEFINE_integer("steps", 600, "Training steps of every model (a multiple of 25).")
    flags.DEFINE_integer("test_examples", 1_000, "Images of the test split.")
    flags.DEFINE_integer("eval_examples", 500, "Test images of the final evaluation (the "
                         "first of the test split; at most --test_examples).")
    flags.DEFINE_integer("is_samples", 5_000, "Importance samples per test image.")
    flags.DEFINE_string("out", os.path.join("docs", "results"),
                        "Where vae_<data>.json goes ('' to write none).")
    flags.DEFINE_bool("progress", None, "Show progress bars (default: only on a terminal).")


def check_choices(data: List[str], runs: List[str], steps: int, test_examples: int,
                  eval_examples: int, is_samples: int) -> None:
    """``ValueError`` naming the valid choices, before any work."""
    for name, given, valid in (("--data", data, CONFIGS), ("--runs", runs, RUNS)):
        for item in given:
            if item not in valid:
                raise ValueError(f"{name}: unknown {item!r}; valid choices: "
                                 f"{', '.join(valid)}")
    if steps < 1 or steps % STEPS_PER_CALL:
        raise ValueError(f"--steps={steps} must be a positive multiple of {STEPS_PER_CALL}")
    for d in data:
        room = TEST_SIZE - TEST_START[d]
        if not MIN_EXAMPLES <= test_examples <= room:
            raise ValueError(f"--test_examples={test_examples} must be in [{MIN_EXAMPLES}, "
                             f"{room}] for {d}")
    if not 1 <= eval_examples <= test_examples:
        raise ValueError(f"--eval_examples={eval_examples} must be in [1, --test_examples="
                         f"{test_examples}]")
    if is_samples < 2:
        raise ValueError(f"--is_samples={is_samples} must be >= 2")


def overrides(data: str, run: str, steps: int, test_examples: int, eval_examples: int,
              is_samples: int) -> Dict[str, Any]:
    """The config fields a cell changes, ``{dotted path: value}``."""
    name, k, estimator = RUNS[run]
    start = TEST_START[data]
    return {"objective.name": name, "objective.num_samples": k,
            "objective.estimator": estimator,
            "data.test_split": f"test[{start}:{start + test_examples}]",
            "train.steps": steps, "train.steps_per_call": STEPS_PER_CALL,
            "train.log_every": STEPS_PER_CALL * max(1, steps // (10 * STEPS_PER_CALL)),
            "train.eval_every": steps, "train.checkpoint_every": steps,
            "eval.is_samples": is_samples, "eval.num_examples": eval_examples}


def cell_config(data: str, run: str, *sizes: int):
    """The config of one cell; ``sizes``: steps, test_examples, eval_examples, is_samples."""
    config = CONFIGS[data].get_config()
    for path, value in overrides(data, run, *sizes).items():
        block, field = path.split(".")
        config[block][field] = value
    return config


def command(data: str, run: str, workdir: str, changes: Dict[str, Any]) -> str:
    """The ``experiments/vae.py`` command line of one cell."""
    return " ".join([f"python3 experiments/vae.py --config experiments/configs/vae_{data}.py",
                     f"--workdir {workdir}",
                     *(f"--config.{path}={value}" for path, value in changes.items())])


def update_record(path: str, record: Dict[str, Any], run: str) -> None:
    """Writes ``record`` to ``path`` with the other runs already there under the same
    protocol (atomically, so cells may finish in separate processes)."""
    runs = {}
    if os.path.exists(path):
        with open(path) as f:
            old = json.load(f)
        if old.get("protocol") == record["protocol"]:
            runs = old.get("runs", {})
        else:
            print(f"{path}: another protocol; its runs are dropped", flush=True)
    record = {**record, "runs": {**runs, run: record["runs"][run]}}
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(record, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def main(argv):
    del argv
    sizes = (FLAGS.steps, FLAGS.test_examples, FLAGS.eval_examples, FLAGS.is_samples)
    check_choices(FLAGS.data, FLAGS.runs, *sizes)
    experiment.quiet_logging()
    for data in FLAGS.data:
        path = os.path.join(FLAGS.out, f"vae_{data}.json") if FLAGS.out else None
        config = cell_config(data, "vae", *sizes)
        record: Dict[str, Any] = {
            "machine": f"{os.cpu_count()} CPU cores ({platform.machine()}), shared with "
                       f"other jobs: train_seconds are upper bounds",
            "command": (f"python3 experiments/vae_table.py --data {data} --steps {FLAGS.steps} "
                        f"--test_examples {FLAGS.test_examples} "
                        f"--eval_examples {FLAGS.eval_examples} "
                        f"--is_samples {FLAGS.is_samples}"),
            "protocol": {"train_split": config.data.train_split,
                         "test_split": config.data.test_split,
                         "eval_examples": FLAGS.eval_examples, "steps": FLAGS.steps,
                         "batch_size": config.data.batch_size, "is_samples": FLAGS.is_samples,
                         "network": "MLP 784-500-500-50 (tanh), Bernoulli decoder",
                         "binarize": config.objective.binarize},
            "runs": {}}
        for run in FLAGS.runs:
            workdir = os.path.join(FLAGS.workdir, f"{data}_{run}")
            changes = overrides(data, run, *sizes)
            print(f"== {data} / {run} -> {workdir}", flush=True)
            metrics = experiment.run(vae.EXPERIMENT, cell_config(data, run, *sizes), workdir,
                                     progress=FLAGS.progress,
                                     defaults=CONFIGS[data].get_config())
            record["runs"][run] = {"command": command(data, run, workdir, changes),
                                   "metrics": dict(metrics)}
            print(json.dumps(record["runs"][run]["metrics"]), flush=True)
            if path:  # after every cell, so an interrupted table keeps what it measured
                update_record(path, record, run)


if __name__ == "__main__":
    define_flags()
    app.run(main)
