"""The shared ``train.*`` fields of an experiment config, turned into ``gmjax.training`` calls."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

import ml_collections
from jax.sharding import Mesh

from gmjax.experiment.config import ConfigError
from gmjax.training.loop import FitResult, fit
from gmjax.training.optim import make_optimizer
from gmjax.training.parallel import data_mesh


def fit_options(config: ml_collections.ConfigDict) -> Dict[str, int]:
    """The ``fit`` keyword arguments the ``train`` block gives.

    ``train.steps``, ``train.log_every``, ``train.checkpoint_every`` and
    ``train.eval_every`` (0: no evaluation during training) count updates and
    must be multiples of ``train.steps_per_call``, the updates one compiled
    call scans; ``train.keep_checkpoints`` is how many checkpoints are kept.

    Raises:
      ConfigError: naming an interval that is not such a multiple.
    """
    train = config.train
    options = dict(num_steps=train.steps, log_every=train.log_every,
                   checkpoint_every=train.checkpoint_every, eval_every=train.eval_every,
                   keep_checkpoints=train.keep_checkpoints, steps_per_call=train.steps_per_call)
    k = options["steps_per_call"]
    for field in ("steps", "log_every", "checkpoint_every", "eval_every"):
        value = train[field]
        if value < 0 or (k > 0 and value % k):
            raise ConfigError(f"--config.train.{field}={value} must be a non-negative multiple "
                              f"of --config.train.steps_per_call={k}")
    return options


def config_mesh(config: ml_collections.ConfigDict) -> Mesh:
    """The data mesh over ``train.num_devices`` local devices (0: all of them).

    Raises:
      ConfigError: when more devices are asked for than are visible.
    """
    try:
        return data_mesh(config.train.num_devices or None)
    except ValueError as e:
        raise ConfigError(f"--config.train.num_devices={config.train.num_devices}: {e}") from None


def check_optimizer(config: ml_collections.ConfigDict, total_steps: int = 1) -> None:
    """Builds ``make_optimizer(config.optim, total_steps)`` before any work.

    Raises:
      ConfigError: for a setting the optimizer refuses.
    """
    try:
        make_optimizer(config.optim, total_steps)
    except ValueError as e:
        raise ConfigError(f"bad --config.optim.*: {e}") from None


def check_fit(config: ml_collections.ConfigDict, total_steps: Optional[int] = None) -> None:
    """Checks, before any work, what a script that trains with ``fit_with_config`` and
    ``make_optimizer(config.optim, ...)`` builds from the ``train`` and ``optim`` blocks:
    the optimizer (``check_optimizer``; ``total_steps`` defaults to ``train.steps``), the
    mesh (``config_mesh``) and the fit options (``fit_options``). A script that trains
    otherwise calls the ones it uses.

    Raises:
      ConfigError: naming the field.
    """
    check_optimizer(config, config.train.steps if total_steps is None else total_steps)
    config_mesh(config)
    fit_options(config)


def fit_with_config(config: ml_collections.ConfigDict, state: Any, train_step: Callable,
                    batch_fn: Callable[[int], Any], workdir: str, mesh: Mesh,
                    eval_fn: Optional[Callable] = None, progress: Optional[bool] = None,
                    desc: str = "train", **kwargs: Any) -> FitResult:
    """``gmjax.training.fit`` with the ``fit_options`` of the experiment config;
    ``kwargs`` go to ``fit`` (``batch_leading_axes``, ...)."""
    return fit(state, train_step, batch_fn, workdir=workdir, mesh=mesh, eval_fn=eval_fn,
               progress=progress, desc=desc, **fit_options(config), **kwargs)
