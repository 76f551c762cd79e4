"""The Clayton target at the CPU budget with the forward-KL stage loss (not in QW).

    python experiments/temperflow.py --config experiments/configs/temperflow_clayton_forward_kl.py \
        --workdir runs/temperflow_clayton_fkl/p32 --config.data.dim=32

temperflow_clayton.py's flow and batch of 500, with six changes, each measured
on Clayton (docs/temperflow.md, "A slower learning-rate decay carries the
forward KL to p = 32 and 64" and "Rounds at beta = 1 from a fresh reference"):
- the stages after the first fit the forward KL from the reference,
  -E_p[log q] (``sampler.l2_form=forward_kl``), whose importance weights are
  p/r rather than the L2 distance's p^2/r;
- Adam steps that grow along the curve: middle stage i trains
  500 * 1.1^(i - 1) steps (``sampler.steps_growth``), so 500 at the first
  middle beta and 3,700 at beta = 0.99 for p = 32, instead of 200 at each: the
  mode weights move most in the last stages, where even steps left the flow
  lagging p_beta;
- the final stage at beta = 1 as 10 rounds of 400 steps, each from a fresh
  reference (``sampler.final_rounds``): P_beta(x_j > 0) falls by 0.12 over the
  last 0.05 of beta, and a reference a stage behind shows too little of the
  growing all-negative mode; the rounds close that gap;
- a fresh reference after every stage (``sampler.ref_every_stage``), not only
  at QW's kl cutoffs;
- the per-stage learning-rate decay 0.95 instead of the authors' 0.9: at p = 32
  and 64 the curve has 24-30 betas, and 0.9 per stage leaves the last ones, where
  the mode weights move most, with under a tenth of the peak rate.
And no reverse-KL refinement at the end: it undid the forward KL's fit in every
run measured. ``RECIPE=forward_kl bash experiments/scripts/temperflow_clayton.sh``
runs it at p = 8 ... 64 for the Table S1 layout. Measured on 2 CPU cores, each
run alone (max |P(x_j > 0) - 0.3| over the first 8 coordinates, 2*10^4 draws;
all 256 sign patterns in every run):

    p     this preset (seed 0 / 1)      without the rounds (seed 0 / 1)    even steps, one round
    8     0.0045 (245 s) / 0.0048       0.005 / 0.0039                     0.005 / 0.0062
    16    0.0052 (485 s) / 0.0072       0.0048 / 0.0105                    0.006 / 0.0085
    32    0.0045 (1,146 s) / 0.0048     0.0106 / 0.0071                    0.029 / 0.032
    64    0.0141 (4,840 s) / 0.0096     0.038                              0.088

So it meets the issue's 0.02 at every p, in both seeds.
"""

import ml_collections

from experiments.configs import temperflow_clayton


def get_config() -> ml_collections.ConfigDict:
    config = temperflow_clayton.get_config()
    config.train.steps = 500            # at the first middle beta
    config.sampler.steps_growth = 1.1   # x 1.1 per middle stage after it
    config.sampler.l2_form = "forward_kl"
    config.sampler.ref_every_stage = True
    config.sampler.lr_decay = 0.95
    config.sampler.final_kl_steps = 0
    config.sampler.final_rounds = 10    # 10 x 400 steps at beta = 1, a fresh reference each
    return config
