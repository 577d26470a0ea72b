"""Steady-state time per BPO policy update (batch 16 imagined rollouts) and compile time.

Run: .venv/bin/python benchmarks/bpo_speed.py \
         [--models simulator,markov-mlp,awm-transformer,awm-lstm,hwm-transformer]
     [--horizons 20,100,400] [--seeds 1,8]

Models are freshly initialised at the paper's sizes (speed does not depend on the weights); the
update is the exact compiled chunk `awmctl optimize-policy` runs (`--log-every` updates per call).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax

from awmctl import BPO, BPOConfig, build_model, collect, make_task, random_controller


def bench(name: str, horizon: int, seeds: int, chunk: int, repeats: int) -> dict:
    task = make_task("cancer", horizon)
    model = build_model(
        name, task.state_size, task.action_size, horizon, key=jax.random.key(0), task=task
    )
    episodes = collect(
        task, random_controller(task), 64, jax.random.key(0)
    )  # as optimize-policy without --data
    bpo = BPO(task, model, "mlp", episodes.observations, BPOConfig(steps=10**9, log_every=chunk))
    state = bpo.init(range(seeds))
    t0 = time.perf_counter()
    state, _ = jax.block_until_ready(bpo.train_chunk(state))
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        state, _ = jax.block_until_ready(bpo.train_chunk(state))
        times.append((time.perf_counter() - t0) / chunk)
    per = statistics.median(times)
    return {
        "model": name,
        "horizon": horizon,
        "seeds": seeds,
        "ms_per_update": round(per * 1e3, 2),
        "compile_s": round(first - chunk * per, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", default="simulator,markov-mlp,awm-transformer,awm-lstm,hwm-transformer"
    )
    parser.add_argument("--horizons", default="100")
    parser.add_argument("--seeds", default="1")
    parser.add_argument("--chunk", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{'model':<17}{'H':>5}{'seeds':>6}{'ms/update':>11}{'compile s':>11}")
    for name in args.models.split(","):
        for h in map(int, args.horizons.split(",")):
            for n in map(int, args.seeds.split(",")):
                row = bench(name, h, n, args.chunk, args.repeats)
                print(
                    f"{name:<17}{h:>5}{n:>6}{row['ms_per_update']:>11.1f}{row['compile_s']:>11.1f}",
                    flush=True,
                )
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
