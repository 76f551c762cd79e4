#!/usr/bin/env bash
# The 2-D TemperFlow experiment: TemperFlow and the KL sampler on circle, grid and
# cross (same seed, same flow), then the MCMC baselines (100 chains each). A run whose
# metrics.json exists is skipped. Tabulate with
#   python experiments/temperflow_table.py --kind=2d --runs runs/temperflow_2d
set -euo pipefail
RUNS=${RUNS:-runs/temperflow_2d}
CONFIG=experiments/configs/temperflow_2d.py
run() {  # run <workdir> <args...>
  local workdir=$1; shift
  [ -f "$workdir/metrics.json" ] && return 0
  python experiments/temperflow.py --config $CONFIG --workdir "$workdir" "$@"
}
for target in circle grid cross; do
  run $RUNS/$target-temperflow --config.data.name=$target --config.method=temperflow "$@"
  run $RUNS/$target-kl --config.data.name=$target --config.method=kl \
    --config.sampler.steps_init=2000 --config.sampler.steps_final=2000 "$@"
done
for target in circle grid cross; do
  for method in mh hmc pt; do
    run $RUNS/$target-$method --config.data.name=$target --config.method=$method "$@"
  done
done
