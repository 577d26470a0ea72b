#!/usr/bin/env bash
# The runs behind docs/results.md "Why AWMs give better gradients" (the paper's Figures 3 and 4).
# Run: bash benchmarks/analysis_claims.sh [RUNS_DIR]   (default runs/claims; resumable: finished
# outputs are kept, delete a directory to redo it). About 45 minutes on 2 CPU cores.
set -euo pipefail
RUNS=${1:-runs/claims}
AWMCTL=${AWMCTL:-.venv/bin/awmctl}
MODELS="markov-mlp awm-transformer hwm-transformer"
FIT_STEPS=${FIT_STEPS:-2000}

run() { local out=$1; shift; [ -f "$out/meta.json" ] || "$AWMCTL" "$@" --out "$out"; }

for task in double-pendulum bounce; do
  dir=$RUNS/$task
  run "$dir/data" collect --task "$task" --horizon 100 --episodes 1024 --seed 0
  models=()
  for m in $MODELS; do
    run "$dir/$m" fit-model --data "$dir/data" --model "$m" --steps "$FIT_STEPS" --seed 0
    models+=(--model "$dir/$m")
  done
  if [ "$task" = double-pendulum ]; then
    # The Markovian model again with 10x the budget: does its Jacobian start to explode?
    run "$dir/markov-mlp-20k" fit-model --data "$dir/data" --model markov-mlp --steps 20000 --log-every 500 --seed 0
    models+=(--model "$dir/markov-mlp-20k")
  fi
  run "$dir/grad-norm" grad-norm "${models[@]}" --model simulator --horizons 2,5,10,20,30,50,75,100 --samples 50 --seed 0 --json
  run "$dir/landscape" landscape "${models[@]}" --points 401 --seed 0 --json
done
