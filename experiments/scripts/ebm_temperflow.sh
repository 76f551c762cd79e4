#!/usr/bin/env bash
# An energy-based model learned from 8gaussians, then sampled: TemperFlow and the MCMC
# baselines (random-walk MH, HMC, parallel tempering) on p(x) ∝ exp(-E_theta(x)).
# Writes into RUNS: ebm/ (density.png, langevin.png, metrics.json) and one workdir per
# sampler (samples.png: its draws over the contours of exp(-E); metrics.json: modes
# captured, high-quality share and mode-weight errors against the data's 8 components).
# A run whose metrics.json exists is skipped. Extra arguments go to every sampler run.
#   EBM_STEPS   training steps of the energy (default: the config's 3,000)
#   BUDGET      "small": shorter TemperFlow stages and chains, for a check in minutes
set -euo pipefail
RUNS=${RUNS:-runs/ebm_temperflow}
EBM_STEPS=${EBM_STEPS:-3000}
BUDGET=${BUDGET:-full}
case $BUDGET in
  full) FLOW=(); CHAINS=() ;;
  small) FLOW=(--config.train.steps=200 --config.sampler.steps_init=300
               --config.sampler.steps_final=500 --config.eval.num_samples=5000
               --config.eval.timed_draws=5000 --config.eval.timing_repeats=2
               --config.eval.stage_weight_draws=2000)
         CHAINS=(--config.eval.num_samples=5000 --config.mcmc.burn_in=500) ;;
  *) echo "BUDGET must be full or small, got '$BUDGET'" >&2; exit 2 ;;
esac
export PYTHONPATH=${PYTHONPATH:-.}
if [ ! -f "$RUNS/ebm/metrics.json" ]; then
  python experiments/ebm.py --config experiments/configs/ebm_toy.py --workdir "$RUNS/ebm" \
    --config.train.steps="$EBM_STEPS"
fi
for method in temperflow mh hmc pt; do
  workdir=$RUNS/$method
  [ -f "$workdir/metrics.json" ] && continue
  if [ $method = temperflow ]; then budget=("${FLOW[@]}"); else budget=("${CHAINS[@]}"); fi
  python experiments/temperflow.py --config experiments/configs/temperflow_ebm.py \
    --workdir "$workdir" --config.data.options.workdir="$RUNS/ebm" \
    --config.method=$method ${budget[@]+"${budget[@]}"} "$@"
done
