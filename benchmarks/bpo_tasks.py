"""Offline BPO with every model family on four Myriad tasks, against direct shooting and random.

Run: .venv/bin/python benchmarks/bpo_tasks.py \
         [--tasks cancer,bacteria,mould-fungicide,hiv-treatment]
     [--horizons 20,100] [--models markov-mlp,awm-transformer,...] [--seeds 3]
     [--fit-steps 1000] [--bpo-steps 500] [--bpo-lr 1e-3] [--shooting-steps 2000]
     [--out benchmarks/results/bpo_tasks.jsonl]

For each task and horizon, with the same library code as the CLI (`collect`, `fit-model`,
`optimize-policy`):
- random: the mean return of 512 random-policy episodes (seed 0); these are also the data;
- direct shooting: open-loop plans optimised through the simulator (Adam, `--shooting-lr`,
  `--shooting-steps`), one from a = 0 and `--shooting-starts` - 1 from random plans; the best
  final plan's return is R_opt (in the row's `returns_mean`; `from_zero` is the a = 0 start);
- simulator: a closed-loop MLP policy trained through the true dynamics (analytic gradient);
- each model: fitted once (seed 0, `--fit-steps`, batch 64, lr 1e-3, best validation
  checkpoint), then `--seeds` MLP policies trained through it in one vmapped program, the
  policy's input gradient-stopped for AWMs and not for the others (the CLI's defaults).
Every policy is scored by its final deterministic return on the real task, and the normalised
score is (R - R_random) / (R_opt - R_random). One JSON row per (task, H, method) is appended to
`--out`; rows already there are skipped, so an interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np

from awmctl import (
    BPOConfig,
    FitConfig,
    ModelFit,
    SimulatorModel,
    collect,
    make_task,
    model_spec,
    random_controller,
)
from awmctl.algorithms import run, seed_keys, split_episodes
from awmctl.algorithms.references import shoot
from awmctl.models import TRAINABLE
from awmctl.stats import ci95


def train_policies(
    task, world, kind: str, observations, config: BPOConfig, seeds: int, spread: float = 0.0
) -> np.ndarray:
    """Final eval return of each seed's deterministic policy after ``config.steps`` updates
    (``spread > 0``: a multi-start optimiser; :func:`awmctl.algorithms.references.shoot`)."""
    return shoot(task, world, kind, observations, config, seeds, spread)[0]


def fit(task, name: str, episodes, steps: int):
    """As `fit-model --seed 0`: the best validation checkpoint and its summary."""
    train, val = split_episodes(episodes, 0.1, seed_keys(0)[1])
    fitter = ModelFit(
        model_spec(name), {}, task.horizon, train, val, FitConfig(steps=steps, log_every=100)
    )
    _, best = run(fitter, fitter.init([0]))
    params = jax.tree_util.tree_map(lambda x: x[0], best.params)
    return fitter.model(params), fitter.summary(params)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="cancer,bacteria,mould-fungicide,hiv-treatment")
    parser.add_argument("--horizons", default="20,100")
    parser.add_argument("--models", default=",".join(TRAINABLE))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=512)
    parser.add_argument("--fit-steps", type=int, default=1000)
    parser.add_argument("--bpo-steps", type=int, default=500)
    parser.add_argument("--bpo-lr", type=float, default=1e-3)
    parser.add_argument("--shooting-steps", type=int, default=2000)
    parser.add_argument("--shooting-lr", type=float, default=1e-2)
    parser.add_argument(
        "--shooting-starts",
        type=int,
        default=8,
        help=(
            "Direct shooting from a = 0 and from N-1 random plans (pre-tanh N(0, 1)); R_opt is the "
            "best."
        ),
    )
    parser.add_argument(
        "--redo",
        default="",
        help="Comma-separated methods to run again even if rows exist (the last row counts).",
    )
    parser.add_argument("--out", default="benchmarks/results/bpo_tasks.jsonl")
    return parser.parse_args()


def finished(out: Path, redo: str) -> set[tuple[str, int, str]]:
    """The (task, horizon, method) rows already in ``out``, but for the methods in ``redo``."""
    if not out.exists():
        return set()
    again = set(filter(None, redo.split(",")))
    rows = map(json.loads, out.read_text().splitlines())
    return {(r["task"], r["horizon"], r["method"]) for r in rows if r["method"] not in again}


def random_row(episodes, count: int) -> dict:
    returns = np.asarray(episodes.rewards, np.float64).sum(axis=1)
    return {
        "method": "random",
        "returns_mean": float(returns.mean()),
        "returns_ci95": ci95(returns),
        "episodes": count,
    }


def shooting_row(task, observations, args: argparse.Namespace) -> dict:
    """Open-loop plans through the simulator from a = 0 and random starts; the best is R_opt."""
    t0 = time.perf_counter()
    config = BPOConfig(
        steps=args.shooting_steps,
        lr=args.shooting_lr,
        entropy=0.0,
        policy_input_grad="full",
        log_every=500,
    )
    returns = train_policies(
        task,
        SimulatorModel(task),
        "open-loop",
        observations,
        config,
        args.shooting_starts,
        spread=1.0,
    )
    return {
        "method": "direct-shooting",
        "returns": returns.tolist(),
        "returns_mean": float(returns.max()),
        "from_zero": float(returns[0]),
        "starts": args.shooting_starts,
        "steps": args.shooting_steps,
        "lr": args.shooting_lr,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def method_row(task, name: str, episodes, observations, args: argparse.Namespace) -> dict:
    """MLP policies through the simulator or through model ``name`` fitted to ``episodes``."""
    t0 = time.perf_counter()
    fit_summary = {}
    spec = model_spec(name)
    if spec.is_simulator:
        world = SimulatorModel(task)
    else:
        world, fit_summary = fit(task, name, episodes, args.fit_steps)
    fit_seconds = time.perf_counter() - t0
    mode = spec.policy_input_grad
    config = BPOConfig(steps=args.bpo_steps, lr=args.bpo_lr, log_every=50, policy_input_grad=mode)
    returns = train_policies(task, world, "mlp", observations, config, args.seeds)
    return {
        "method": name,
        "returns": returns.tolist(),
        "returns_mean": float(returns.mean()),
        "returns_ci95": ci95(returns),
        "policy_input_grad": mode,
        "seeds": args.seeds,
        "bpo_steps": args.bpo_steps,
        "bpo_lr": args.bpo_lr,
        "fit_steps": 0 if spec.is_simulator else args.fit_steps,
        "val_final_r2": [float(x) for x in np.atleast_1d(fit_summary.get("val_final_r2", []))],
        "fit_seconds": round(fit_seconds, 1),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main() -> None:
    args = parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = finished(out, args.redo)

    def record(row: dict) -> None:
        print(json.dumps(row), flush=True)
        with open(out, "a") as f:
            f.write(json.dumps(row) + "\n")

    methods = ["simulator", *filter(None, args.models.split(","))]
    for task_name in args.tasks.split(","):
        for horizon in map(int, args.horizons.split(",")):
            task = make_task(task_name, horizon)
            episodes = collect(task, random_controller(task), args.episodes, jax.random.key(0))
            observations = jax.numpy.asarray(episodes.observations)
            base = {"task": task_name, "horizon": horizon}
            if (task_name, horizon, "random") not in done:
                record({**base, **random_row(episodes, args.episodes)})
            if (task_name, horizon, "direct-shooting") not in done:
                record({**base, **shooting_row(task, observations, args)})
            for name in methods:
                if (task_name, horizon, name) not in done:
                    record({**base, **method_row(task, name, episodes, observations, args)})


if __name__ == "__main__":
    main()
