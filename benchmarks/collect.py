"""Steady-state environment steps per second of `collect`, and first-call compile time.

Run: .venv/bin/python benchmarks/collect.py [--episodes 4096] [--horizon 100] [--repeats 5]

For each task, one compiled call rolls out N episodes of H steps (vmap over episodes, scan over
steps) under the uniform random policy. "compile" is the wall time of the first call (tracing +
XLA compilation + one run) minus one steady-state run; "steps/s" is N*H divided by the median of
the following calls.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import jax

from awmctl import batched_rollout, make_task, random_controller

TASKS = ("cancer", "bear-populations", "hiv-treatment", "glucose", "double-pendulum", "bounce")


def bench(name: str, episodes: int, horizon: int, repeats: int) -> dict:
    task = make_task(name, horizon)
    run = batched_rollout(task, random_controller(task))
    keys = jax.random.split(jax.random.key(0), episodes)
    t0 = time.perf_counter()
    jax.block_until_ready(run(keys))
    first = time.perf_counter() - t0
    times = []
    for i in range(repeats):
        keys = jax.random.split(jax.random.key(i + 1), episodes)
        t0 = time.perf_counter()
        jax.block_until_ready(run(keys))
        times.append(time.perf_counter() - t0)
    steady = statistics.median(times)
    return {
        "task": name,
        "episodes": episodes,
        "horizon": horizon,
        "compile_s": round(first - steady, 3),
        "run_s": round(steady, 4),
        "steps_per_s": round(episodes * horizon / steady),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=4096)
    parser.add_argument("--horizon", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tasks", default=",".join(TASKS))
    args = parser.parse_args()
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, jax "
        f"{jax.__version__}, backend {jax.default_backend()}"
    )
    print(f"{'task':<18}{'compile s':>10}{'run s':>10}{'steps/s':>14}")
    for name in args.tasks.split(","):
        row = bench(name, args.episodes, args.horizon, args.repeats)
        print(
            f"{row['task']:<18}{row['compile_s']:>10.2f}{row['run_s']:>10.4f}{row['steps_per_s']:>14,}"
        )
        print(json.dumps(row))


if __name__ == "__main__":
    main()
