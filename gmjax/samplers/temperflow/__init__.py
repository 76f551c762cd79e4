"""TemperFlow (Qiu and Wang, JASA 2024): a flow trained along a tempering curve.

``config``: ``TemperFlowConfig``; ``schedule``: the adaptive-beta and
reference-refresh rules as pure functions; ``kernel``: the typed state and
stage functions; ``run``: the stage loop on the training engine.
"""

from gmjax.samplers.temperflow.config import DEFAULT_REF_CUTOFFS, TemperFlowConfig
from gmjax.samplers.temperflow.kernel import (DONE, FINAL, FIRST, MIDDLE, MIN_ESS, REFINE,
                                              ImportanceCollapseWarning, Schedule, Stage,
                                              StageInfo, TemperFlow, TemperFlowState)
from gmjax.samplers.temperflow.run import TemperFlowRun, mode_weight_hook, run_temperflow
from gmjax.samplers.temperflow.schedule import next_log_beta_step, stage_peak_lr

__all__ = [
    "DEFAULT_REF_CUTOFFS", "TemperFlowConfig", "DONE", "FINAL", "FIRST", "MIDDLE", "MIN_ESS",
    "REFINE", "ImportanceCollapseWarning", "Schedule", "Stage", "StageInfo", "TemperFlow",
    "TemperFlowState", "TemperFlowRun", "mode_weight_hook", "run_temperflow", "next_log_beta_step",
    "stage_peak_lr",
]
