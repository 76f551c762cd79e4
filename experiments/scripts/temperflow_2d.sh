#!/usr/bin/env bash
# The 2-D TemperFlow experiment: TemperFlow and the KL sampler on circle, grid and
# cross (same seeds, same flow), plus the MCMC baselines. Tabulate with
#   python experiments/temperflow_table.py --runs runs/temperflow_2d
set -euo pipefail
RUNS=${RUNS:-runs/temperflow_2d}
CONFIG=experiments/configs/temperflow_2d.py
for target in circle grid cross; do
  python experiments/temperflow.py --config $CONFIG --workdir $RUNS/$target-temperflow \
    --config.data.name=$target --config.method=temperflow "$@"
  python experiments/temperflow.py --config $CONFIG --workdir $RUNS/$target-kl \
    --config.data.name=$target --config.method=kl \
    --config.sampler.steps_init=4000 --config.sampler.steps_final=4000 "$@"
done
for target in circle grid cross; do
  for method in mh hmc pt; do
    python experiments/temperflow.py --config $CONFIG --workdir $RUNS/$target-$method \
      --config.data.name=$target --config.method=$method "$@"
  done
done
