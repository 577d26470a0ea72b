"""Open-loop prediction quality of every trainable world model after a fixed training budget.

Run: .venv/bin/python benchmarks/fit_quality.py [--tasks cancer,bacteria,double-pendulum]
     [--horizon 100] [--episodes 512] [--steps 1000] [--out benchmarks/results/fit_quality.jsonl]

For each task: collect `--episodes` random-policy episodes (seed 0), hold out 10% for
validation, fit each model for `--steps` Adam steps (batch 64, lr 1e-3, the CLI's defaults),
keep the best validation checkpoint, and report the validation open-loop final-state R^2
(imagination through start/step with the recorded actions; R^2 per state dimension, averaged)
plus the teacher-forced validation MSE. Same code path as `awmctl fit-model`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np

from awmctl import (
    FitConfig,
    ModelFit,
    collect,
    make_task,
    model_spec,
    random_controller,
    split_episodes,
)
from awmctl.algorithms import run
from awmctl.models import TRAINABLE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="cancer,bacteria,double-pendulum")
    parser.add_argument("--models", default=",".join(TRAINABLE))
    parser.add_argument("--horizon", type=int, default=100)
    parser.add_argument("--episodes", type=int, default=512)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--out", default="benchmarks/results/fit_quality.jsonl")
    args = parser.parse_args()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    print(
        f"{'task':<17}{'model':<17}{'final R2':>10}{'val mse':>12}{'rollout mse':>13}{'time s':>8}"
    )
    for task_name in args.tasks.split(","):
        task = make_task(task_name, args.horizon)
        episodes = collect(task, random_controller(task), args.episodes, jax.random.key(0))
        train, val = split_episodes(episodes, 0.1, jax.random.key(1))
        for name in args.models.split(","):
            t0 = time.perf_counter()
            fitter = ModelFit(
                model_spec(name),
                {},
                task.horizon,
                train,
                val,
                FitConfig(steps=args.steps, log_every=100),
            )
            _, best = run(fitter, fitter.init([0]))
            summary = fitter.summary(jax.tree_util.tree_map(lambda x: x[0], best.params))
            seconds = time.perf_counter() - t0
            r2 = float(np.mean(summary["val_final_r2"]))
            row = {
                "task": task_name,
                "model": name,
                "horizon": args.horizon,
                "steps": args.steps,
                "val_final_r2_mean": r2,
                **summary,
                "seconds": round(seconds, 1),
            }
            print(
                f"{task_name:<17}{name:<17}{r2:>10.4f}{summary['val_mse']:>12.3g}"
                f"{summary['val_rollout_mse']:>13.3g}{seconds:>8.0f}",
                flush=True,
            )
            with open(args.out, "a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
