#!/usr/bin/env bash
# A sweep as a SLURM array: one row of ROWS per array task, resumed when SLURM requeues it.
#
#   sbatch --array=0-$(( $(grep -cv '^\s*\(#\|$\)' docs/examples/sweep_rows.txt) - 1 )) docs/examples/slurm_sweep.sh
#
# Each row of ROWS is "NAME awmctl-arguments" (no --out: the row writes OUT/NAME). A row whose
# directory is complete is skipped, so requeued or repeated tasks only do what is left; an
# unfinished one resumes from its latest checkpoint (same arguments, same numbers). Before the
# time limit (or on preemption) SLURM sends SIGTERM: awmctl checkpoints the chunk it is in and
# exits 143, and this script asks SLURM to requeue the task. Every task shares one persistent
# JAX compilation cache, so a program is compiled once for the whole sweep.
#
# Works without SLURM too (for a test or a workstation): SLURM_ARRAY_TASK_ID=3 bash slurm_sweep.sh
#
#SBATCH --job-name=awmctl-sweep
#SBATCH --cpus-per-task=2
#SBATCH --time=02:00:00
#SBATCH --requeue
#SBATCH --signal=B:TERM@120
#SBATCH --output=awmctl-sweep-%A_%a.log
set -euo pipefail

ROWS=${ROWS:-docs/examples/sweep_rows.txt}
OUT=${OUT:-runs/sweep}
AWMCTL=${AWMCTL:-awmctl}
export AWMCTL_COMPILATION_CACHE=${AWMCTL_COMPILATION_CACHE:-$OUT/.jax-cache}
# Seeds of a row run one after another on a CPU (the default there); on a GPU node they are
# vectorised. Checkpoint at least every 5 minutes of work.
export AWMCTL_CHECKPOINT_SECONDS=${AWMCTL_CHECKPOINT_SECONDS:-300}
# The log (--output above) is not a terminal: awmctl prints a plain progress line this often.
export AWMCTL_PROGRESS_SECONDS=${AWMCTL_PROGRESS_SECONDS:-60}
# Settings every row shares, as a --config file (rows' own arguments override it); none if unset.
CONFIG=${CONFIG:-}

task_id=${SLURM_ARRAY_TASK_ID:?set SLURM_ARRAY_TASK_ID (sbatch --array does)}
row=$(grep -v '^[[:space:]]*\(#\|$\)' "$ROWS" | sed -n "$((task_id + 1))p")
if [[ -z "$row" ]]; then
    echo "no row $task_id in $ROWS" >&2
    exit 2
fi
read -r name args <<<"$row"
mkdir -p "$OUT"
if [[ -f "$OUT/$name/meta.json" ]] && grep -q '"status": "complete"' "$OUT/$name/meta.json"; then
    echo "$name: already complete" >&2
    exit 0
fi

# awmctl runs in the background so that this shell can pass SLURM's SIGTERM on to it.
# shellcheck disable=SC2086  # the row's arguments are meant to split into words
config=()
[[ -n "$CONFIG" ]] && config=(--config "$CONFIG")
$AWMCTL $args ${config[@]+"${config[@]}"} --out "$OUT/$name" --json >"$OUT/$name.json" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null || true' TERM
status=0
wait "$pid" || status=$?
while kill -0 "$pid" 2>/dev/null; do  # a trapped SIGTERM interrupts wait: wait for awmctl to finish
    status=0
    wait "$pid" || status=$?
done
if [[ $status -eq 143 ]]; then
    echo "$name: checkpointed on SIGTERM; requeueing" >&2
    if [[ -n "${SLURM_JOB_ID:-}" ]] && command -v scontrol >/dev/null; then
        scontrol requeue "${SLURM_ARRAY_JOB_ID:-$SLURM_JOB_ID}_${task_id}"
    fi
fi
exit "$status"
