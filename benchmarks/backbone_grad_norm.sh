#!/usr/bin/env bash
# Gradient norm against horizon, 2 to 200 steps, through every AWM backbone (the state-space one
# beside the transformer, LSTM, GRU and RNN) and the simulator: the numbers behind
# docs/benchmarks.md "The state-space AWM". Models are fitted on H = 100 episodes of TASK with a
# context of 200 steps, so that imagination may run past the data's horizon.
# Run: bash benchmarks/backbone_grad_norm.sh [RUNS_DIR]
#      TASK=double-pendulum bash benchmarks/backbone_grad_norm.sh
# (default RUNS_DIR runs/backbone-grad-norm for CANCER, runs/backbone-grad-norm-TASK otherwise;
# resumable: finished outputs are kept, delete a directory to redo it). FIT_STEPS (default 1000).
# The table is copied to benchmarks/results/backbone_grad_norm.csv (CANCER) or
# benchmarks/results/backbone_grad_norm_TASK.csv.
set -euo pipefail
TASK=${TASK:-cancer}
if [ "$TASK" = cancer ]; then suffix=""; else suffix="-$TASK"; fi
RUNS=${1:-runs/backbone-grad-norm$suffix}
AWMCTL=${AWMCTL:-.venv/bin/awmctl}
FIT_STEPS=${FIT_STEPS:-1000}

run() { local out=$1; shift; [ -f "$out/meta.json" ] || "$AWMCTL" "$@" --out "$out"; }

run "$RUNS/data" collect --task "$TASK" --horizon 100 --episodes 512 --seed 0
models=()
for m in awm-ssm awm-transformer awm-lstm awm-gru awm-rnn; do
  run "$RUNS/$m" fit-model --data "$RUNS/data" --model "$m" --steps "$FIT_STEPS" --log-every 100 --context 200 --seed 0
  models+=(--model "$RUNS/$m")
done
run "$RUNS/grad-norm" grad-norm "${models[@]}" --model simulator --horizons 2,5,10,20,50,100,150,200 --samples 50 --seed 0 --json
cp "$RUNS/grad-norm/grad_norm.csv" "benchmarks/results/backbone_grad_norm${suffix//-/_}.csv"
