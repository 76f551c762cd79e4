"""The Clayton target at the paper's budget, with the forward-KL stage loss (not in QW).

    python experiments/temperflow.py --config experiments/configs/temperflow_clayton_paper.py \
        --workdir runs/temperflow_clayton_paper/p8 --config.data.dim=8

QW's batch of 2,000, 1,000 steps per beta and their spline size (32 bins, hidden
(64, 64)) on the coupling flow, with the stages after the first trained on the
forward KL from the reference, -E_p[log q] (``sampler.l2_form=forward_kl``), and
no final reverse-KL refinement. At p = 8 this meets the issue's check on a CPU
in both seeds run: max |P(x_j > 0) - 0.3| = 0.007 and 0.0078, all 256 sign
patterns, 18 betas (3,899 s of training alone; docs/temperflow.md, "The paper's
budget with the forward KL"); at p = 16 it meets it just, one seed: 0.0189, 256
patterns, 21 betas in 9,491 s. The same
budget with QW's L2 distance drains the light modes (max error 0.153). A cheaper
run: temperflow_clayton.py with --config.train.steps=500
--config.sampler.l2_form=forward_kl --config.sampler.final_kl_steps=0 gave
0.024 / 0.016 / 0.018 / 0.017 over seeds 0-3 at p = 8 (337 s of training alone).
"""

import ml_collections

from experiments.configs import temperflow_clayton


def get_config() -> ml_collections.ConfigDict:
    config = temperflow_clayton.get_config()
    config.data.batch_size = 2000
    config.train.steps = 1000           # per middle beta
    config.sampler.steps_init = 2000
    config.sampler.steps_final = 1000
    config.model.num_bins = 32
    config.model.hidden = (64, 64)
    config.sampler.l2_form = "forward_kl"
    # The reverse-KL refinement undid the forward KL's fit in every run measured
    # (p = 8 here: max error 0.006 -> 0.092 after 100 steps).
    config.sampler.final_kl_steps = 0
    config.train.keep_checkpoints = 40  # every stage's flow, for the diagnostics
    return config
