"""A DDPM on images, its results collected for the docs: bits/dim, and ancestral against DDIM.

    python3 experiments/diffusion_images_table.py --data fashion_mnist \
        --workdir runs/ddpm_fashion_mnist --feature_network runs/classifier_fashion_mnist \
        --steps 50000 --out docs/results/diffusion_fashion_mnist.json
    python3 docs/generate_tables.py   # renders the table into docs/diffusion.md and README.md

Runs (or resumes, or only collects, when ``--workdir`` already holds a finished
run of the same config) ``experiments/diffusion.py`` on
``experiments/configs/diffusion_<data>.py`` with the options of the flags
(``--steps``, the U-Net's ``--channels``, ``--batch_size``, ``--steps_per_call``, ``--lr``,
``--warmup_steps``, ``--num_samples``, ``--nll_examples``, ``--ddim_steps``,
``--eval_batch_size``), then writes ``--out``: the command, the
options, and the metrics that compare the samplers -- ``bits_per_dim`` (the
variational bound with the discretized decoder), and for ancestral sampling
over all T steps and for DDIM the Fréchet distance of ``--num_samples`` draws
to as many test images in the LeNet of ``--feature_network`` and the seconds
they took -- beside the Fréchet distance of as many *training* images to the
same test images (``real_train_images``: what a perfect sampler would score at
this sample size). The run's ``samples.png`` is copied next to ``--out`` as
``diffusion_<data>_samples.png``.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any, Dict, List

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS

KEPT = ("bits_per_dim", "test_nll", "nll_examples", "nll_seconds", "ancestral_frechet_distance",
        "ancestral_sample_seconds", "ancestral_sample_seconds_per_image",
        "ddim_frechet_distance", "ddim_sample_seconds", "ddim_sample_seconds_per_image",
        "frechet_samples", "samples_drawn", "feature_network", "train_seconds", "steps")
DATA = ("fashion_mnist", "mnist")


def define_flags() -> None:
    """Defines the command line; not at import, so tests can import this module."""
    flags.DEFINE_enum("data", "fashion_mnist", list(DATA), "Which image config.")
    flags.DEFINE_string("workdir", "runs/ddpm_fashion_mnist", "The run's workdir.")
    flags.DEFINE_string("feature_network", "", "A classifier workdir ('' skips the Fréchet "
                                               "distance).")
    flags.DEFINE_integer("steps", 50_000, "Training steps.")
    flags.DEFINE_list("channels", [], "U-Net widths per level (default: the config's).")
    flags.DEFINE_integer("batch_size", None, "Training batch (default: the config's).")
    flags.DEFINE_integer("steps_per_call", None, "Updates per compiled call (default: the "
                                                 "config's).")
    flags.DEFINE_float("lr", None, "Peak learning rate (default: the config's).")
    flags.DEFINE_integer("warmup_steps", None, "Learning-rate warm-up (default: the config's).")
    flags.DEFINE_integer("num_samples", None, "Draws per sampler scored (default: the "
                                              "config's).")
    flags.DEFINE_integer("nll_examples", None, "Test images of the bound (default: the "
                                               "config's).")
    flags.DEFINE_integer("ddim_steps", None, "DDIM steps (default: the config's).")
    flags.DEFINE_integer("eval_batch_size", None, "Draws per compiled sampler call (default: "
                                                  "the config's).")
    flags.DEFINE_string("out", "", "The results JSON (default: "
                                   "docs/results/diffusion_<data>.json).")
    flags.DEFINE_bool("progress", None, "Show progress bars (default: only on a terminal).")


def options() -> Dict[str, Any]:
    """The config fields the flags set: ``{path: value}``."""
    out: Dict[str, Any] = {"train.steps": FLAGS.steps}
    if FLAGS.channels:
        out["model.channels"] = tuple(int(c) for c in FLAGS.channels)
    for flag, path in (("batch_size", "data.batch_size"),
                       ("steps_per_call", "train.steps_per_call"), ("lr", "optim.lr"),
                       ("warmup_steps", "optim.warmup_steps"),
                       ("num_samples", "eval.num_samples"), ("nll_examples", "eval.nll_examples"),
                       ("ddim_steps", "eval.ddim_steps"), ("eval_batch_size", "eval.batch_size")):
        if getattr(FLAGS, flag) is not None:
            out[path] = getattr(FLAGS, flag)
    out["eval.feature_network"] = FLAGS.feature_network
    return out


def make_config(data: str, changes: Dict[str, Any]):
    import importlib

    config = importlib.import_module(f"experiments.configs.diffusion_{data}").get_config()
    for path, value in changes.items():
        block, field = path.split(".")
        config[block][field] = value
    steps = config.train.steps
    for field in ("eval_every", "checkpoint_every"):
        config.train[field] = min(config.train[field], steps)
    return config


def command(data: str, changes: Dict[str, Any], workdir: str) -> str:
    """The ``experiments/diffusion.py`` command of the run."""
    parts = ["python3 experiments/diffusion.py",
             f"--config experiments/configs/diffusion_{data}.py", f"--workdir {workdir}"]
    for path, value in changes.items():
        if isinstance(value, tuple):
            value = ",".join(map(str, value))
        parts.append(f"--config.{path}={value}")
    return " ".join(parts)


def real_reference(config, network_dir: str, n: int) -> Dict[str, Any]:
    """The Fréchet distance of ``n`` training images to the first ``n`` test images."""
    from gmjax import metrics as M
    from gmjax.data import load_dataset
    from gmjax.models import load_feature_network

    network = load_feature_network(network_dir)
    split = config.data.train_split
    train = load_dataset(config.data.name, split).x[:n]
    test = load_dataset(config.data.name, config.data.test_split).x[:n]
    features = [network.features_and_probs(np.asarray(x))[0] for x in (train, test)]
    return {"frechet_distance": float(M.frechet_distance(*features)), "images": n,
            "train_split": split}


def summary(metrics: Dict[str, Any]) -> List[str]:
    lines = [f"bits/dim (bound, {metrics['nll_examples']} test images): "
             f"{metrics['bits_per_dim']:.3f}"]
    for sampler in ("ancestral", "ddim"):
        fd = metrics.get(f"{sampler}_frechet_distance")
        lines.append(f"{sampler}: {metrics[f'{sampler}_sample_seconds_per_image']:.3f} s per "
                     f"image" + (f", Fréchet distance {fd:.2f}" if fd is not None else ""))
    return lines


def main(argv):
    del argv
    from experiments import diffusion
    from experiments.diffusion_table import finished
    from gmjax import experiment

    experiment.quiet_logging()
    changes = options()
    config = make_config(FLAGS.data, changes)
    metrics = finished(FLAGS.workdir, config)
    if metrics is None:
        defaults = make_config(FLAGS.data, {})
        metrics = experiment.run(diffusion.EXPERIMENT, config, FLAGS.workdir,
                                 progress=FLAGS.progress, defaults=defaults)
    out = FLAGS.out or os.path.join("docs", "results", f"diffusion_{FLAGS.data}.json")
    m = config.model
    result = {
        "command": command(FLAGS.data, changes, FLAGS.workdir),
        "description": (f"DDPM (linear schedule, T = {m.num_steps}, eps prediction, L_simple) "
                        f"with a U-Net of channels {tuple(m.channels)} and "
                        f"{m.num_res_blocks} residual block(s) per level on "
                        f"{config.data.name} {config.data.train_split}, batch "
                        f"{config.data.batch_size}, {config.train.steps} Adam steps; "
                        f"evaluated on {config.data.test_split}. Ancestral sampling visits all "
                        f"T steps, DDIM {config.eval.ddim_steps} (eta {config.eval.eta})."),
        "hardware": "2 shared CPU cores: seconds are upper bounds",
        "options": {k: list(v) if isinstance(v, tuple) else v for k, v in changes.items()},
        "num_steps": m.num_steps, "ddim_steps": config.eval.ddim_steps,
        "eta": config.eval.eta,
        "metrics": {k: metrics[k] for k in KEPT if k in metrics},
    }
    if FLAGS.feature_network:
        result["real_train_images"] = real_reference(config, FLAGS.feature_network,
                                                     metrics["frechet_samples"])
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    samples = os.path.join(FLAGS.workdir, "samples.png")
    if os.path.exists(samples):
        shutil.copyfile(samples, os.path.join(os.path.dirname(os.path.abspath(out)),
                                              f"diffusion_{FLAGS.data}_samples.png"))
    print("\n".join(summary(metrics)))
    print(f"wrote {out}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
