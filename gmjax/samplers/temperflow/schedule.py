"""The rules of TemperFlow's schedule, as small pure functions (QW Section 3.3).

* ``next_log_beta_step``: how far to move log beta after a stage, from the
  estimated kl(beta) = KL(p_beta || p_1) and its derivative;
* ``refresh_reference``: whether the next stage gets a fresh reference flow;
* ``stage_peak_lr``: the peak learning rate of a stage;
* ``fixed_grid``: the betas of the fixed-grid ablation;
* ``middle_steps``: how many optimizer steps a middle stage trains.
"""

from __future__ import annotations

import math
from typing import Sequence, Tuple

import numpy as np

# The weight of the previous average in the moving average of past steps.
STEP_AVERAGE_DECAY = 0.9


def next_log_beta_step(kl: float, kl_grad: float, beta: float, step_sum: float,
                       step_weight: float, kl_decay: float) -> float:
    """The adaptive step in log beta.

    The step after which the linearized kl(beta) has shrunk by ``kl_decay``:
    since d kl / d log beta = beta d kl / d beta,

        delta = -(1 - kl_decay) kl / (beta d kl / d beta).

    The first step (``step_weight == 0``) is capped at 1; later ones are
    clipped to [avg / 2, 2 avg], where ``avg = step_sum / step_weight`` is the
    exponentially weighted mean of the past steps' sizes
    (``update_step_average``), so that one noisy estimate can neither stall
    nor skip the curve.
    """
    delta = -(1.0 - kl_decay) * kl / beta / kl_grad if kl_grad != 0 else math.inf
    if not math.isfinite(delta):
        delta = math.inf
    if step_weight == 0:
        return float(min(delta, 1.0))
    avg = step_sum / step_weight
    return float(min(max(abs(delta), 0.5 * avg), 2.0 * avg))


def update_step_average(step_sum: float, step_weight: float, delta: float
                        ) -> Tuple[float, float]:
    """The moving average's numerator and denominator after step ``delta``:
    the newest step has weight 1, the one before 0.9, then 0.81, ..."""
    return (STEP_AVERAGE_DECAY * step_sum + abs(delta),
            STEP_AVERAGE_DECAY * step_weight + 1.0)


def refresh_reference(kl: float, first_kl: float, cutoffs_used: int,
                      cutoffs: Sequence[float]) -> Tuple[bool, int]:
    """``(refresh, cutoffs_used)`` after a stage whose next kl is ``kl``.

    With ``cutoffs`` (fractions of the first stage's kl, the authors' rule),
    refresh when kl falls below the next unused cutoff times ``first_kl``,
    and use that cutoff up; with no cutoffs, refresh after every stage.
    """
    if not cutoffs:
        return True, cutoffs_used
    if cutoffs_used < len(cutoffs) and kl < cutoffs[cutoffs_used] * first_kl:
        return True, cutoffs_used + 1
    return False, cutoffs_used


def stage_peak_lr(lr: float, beta: float, lr_decay: float, stage: int) -> float:
    """``lr / sqrt(beta) * lr_decay ** stage``: the peak rate of stage ``stage``
    (the authors' rule; the stage's own schedule, one-cycle by default, rises
    to it and falls from it)."""
    return lr / math.sqrt(beta) * lr_decay ** stage


def fixed_grid(beta0: float, num_betas: int) -> np.ndarray:
    """``num_betas`` geometrically spaced betas from ``beta0`` to 1."""
    return np.geomspace(beta0, 1.0, num_betas)


def middle_steps(steps_mid: int, steps_growth: float, stage: int, steps_per_call: int) -> int:
    """Steps of middle stage ``stage`` (1, 2, ...): ``steps_mid * steps_growth ** (stage - 1)``,
    rounded to a positive multiple of ``steps_per_call``."""
    calls = max(1, round(steps_mid * steps_growth ** (stage - 1) / steps_per_call))
    return steps_per_call * calls
