"""Reading a trained GAN back from its run's workdir, read-only.

A GAN workdir (written by the GAN experiment) holds ``config.json`` (networks,
latent dimension, data set) and ``checkpoints/`` (the ``MinMaxState`` of
``gmjax.training``); ``load_gan`` reads the generator and discriminator
parameters of one checkpoint without writing anything.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Mapping, Optional

from gmjax.models.gan.model import DATA_CLASSES, GAN, IMAGE_SHAPES, build_gan
from gmjax.models.restore import restore_state_fields, saved_steps

PyTree = Any


def train_hint(workdir: str, latent_dim: int = 2) -> str:
    """What trains (or, rerun, resumes) a GAN into ``workdir``."""
    return (f"the gan experiment with config gan_fashion_mnist, "
            f"--config.model.latent_dim={latent_dim} and --workdir {workdir}")


class GANWorkdirError(FileNotFoundError):
    """No trained GAN at a path (missing, no checkpoint, unreadable); says what to run."""


@dataclasses.dataclass(frozen=True)
class TrainedGAN:
    """A GAN read back from a workdir.

    Attributes:
      gan: the networks.
      gen_params, disc_params: the parameters of checkpoint ``step``.
      step: the checkpoint's step (outer min-max steps).
      config: the run's ``config.json`` as a dict.
      workdir: where it was read from.
    """

    gan: GAN
    gen_params: PyTree
    disc_params: PyTree
    step: int
    config: Mapping[str, Any]
    workdir: str


def load_gan(workdir: str, step: Optional[int] = None) -> TrainedGAN:
    """Reads the GAN trained in ``workdir``.

    Reads ``config.json`` (networks, latent dimension, data set) and the
    generator and discriminator parameters of checkpoint ``step`` (default:
    the latest; only those two fields of the saved ``MinMaxState`` are read).
    Nothing in ``workdir`` is modified, so a run still writing there is safe.

    Raises:
      GANWorkdirError: the workdir, its ``config.json`` or a checkpoint is
        missing or unreadable; the message says what to run.
    """
    workdir = os.path.abspath(os.fspath(workdir))
    config_path = os.path.join(workdir, "config.json")
    if not os.path.isfile(config_path):
        what = "does not exist" if not os.path.isdir(workdir) else "has no config.json"
        raise GANWorkdirError(f"no trained GAN in {workdir}: the directory {what}. Train one "
                              f"with {train_hint(workdir)}.")
    try:
        with open(config_path) as f:
            config = json.load(f)
        model_config = config["model"]
        latent_dim = int(model_config["latent_dim"])
        data_name = config["data"]["name"]
        gan = build_gan(model_config, IMAGE_SHAPES[data_name], DATA_CLASSES[data_name])
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise GANWorkdirError(
            f"{config_path} is not the config of a GAN run ({type(e).__name__}: {e}); train "
            f"one with {train_hint(workdir)}.") from e
    hint = train_hint(workdir, latent_dim)

    directory = os.path.join(workdir, "checkpoints")
    steps = saved_steps(directory)
    if not steps:
        raise GANWorkdirError(f"{workdir} has no checkpoint yet (nothing in {directory}); "
                              f"train (or resume) the GAN with {hint}.")
    step = max(steps) if step is None else int(step)
    if step not in steps:
        raise GANWorkdirError(f"{directory} has no step {step}; it holds steps {steps}")

    gen_abstract, disc_abstract = gan.abstract_params()
    try:
        state = restore_state_fields(directory, step, {"gen_params": gen_abstract,
                                                       "critic_params": disc_abstract})
    except Exception as e:  # orbax raises many types; all mean "unreadable"
        raise GANWorkdirError(
            f"checkpoint {os.path.join(directory, str(step))} could not be read "
            f"({type(e).__name__}: {e}). It is corrupt or from a different network; move "
            f"{workdir} away and retrain with {hint}.") from e
    return TrainedGAN(gan=gan, gen_params=state["gen_params"], disc_params=state["critic_params"],
                      step=step, config=config, workdir=workdir)
