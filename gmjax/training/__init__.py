"""Train states, built train steps (single, data-parallel, min-max), the fit loop, checkpoints."""

from gmjax.training.checkpoint import CheckpointError, Checkpointer
from gmjax.training.logging import MetricsWriter, read_jsonl
from gmjax.training.loop import FitResult, NonFiniteError, fit
from gmjax.training.minmax import make_minmax_step
from gmjax.training.optim import OPTIMIZERS, SCHEDULES, make_optimizer
from gmjax.training.parallel import (DATA_AXIS, data_mesh, initialize_distributed, replicate,
                                     shard_batch)
from gmjax.training.state import MinMaxState, TrainState, all_finite
from gmjax.training.step import TrainStep, make_eval_step, make_train_step

__all__ = [
    "CheckpointError", "Checkpointer", "MetricsWriter", "read_jsonl", "FitResult",
    "NonFiniteError", "fit", "make_minmax_step", "OPTIMIZERS", "SCHEDULES", "make_optimizer",
    "DATA_AXIS", "data_mesh", "initialize_distributed", "replicate", "shard_batch",
    "MinMaxState", "TrainState", "TrainStep", "all_finite", "make_eval_step", "make_train_step",
]
