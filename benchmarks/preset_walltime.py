"""Wall time of one online run at the converged defaults against the paper's budget, same machine.

Run: .venv/bin/python benchmarks/preset_walltime.py [--model awm-transformer] [--task cancer]
     [--horizon 100] [--pairs 2] [--out benchmarks/results/preset_walltime.jsonl]

Each pair runs `awmctl optimize-policy --online --model M --task T --horizon H --seed 0` twice
in fresh processes, once at the defaults (`--preset converged`) and once with `--preset paper`,
one after the other (so that both see the same machine), with JAX's persistent compilation cache
off (every run compiles, as a user's first run does). A row per run is appended to --out, tagged
with the machine and versions; a pair already there for this machine is skipped, so an
interrupted benchmark resumes; so is a change of the converged preset's values, which times anew.
Prints each preset's median wall seconds and the ratio of the
medians (docs/usage.md, "Presets"; the issue's target: converged <= 1.5x paper).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from host import cpu_model

from awmctl.algorithms.presets import ONLINE

PRESETS = ("converged", "paper")


def machine() -> str:
    return f"{cpu_model()}, {os.cpu_count()} cores"


def one_run(args, preset: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        argv = [
            sys.executable,
            "-m",
            "awmctl",
            "optimize-policy",
            "--online",
            "--model",
            args.model,
            "--task",
            args.task,
            "--horizon",
            str(args.horizon),
            "--seed",
            "0",
            "--preset",
            preset,
            "--out",
            f"{tmp}/run",
            "--json",
        ]
        env = {**os.environ, "AWMCTL_COMPILATION_CACHE": "off"}
        t0 = time.perf_counter()
        done = subprocess.run(
            argv, check=False, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[1:])} failed with exit code {done.returncode}")
    summary = json.loads(done.stdout)
    return {
        "preset": preset,
        "wall_s": round(wall, 2),
        "final_return": summary.get("final_return_mean"),
        "score": summary.get("score_mean"),
        "command": " ".join(argv[3:-4] + argv[-2:-1]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="awm-transformer")
    parser.add_argument("--task", default="cancer")
    parser.add_argument("--horizon", type=int, default=100)
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/preset_walltime.jsonl")
    args = parser.parse_args()
    out = Path(args.out)
    # the converged preset's values are part of a row's identity: a change of defaults times anew
    where = {
        "machine": machine(),
        "model": args.model,
        "task": args.task,
        "horizon": args.horizon,
        "converged": ONLINE["converged"],
    }
    rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    mine = [r for r in rows if all(r.get(k) == v for k, v in where.items())]
    for pair in range(args.pairs):
        for preset in PRESETS:
            if any(r["pair"] == pair and r["preset"] == preset for r in mine):
                continue
            row = {**where, "pair": pair, **one_run(args, preset)}
            out.parent.mkdir(parents=True, exist_ok=True)
            with open(out, "a") as f:
                f.write(json.dumps(row) + "\n")
            mine.append(row)
            print(f"pair {pair} {preset}: {row['wall_s']} s", file=sys.stderr, flush=True)
    medians = {p: statistics.median(r["wall_s"] for r in mine if r["preset"] == p) for p in PRESETS}
    print(
        f"{where['machine']}: {args.model} on {args.task} H={args.horizon}, {args.pairs} pair(s): "
        f"converged {medians['converged']:.1f} s, paper {medians['paper']:.1f} s, "
        f"ratio {medians['converged'] / medians['paper']:.3f}"
    )


if __name__ == "__main__":
    main()
