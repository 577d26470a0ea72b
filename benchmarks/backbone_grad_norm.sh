#!/usr/bin/env bash
# Gradient norm against horizon, 2 to 200 steps, through every world model awmctl has (every AWM
# backbone, the Markovian model and the history model) and the simulator: the numbers behind
# docs/benchmarks.md "The state-space AWM" and docs/results.md "The theory's growth rates".
# Models are fitted on H = 100 episodes of TASK with a context of 200 steps, so that imagination
# may run past the data's horizon.
# Run: bash benchmarks/backbone_grad_norm.sh [RUNS_DIR]
#      TASK=double-pendulum bash benchmarks/backbone_grad_norm.sh
#      MODELS="markov-mlp hwm-transformer" bash benchmarks/backbone_grad_norm.sh   # some models
# (default RUNS_DIR runs/backbone-grad-norm for CANCER, runs/backbone-grad-norm-TASK otherwise;
# resumable: finished outputs are kept, delete a directory to redo it). FIT_STEPS (default 1000).
# Each model's norms come from its own `grad-norm` run (the same --seed draws the same action
# sequences for every model), and its rows replace that model's rows in the table,
# benchmarks/results/backbone_grad_norm.csv (CANCER) or benchmarks/results/backbone_grad_norm_TASK.csv.
set -euo pipefail
TASK=${TASK:-cancer}
if [ "$TASK" = cancer ]; then suffix=""; else suffix="-$TASK"; fi
RUNS=${1:-runs/backbone-grad-norm$suffix}
AWMCTL=${AWMCTL:-.venv/bin/awmctl}
PYTHON=${PYTHON:-.venv/bin/python}
FIT_STEPS=${FIT_STEPS:-1000}
MODELS=${MODELS:-awm-ssm awm-transformer awm-lstm awm-gru awm-rnn markov-mlp hwm-transformer simulator}
HORIZONS=2,5,10,20,50,100,150,200
TABLE="benchmarks/results/backbone_grad_norm${suffix//-/_}.csv"

run() { local out=$1; shift; [ -f "$out/meta.json" ] || "$AWMCTL" "$@" --out "$out"; }

run "$RUNS/data" collect --task "$TASK" --horizon 100 --episodes 512 --seed 0
for m in $MODELS; do
  if [ "$m" = simulator ]; then
    run "$RUNS/grad-norm-$m" grad-norm --model simulator --task "$TASK" --base-horizon 100 \
      --horizons "$HORIZONS" --samples 50 --seed 0 --json
  else
    run "$RUNS/$m" fit-model --data "$RUNS/data" --model "$m" --steps "$FIT_STEPS" --log-every 100 --context 200 --seed 0
    run "$RUNS/grad-norm-$m" grad-norm --model "$RUNS/$m" --horizons "$HORIZONS" --samples 50 --seed 0 --json
  fi
  # this model's rows replace its rows in the table (the header and the other models' stay)
  "$PYTHON" - "$TABLE" "$RUNS/grad-norm-$m/grad_norm.csv" <<'PY'
import csv, sys
from pathlib import Path
table, new = Path(sys.argv[1]), list(csv.DictReader(open(sys.argv[2])))
names = {r["model"] for r in new}
old = list(csv.DictReader(open(table))) if table.exists() else []
rows = [r for r in old if r["model"] not in names] + new
with open(table, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(new[0]))
    writer.writeheader()
    writer.writerows(rows)
PY
done
