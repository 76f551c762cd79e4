"""The DCGAN on Fashion-MNIST scored in the in-repo feature network: unconditional and conditional.

    python -m experiments.gan_images_table --train --steps=3000   # trains what is missing
    python -m experiments.gan_images_table --steps=3000           # collects only
    python3 docs/generate_tables.py   # renders the table into docs/gan.md

Each run of ``RUNS`` is ``experiments/gan.py`` on
``experiments/configs/gan_fashion_mnist.py`` with ``BASE_OPTIONS`` (latent
dimension 32, ``--steps`` outer steps of batch 64, the feature metrics on
``eval.num_test`` = 2,000 draws against the first 2,000 test images in the
LeNet of ``--feature_network``) and its own options, trained into
``<runs>/<name>``. With ``--train`` the runs without a ``metrics.json`` are
trained first, one after the other. The script then writes ``--out``
(``docs/results/gan_fashion_mnist.json``): per run its command and metrics
(``frechet_distance``, ``kid``, precision / recall, the Inception Score and,
conditional, ``class_accuracy``), and the same metrics of 2,000 *training*
images against the test images (``real_train_images``: what a perfect
generator would score at this sample size). Each run's ``samples.png`` is
copied to ``docs/results/gan_fashion_mnist_<name>_samples.png``.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from typing import Any, Dict, List, Optional

from absl import app, flags

FLAGS = flags.FLAGS

BASE_OPTIONS = ("--config.model.latent_dim=32 --config.train.steps=STEPS "
                "--config.train.eval_every=1000 --config.train.checkpoint_every=1000 "
                "--config.eval.num_test=2000 --config.eval.feature_network=NETWORK")
COMMAND = ("python3 -m experiments.gan --config experiments/configs/gan_fashion_mnist.py "
           + BASE_OPTIONS + " OPTIONS --workdir RUNS/NAME")
# name -> (options after BASE_OPTIONS, label).
RUNS: Dict[str, Dict[str, str]] = {
    "dcgan": {"options": "", "label": "DCGAN"},
    "conditional_dcgan": {"options": "--config.model.conditional=True",
                          "label": "conditional DCGAN (projection critic)"},
}
KEPT = ("frechet_distance", "kid", "kid_std", "precision", "recall", "density", "coverage",
        "inception_score", "class_accuracy", "feature_samples", "train_seconds", "steps")
NUM_REAL = 2_000


def command(runs: str, name: str, steps: int, network: str) -> List[str]:
    """The command line that trains run ``name``."""
    line = (COMMAND.replace("STEPS", str(steps)).replace("NETWORK", network)
            .replace("OPTIONS", RUNS[name]["options"])
            .replace("RUNS/NAME", os.path.join(runs, name)))
    return [sys.executable if part == "python3" else part for part in shlex.split(line)]


def load(path: str) -> Optional[Dict[str, Any]]:
    """A run's ``metrics.json``, or ``None`` when it has none (not run, or not finished)."""
    file = os.path.join(path, "metrics.json")
    if not os.path.exists(file):
        return None
    with open(file) as f:
        return json.load(f)


def real_reference(network_dir: str) -> Dict[str, Any]:
    """The feature metrics of ``NUM_REAL`` training images against as many test images."""
    import jax

    from gmjax.data import load_dataset
    from gmjax.models import image_metrics, load_feature_network

    network = load_feature_network(network_dir)
    train = load_dataset("fashion_mnist", f"train[:{NUM_REAL}]")
    test = load_dataset("fashion_mnist", f"test[:{NUM_REAL}]")
    metrics = image_metrics(network, train.x, test.x, jax.random.PRNGKey(0),
                            sample_labels=train.y)
    return {**{k: metrics[k] for k in KEPT if k in metrics}, "feature_samples": NUM_REAL}


def main(argv):
    del argv
    names = FLAGS.names.split(",") if FLAGS.names else list(RUNS)
    unknown = [n for n in names if n not in RUNS]
    if unknown:
        raise app.UsageError(f"unknown --names {unknown}; valid: {', '.join(RUNS)}")
    if FLAGS.steps < 1:
        raise app.UsageError(f"--steps={FLAGS.steps} must be positive")
    if not os.path.isdir(FLAGS.feature_network):
        raise app.UsageError(
            f"--feature_network={FLAGS.feature_network!r} is not a directory; train it with "
            f"python experiments/classifier.py --config "
            f"experiments/configs/classifier_fashion_mnist.py --workdir {FLAGS.feature_network}")
    if FLAGS.train:
        for name in names:
            if load(os.path.join(FLAGS.runs, name)) is None:
                cmd = command(FLAGS.runs, name, FLAGS.steps, FLAGS.feature_network)
                print(" ".join(cmd), flush=True)
                subprocess.run(cmd, check=True)
    runs = {}
    for name in names:
        metrics = load(os.path.join(FLAGS.runs, name))
        if metrics is None:
            continue
        runs[name] = {"label": RUNS[name]["label"],
                      "command": " ".join(shlex.quote(part) for part in command(
                          FLAGS.runs, name, metrics["steps"], FLAGS.feature_network))
                      .replace(sys.executable, "python3"),
                      "metrics": {k: metrics[k] for k in KEPT if k in metrics}}
        network = metrics.get("feature_network")
        samples = os.path.join(FLAGS.runs, name, "samples.png")
        if os.path.exists(samples):
            shutil.copyfile(samples, os.path.join(os.path.dirname(os.path.abspath(FLAGS.out)),
                                                  f"gan_fashion_mnist_{name}_samples.png"))
    if not runs:
        raise app.UsageError(f"no finished runs under {FLAGS.runs} (train them with --train)")
    result = {
        "description": "DCGANs on the 60,000 Fashion-MNIST training images (batch 64, latent "
                       "32, pixel norm, resize-convolutions, c = 32, non-saturating loss, Adam "
                       "5e-4 b1 0.5 for both players), scored on 2,000 draws against the first "
                       "2,000 test images in the features of the in-repo LeNet.",
        "feature_network": network,
        "hardware": "2 shared CPU cores",
        "real_train_images": real_reference(FLAGS.feature_network),
        "runs": runs,
    }
    with open(FLAGS.out, "w") as f:
        json.dump(result, f, indent=1)
    for name, run in runs.items():
        m = run["metrics"]
        print(f"{name:18s} FD {m['frechet_distance']:.2f}"
              + (f", class accuracy {m['class_accuracy']:.3f}" if "class_accuracy" in m else ""))
    print(f"wrote {FLAGS.out}")


def define_flags() -> None:
    flags.DEFINE_string("runs", "runs/gan_fashion_mnist", "Directory of the runs.")
    flags.DEFINE_string("names", "", f"Comma-separated subset of: {', '.join(RUNS)} "
                                     f"(default: all).")
    flags.DEFINE_integer("steps", 3000, "Outer steps of each run.")
    flags.DEFINE_string("feature_network", "runs/classifier_fashion_mnist",
                        "The classifier run whose LeNet features score the samples.")
    flags.DEFINE_bool("train", False, "Train the runs that have no metrics.json first.")
    flags.DEFINE_string("out", "docs/results/gan_fashion_mnist.json", "The JSON written.")


if __name__ == "__main__":
    define_flags()
    app.run(main)
