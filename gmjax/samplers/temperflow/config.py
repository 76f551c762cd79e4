"""The hyperparameters of TemperFlow, checked when they are made."""

from __future__ import annotations

import dataclasses
from typing import Dict, Tuple

from gmjax.objectives.sampler_losses import STAGE_LOSSES

# The reference-refresh thresholds of the authors' code: refresh when kl has
# fallen below these fractions of the first stage's kl, in turn.
DEFAULT_REF_CUTOFFS = (0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.01, 0.001)

METHODS = ("temperflow", "kl")
BETA_SCHEDULES = ("adaptive", "fixed_grid")
REF_REFRESH = ("cutoffs", "every_stage")


@dataclasses.dataclass(frozen=True)
class TemperFlowConfig:
    """Hyperparameters of the sampler (defaults: QW and the authors' code).

    The optimizer (name, base learning rate, schedule within a stage,
    clipping) is the shared ``optim`` config block, built by
    ``gmjax.training.make_optimizer``; these are the tempering's own.

    Attributes:
      method: ``temperflow`` (stages along the tempering curve) or ``kl``
        (one reverse-KL stage straight at beta = 1: the KL sampler, trained for
        ``steps_init + steps_final`` steps).
      beta_schedule: ``adaptive`` (QW Section 3.3: each beta from the estimated
        kl(beta)) or ``fixed_grid`` (``num_fixed_betas`` geometric betas from
        ``beta0`` to 1, a fresh reference after every stage: the ablation).
      stage_loss: the loss of the stages after the first, from
        ``STAGE_LOSSES``: ``l2_distance`` (QW), or, not in QW, ``l2_angle`` or
        ``forward_kl`` (neither needs U_beta).
      beta0: the first temperature beta_1.
      kl_decay: the factor by which each adaptive step should shrink kl(beta).
      steps_init, steps_mid, steps_final: optimizer steps of the first stage,
        of each middle stage and of each round of the final stage at beta = 1.
      steps_growth: middle stage i (1, 2, ...) trains
        ``steps_mid * steps_growth ** (i - 1)`` steps, rounded to a multiple of
        ``steps_per_call`` (1: the same for every stage, QW).
      final_rounds: rounds of the final stage at beta = 1 (1: QW); every round
        after the first takes the flow as the previous one left it for
        reference, with a fresh estimate of log U_1.
      final_kl_steps: steps of the authors' reverse-KL refinement at beta = 1
        after the final stage (0: none).
      batch_size: draws per step (split over devices).
      lr_decay: the peak learning rate of stage i is
        ``lr / sqrt(beta_i) * lr_decay ** i`` (``schedule.stage_peak_lr``).
      max_betas: at most this many temperatures before the final stage.
      ref_refresh: ``cutoffs`` (the authors' default: refresh the reference
        when kl falls below the next of ``DEFAULT_REF_CUTOFFS`` times the first
        kl) or ``every_stage``.
      estimate_draws: reference draws for the kl and log U_beta estimates.
      upweight: the authors' max(1, p/q)^2 terms in the L2 distance.
      l2_kl_weight: weight w of a reverse-KL term added to every reference
        stage loss (the authors' ``"l2+kl"`` at w = 1; 0: off).
      defensive_share, defensive_scale: the reference draws' latents come from
        (1 - share) N(0, I) + share N(0, scale^2 I) (not in QW; 0: off).
      steps_per_call: updates scanned in one compiled call.
    """

    method: str = "temperflow"
    beta_schedule: str = "adaptive"
    stage_loss: str = "l2_distance"
    beta0: float = 0.1
    kl_decay: float = 0.8
    steps_init: int = 2000
    steps_mid: int = 2000
    steps_final: int = 2000
    steps_growth: float = 1.0
    final_rounds: int = 1
    final_kl_steps: int = 0
    batch_size: int = 1000
    lr_decay: float = 0.9
    max_betas: int = 100
    num_fixed_betas: int = 10
    ref_refresh: str = "cutoffs"
    estimate_draws: int = 10_000
    upweight: bool = False
    l2_kl_weight: float = 0.0
    defensive_share: float = 0.0
    defensive_scale: float = 1.5
    steps_per_call: int = 100

    def __post_init__(self):
        for name, valid in (("method", METHODS), ("beta_schedule", BETA_SCHEDULES),
                            ("ref_refresh", REF_REFRESH)):
            if getattr(self, name) not in valid:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; valid: {valid}")
        STAGE_LOSSES.get(self.stage_loss)
        if self.stage_loss == "reverse_kl":
            raise ValueError("stage_loss='reverse_kl' is the KL sampler: use method='kl'")
        if self.upweight and self.stage_loss != "l2_distance":
            raise ValueError(f"upweight applies to stage_loss='l2_distance' only, "
                             f"not {self.stage_loss!r}")
        if not 0.0 < self.beta0 < 1.0:
            raise ValueError(f"beta0 must be in (0, 1), got {self.beta0}")
        if not 0.0 < self.kl_decay < 1.0:
            raise ValueError(f"kl_decay must be in (0, 1), got {self.kl_decay}")
        if self.l2_kl_weight < 0.0:
            raise ValueError(f"l2_kl_weight must be >= 0, got {self.l2_kl_weight}")
        if not 0.0 <= self.defensive_share < 1.0:
            raise ValueError(f"defensive_share must be in [0, 1), got {self.defensive_share}")
        if self.defensive_share and not self.defensive_scale > 1.0:
            raise ValueError(f"defensive_scale must be > 1 (the wide latent component's sd) "
                             f"when defensive_share > 0, got {self.defensive_scale}")
        if not self.steps_growth >= 1.0:
            raise ValueError(f"steps_growth must be >= 1 (1: the same steps for every middle "
                             f"stage), got {self.steps_growth}")
        if self.final_rounds < 1:
            raise ValueError(f"final_rounds must be >= 1, got {self.final_rounds}")
        if self.num_fixed_betas < 2:
            raise ValueError(f"num_fixed_betas must be >= 2 (beta0 and 1), "
                             f"got {self.num_fixed_betas}")
        if self.max_betas < 2:
            raise ValueError(f"max_betas must be >= 2, got {self.max_betas}")
        for name in ("steps_init", "steps_mid", "steps_final", "final_kl_steps"):
            value = getattr(self, name)
            if value < (name != "final_kl_steps") or value % self.steps_per_call:
                raise ValueError(f"{name}={value} must be a positive multiple of "
                                 f"steps_per_call={self.steps_per_call}")

    @property
    def ref_cutoffs(self) -> Tuple[float, ...]:
        return DEFAULT_REF_CUTOFFS if self.ref_refresh == "cutoffs" else ()

    @staticmethod
    def unused_fields(method: str, beta_schedule: str = "adaptive",
                      stage_loss: str = "l2_distance", defensive_share: float = 0.0
                      ) -> Dict[str, str]:
        """The fields that these choices leave without effect, and why."""
        if method == "kl":
            kept = ("method", "steps_init", "steps_final", "batch_size", "steps_per_call")
            return {f.name: "method='kl' trains one reverse-KL stage at beta = 1 for "
                            "steps_init + steps_final steps"
                    for f in dataclasses.fields(TemperFlowConfig) if f.name not in kept}
        unused = {}
        if beta_schedule == "fixed_grid":
            unused.update(dict.fromkeys(
                ("kl_decay", "max_betas", "ref_refresh"),
                "beta_schedule='fixed_grid' takes its betas from a grid and a fresh "
                "reference every stage"))
        else:
            unused["num_fixed_betas"] = "only beta_schedule='fixed_grid' uses it"
        if stage_loss != "l2_distance":
            unused["upweight"] = "only stage_loss='l2_distance' has the authors' upweighting"
        if not defensive_share:
            unused["defensive_scale"] = "defensive_share is 0: no defensive reference"
        return unused
