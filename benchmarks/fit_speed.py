"""Steady-state time per world-model training step, and compile time, at the paper's sizes.

Run: .venv/bin/python benchmarks/fit_speed.py [--models awm-transformer,awm-lstm] \
         [--batch 64] [--horizon 100]

One training step = sample a batch of whole episodes, predict every next state, normalised-state
MSE, gradient, Adam update: exactly the step `awmctl fit-model` runs (ModelFit.train_chunk scans
--chunk of them in one compiled call). Data: random-policy CANCER episodes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import jax

from awmctl import (
    FitConfig,
    ModelFit,
    collect,
    make_task,
    model_spec,
    random_controller,
    split_episodes,
)
from awmctl.models import TRAINABLE


def bench(name: str, episodes, batch: int, chunk: int, repeats: int) -> dict:
    train, val = split_episodes(episodes, 0.1, jax.random.key(0))
    task_h = episodes.actions.shape[1]
    fitter = ModelFit(
        model_spec(name),
        {},
        task_h,
        train,
        val,
        FitConfig(steps=10**9, batch_size=batch, log_every=chunk),
    )
    state = fitter.init([0])
    t0 = time.perf_counter()
    state, _ = jax.block_until_ready(fitter.train_chunk(state))
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        state, _ = jax.block_until_ready(fitter.train_chunk(state))
        times.append((time.perf_counter() - t0) / chunk)
    step = statistics.median(times)
    return {
        "model": name,
        "batch": batch,
        "horizon": task_h,
        "ms_per_step": round(step * 1e3, 2),
        "compile_s": round(first - chunk * step, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(TRAINABLE))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--horizon", type=int, default=100)
    parser.add_argument("--chunk", type=int, default=20, help="steps per compiled call")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    task = make_task("cancer", args.horizon)
    episodes = collect(task, random_controller(task), 512, jax.random.key(0))
    print(
        f"# {platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__}, backend "
        f"{jax.default_backend()}"
    )
    print(f"{'model':<18}{'ms/step':>10}{'compile s':>11}")
    for name in args.models.split(","):
        row = bench(name, episodes, args.batch, args.chunk, args.repeats)
        print(f"{row['model']:<18}{row['ms_per_step']:>10.1f}{row['compile_s']:>11.1f}")
        print(json.dumps(row))


if __name__ == "__main__":
    main()
