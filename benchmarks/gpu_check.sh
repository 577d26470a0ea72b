#!/usr/bin/env bash
# What awmctl does on a GPU, as one prepared run that ends inside 8 minutes (a GPU is lent for
# minutes at a time): the device; online BPO on CANCER at H = 100 through the transformer and
# LSTM AWMs at 1, 8 and 64 seeds, each count in one compiled program (seeds vectorised), at the
# paper's schedule; fit-model's steps per second; the default float32 matmul precision (TF32)
# against `highest`, on the gradients and on the final return (the transformer's 8 seeds again at
# `highest`); awmctl's defaults (the converged preset) at 8 seeds, through one model and through
# an ensemble of 3; peak device memory of each;
# then the model and algorithm tests on the device.
#
#   bash benchmarks/gpu_check.sh DIR        # figures under DIR (results.jsonl, report.md, logs)
#
# Figures are appended to DIR/results.jsonl as they come (benchmarks/gpu_check.py's parts) and
# drawn as markdown tables into DIR/report.md at the end. The parts' processes compile at the same
# time (on the host's cores) and take turns on the device for their timed loops (a file lock), so
# no figure is timed while another process uses the card. Each timed loop has a cap; a run the cap
# stops reports how far it came and its projected whole. Hard deadlines keep the whole script
# inside GPU_CHECK_SECONDS.
#
# Environment: PYTHON (default python3), with awmctl importable (`pip install -e .`, or a wheel);
# WHEELS=DIR installs the wheels in DIR first into a scratch folder on PYTHONPATH (a machine with
# no network: tensorboardX, beartype, awmctl); GPU_CHECK_SECONDS (default 480: the whole run);
# GPU_CHECK_TINY=1 runs every part at tiny sizes (tests/test_gpu_check.py runs it so on a CPU).
set -uo pipefail
DIR=${1:?usage: bash benchmarks/gpu_check.sh DIR}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
cd "$ROOT"
PY=${PYTHON:-python3}
BUDGET=${GPU_CHECK_SECONDS:-480}
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
LOCK=$SCRATCH/device.lock
RESULTS=$DIR/results.jsonl
LOG=$DIR/log.txt
: > "$RESULTS"
: > "$LOG"
# Several processes share the card: each allocates what it uses, not 75% of the memory up front.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
export PYTHONUNBUFFERED=1

if [ -n "${WHEELS:-}" ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SCRATCH/site" \
    "$WHEELS"/*.whl >> "$LOG" 2>&1 || { echo "installing $WHEELS failed (see $LOG)"; exit 1; }
  export PYTHONPATH=$SCRATCH/site${PYTHONPATH:+:$PYTHONPATH}
fi

if [ "${GPU_CHECK_TINY:-0}" = 1 ]; then
  # (the smallest model: what the tiny run checks is the script, on a CPU that compiles slowly)
  HORIZON=20; ENV_STEPS=96; WARMUP=(--warmup 32); SEEDS="2"; MODELS="markov-mlp"
  HIGHEST_SEEDS=2; CAP=5; EPISODES=32; LOG_EVERY=5; MATMUL=256; FIT_STEPS=2
  TESTS=(tests/test_stats.py); WORKERS=1; TESTS_SECONDS=60
else
  HORIZON=100; ENV_STEPS=5000; WARMUP=(); SEEDS="1 8 64"; MODELS="awm-transformer awm-lstm"
  HIGHEST_SEEDS=8; CAP=35; EPISODES=512; LOG_EVERY=50; MATMUL=4096; FIT_STEPS=50
  TESTS=(tests/test_models.py tests/test_lstm.py tests/test_ssm.py tests/test_bpo.py
         tests/test_online.py tests/test_trust_gate.py tests/test_loop_parts.py
         tests/test_fit_model.py tests/test_baselines.py tests/test_analysis.py)
  WORKERS=8; TESTS_SECONDS=130
fi

left() { echo $((BUDGET - SECONDS)); }
part() {  # part NAME SECONDS ARGS...: one part in the foreground, its log appended
  local name=$1 seconds=$2; shift 2
  echo "== $name" >> "$LOG"
  timeout -k 5 "$seconds" "$PY" benchmarks/gpu_check.py "$@" --out "$RESULTS" >> "$LOG" 2>&1
  echo "== $name: exit $?" >> "$LOG"
}

echo "gpu_check: $(date -u +%FT%TZ), budget ${BUDGET}s, results in $DIR"
command -v nvidia-smi > /dev/null && nvidia-smi >> "$LOG" 2>&1
part device 60 device --matmul "$MATMUL"

# The timed parts: launched together (their compilations overlap), timed one at a time.
GROUP_END=$((SECONDS + $(left) - TESTS_SECONDS))
DEADLINE=$(($(date +%s) + GROUP_END - SECONDS))
names=()
launch() {  # launch NAME ARGS...
  local name=$1; shift
  names+=("$name")
  (
    timeout -k 5 $((GROUP_END - SECONDS + 30)) "$PY" benchmarks/gpu_check.py "$@" \
      --out "$RESULTS" --lock "$LOCK" --deadline "$DEADLINE" > "$SCRATCH/$name.log" 2>&1
    echo "== $name: exit $?" >> "$SCRATCH/$name.log"
  ) &
}
first=${MODELS%% *}
launch precision precision --model "$first" --horizon "$HORIZON" --fit-steps "$FIT_STEPS"
for model in $MODELS; do
  for n in $SEEDS; do
    launch "online-$model-$n" online --model "$model" --seeds "$n" --horizon "$HORIZON" \
      --env-steps "$ENV_STEPS" "${WARMUP[@]}" --cap "$CAP"
  done
  launch "fit-$model" fit --model "$model" --horizon "$HORIZON" --episodes "$EPISODES" \
    --log-every "$LOG_EVERY" --cap 10
done
GPU_CHECK_PRECISION=highest launch "online-$first-$HIGHEST_SEEDS-highest" online \
  --model "$first" --seeds "$HIGHEST_SEEDS" --horizon "$HORIZON" --env-steps "$ENV_STEPS" \
  "${WARMUP[@]}" --cap "$CAP"
# awmctl's defaults (the converged preset: 4 policy updates a round, the trust gate) as users run
launch "online-$first-$HIGHEST_SEEDS-converged" online --model "$first" --seeds "$HIGHEST_SEEDS" \
  --preset converged --horizon "$HORIZON" --env-steps "$ENV_STEPS" "${WARMUP[@]}" --cap "$CAP"
# the same through an ensemble of 3 members, vectorised as the seeds are (what an ensemble costs)
launch "online-$first-$HIGHEST_SEEDS-ensemble" online --model "$first" --seeds "$HIGHEST_SEEDS" \
  --preset converged --ensemble 3 --pessimism 1 --horizon "$HORIZON" --env-steps "$ENV_STEPS" \
  "${WARMUP[@]}" --cap "$CAP"
wait
for name in "${names[@]}"; do echo "== $name" >> "$LOG"; cat "$SCRATCH/$name.log" >> "$LOG"; done
echo "timed parts done at ${SECONDS}s: $(grep -c . "$RESULTS") rows"

# The model and algorithm tests on the device (the user's XLA flags, not the suite's CPU ones).
seconds=$(left)
if [ "$seconds" -gt 20 ]; then
  AWMCTL_TEST_OPTIMISED=1 timeout -k 5 "$seconds" "$PY" -m pytest -p no:cacheprovider -v \
    -n "$WORKERS" "${TESTS[@]}" > "$DIR/tests.txt" 2>&1
  echo "tests exit $? at ${SECONDS}s"
  "$PY" benchmarks/gpu_check.py tests --log "$DIR/tests.txt" --out "$RESULTS" >> "$LOG" 2>&1
else
  echo "no time left for the tests"
fi

"$PY" benchmarks/gpu_check.py report "$RESULTS" | tee "$DIR/report.md"
echo "gpu_check: done in ${SECONDS}s"
