"""Figure 5b on this machine: online BPO through a transformer AWM against the model-free
baselines SAC and Online-DT, learning curves on the same env-step budget.

Run: .venv/bin/python benchmarks/baselines.py [--tasks cancer,bacteria] [--horizons 20,100]
     [--methods sac,online-dt,awm-transformer] [--seeds 3] [--env-steps 5000]
     [--out benchmarks/results/baselines.jsonl] [--figures docs/figures] [--plot-only]

Every method runs with awmctl's defaults (the CLI's `optimize-policy --agent sac`, `--agent
online-dt`, `--online --model awm-transformer`), through the same library calls, seeds 0..N-1
in one program. One JSON row per (task, H, method) is appended to `--out`, with every seed's
learning curve (deterministic eval return every 32 env steps), final return, wall time and time
per env step; rows already there are skipped, so an interrupted sweep resumes.

Scores are normalised as (R - R_random) / (R_opt - R_random), with R_random (512 random
episodes, seed 0) and R_opt (the best of 8 direct-shooting plans through the simulator) taken
from `benchmarks/results/bpo_tasks.jsonl` (the offline-BPO benchmark computes them) or computed
here with the same code when missing. One plot per (task, H) goes to `--figures`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np

from awmctl import OnlineBPO, OnlineConfig, OnlineDT, OnlineDTConfig, SAC, SACConfig, make_task, model_spec
from awmctl.algorithms import run
from awmctl.stats import ci95

LABELS = {"awm-transformer": "BPO through awm-transformer", "sac": "SAC (authors' variant)", "online-dt": "Online-DT"}
COLOURS = {"awm-transformer": "tab:blue", "sac": "tab:orange", "online-dt": "tab:green"}


def algorithm(method: str, task, env_steps: int):
    if method == "sac":
        return SAC(task, SACConfig(env_steps=env_steps))
    if method == "online-dt":
        return OnlineDT(task, OnlineDTConfig(env_steps=env_steps))
    return OnlineBPO(task, model_spec(method), "mlp", OnlineConfig(env_steps=env_steps))


def learning_curves(method: str, task, seeds: int, env_steps: int) -> dict:
    alg = algorithm(method, task, env_steps)
    steps, returns = [], []

    def log(state, best, metrics):
        steps.append(alg.progress(state))
        returns.append(np.asarray(metrics["eval/eval_return"], np.float64).tolist())

    t0 = time.perf_counter()
    run(alg, alg.init(list(range(seeds))), on_chunk=log)
    wall = time.perf_counter() - t0
    final = np.asarray(returns[-1])
    return {"steps": steps, "curves": returns, "returns": final.tolist(), "returns_mean": float(final.mean()),
            "returns_ci95": ci95(final), "wall_s": round(wall, 1),
            "ms_per_env_step": round(1000 * wall / (seeds * alg.total), 3)}


def references(task_name: str, horizon: int) -> dict[str, float]:
    """R_random and R_opt of (task, H): from the offline-BPO benchmark's rows, else computed."""
    path = Path("benchmarks/results/bpo_tasks.jsonl")
    found = {}
    if path.exists():
        for row in map(json.loads, path.read_text().splitlines()):
            if row["task"] == task_name and row["horizon"] == horizon and row["method"] in ("random", "direct-shooting"):
                found[row["method"]] = row["returns_mean"]  # the latest row counts
    if len(found) < 2:
        sys.path.insert(0, str(Path(__file__).parent))
        from bpo_tasks import train_policies  # noqa: PLC0415  (a sibling script)

        from awmctl import BPOConfig, SimulatorModel, collect, random_controller

        task = make_task(task_name, horizon)
        episodes = collect(task, random_controller(task), 512, jax.random.key(0))
        found["random"] = float(np.asarray(episodes.rewards, np.float64).sum(axis=1).mean())
        config = BPOConfig(steps=2000, lr=1e-2, entropy=0.0, policy_input_grad="full", log_every=500)
        plans = train_policies(task, SimulatorModel(task), "open-loop", jax.numpy.asarray(episodes.observations),
                               config, 8, spread=1.0)
        found["direct-shooting"] = float(plans.max())
    return {"random": found["random"], "opt": found["direct-shooting"]}


def plot(rows: list[dict], task_name: str, horizon: int, refs: dict[str, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    span = refs["opt"] - refs["random"]
    for row in rows:
        score = (np.asarray(row["curves"]) - refs["random"]) / span  # [points, seeds]
        mean = score.mean(axis=1)
        colour = COLOURS.get(row["method"])
        ax.plot(row["steps"], mean, color=colour, lw=1.8, label=f"{LABELS.get(row['method'], row['method'])}")
        if score.shape[1] > 1:
            half = ci95(score, axis=1)
            ax.fill_between(row["steps"], mean - half, mean + half, color=colour, alpha=0.2)
    ax.axhline(1.0, color="black", lw=0.8, ls="--", label="best open-loop plan (1)")
    ax.axhline(0.0, color="grey", lw=0.8, ls=":", label="random policy (0)")
    ax.set_xlabel("environment step")
    ax.set_ylabel("normalised eval return")
    ax.set_ylim(-1.0, 1.3)
    seeds = rows[0]["seeds"] if rows else 0
    ax.set_title(f"{task_name}, H={horizon}: mean and 95% interval over {seeds} seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="cancer,bacteria")
    parser.add_argument("--horizons", default="20,100")
    parser.add_argument("--methods", default="sac,online-dt,awm-transformer")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--env-steps", type=int, default=5000)
    parser.add_argument("--out", default="benchmarks/results/baselines.jsonl")
    parser.add_argument("--figures", default="docs/figures")
    parser.add_argument("--plot-only", action="store_true", help="Only redraw the figures from the rows there are.")
    args = parser.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    done = {(r["task"], r["horizon"], r["method"], r["seeds"], r["env_steps"]) for r in rows}
    tasks, horizons = args.tasks.split(","), [int(h) for h in args.horizons.split(",")]
    for method in args.methods.split(","):  # the cheap methods first: a partial sweep still says something
        for task_name in tasks:
            for horizon in horizons:
                if args.plot_only or (task_name, horizon, method, args.seeds, args.env_steps) in done:
                    continue
                refs = references(task_name, horizon)
                result = learning_curves(method, make_task(task_name, horizon), args.seeds, args.env_steps)
                scores = (np.asarray(result["returns"]) - refs["random"]) / (refs["opt"] - refs["random"])
                row = {"task": task_name, "horizon": horizon, "method": method, "seeds": args.seeds,
                       "env_steps": args.env_steps, **result, "R_random": refs["random"], "R_opt": refs["opt"],
                       "score_mean": float(scores.mean()), "score_ci95": ci95(scores),
                       "jax": jax.__version__, "backend": jax.default_backend()}
                print(json.dumps({k: v for k, v in row.items() if k not in ("steps", "curves")}), flush=True)
                with open(out, "a") as f:
                    f.write(json.dumps(row) + "\n")
                rows.append(row)
    figures = Path(args.figures)
    figures.mkdir(parents=True, exist_ok=True)
    for task_name in tasks:
        for horizon in horizons:
            mine = {r["method"]: r for r in rows if r["task"] == task_name and r["horizon"] == horizon
                    and r["seeds"] == args.seeds and r["env_steps"] == args.env_steps}
            if mine:
                plot(list(mine.values()), task_name, horizon, references(task_name, horizon),
                     figures / f"baselines_{task_name}_h{horizon}.png")
                print(f"{task_name} H={horizon}: " + ", ".join(
                    f"{m} {r['score_mean']:.2f} ± {r['score_ci95']:.2f} ({r['ms_per_env_step']:.1f} ms/env step)"
                    for m, r in mine.items()), file=sys.stderr)


if __name__ == "__main__":
    main()
