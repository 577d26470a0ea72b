"""Does the world model see the optimum? A diagnosis of finished online BPO runs.

Run:  .venv/bin/python benchmarks/model_limits.py            # every converged AWM run there is
      .venv/bin/python benchmarks/model_limits.py --runs 'benchmarks/results/defaults/runs/timber*'
      .venv/bin/python benchmarks/model_limits.py --report [--doc docs/results.md]
          # the table from the rows there are (--doc: also into the marked section there)

For one online run (`optimize-policy --online --model awm-...`, whose directory keeps seed 0's
final world model in `model/`), three open-loop action sequences are replayed both on the real
task and through that model from the evaluation's start, and their returns compared:

- the final policy's own episode (deterministic actions);
- the best plan that direct shooting finds through the simulator (Adam 1e-2, 2000 steps from
  a = 0, no entropy: the first of the references' plans);
- the same plan, with the model's largest state error along it and the largest state the run's
  stored data could have taught it (the plan's states against the policy's).

If the model scores the policy's episode about right and the plan *below* the policy's episode,
no policy optimiser can find the plan through that model: the limit is what the model has seen
(exploration), not the optimiser or the model's fit where data exist. If it scores the plan
above the policy's episode, the optimiser stopped short. One row per run in `--out`
(resumable: a run already diagnosed is skipped).
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from awmctl import analysis
from awmctl.algorithms.bpo import BPOConfig
from awmctl.algorithms.references import shoot
from awmctl.artifacts.models import load_model
from awmctl.artifacts.policies import load_policy
from awmctl.models import SimulatorModel, imagine
from awmctl.rollouts import predicted_return, random_controller
from awmctl.tasks import Task, rollout

sys.path.insert(0, str(Path(__file__).parent))
from reproduce import atomic_write, replace_section

DEFAULT_RUNS = "benchmarks/results/defaults/runs/*-awm-*-converged"


def best_plan(task: Task) -> jax.Array:
    """Actions of the open-loop plan direct shooting finds through the simulator from a = 0 (the
    references' first plan)."""
    start = rollout(task, random_controller(task), jax.random.key(0)).observations[None]
    config = BPOConfig(steps=2000, lr=1e-2, entropy=0.0, policy_input_grad="full", log_every=500)
    _, plan = shoot(task, SimulatorModel(task), "open-loop", start, config, starts=1)
    return rollout(task, plan.controller(), jax.random.key(0)).actions


def replay(model, task: Task, obs0: jax.Array, actions: jax.Array) -> dict[str, float]:
    """Real and model returns of one action sequence (the task from reset key 0, the evaluation's
    start), and the model's worst state error along it."""
    real = rollout(task, lambda obs, k, key: actions[k], jax.random.key(0))
    predicted = imagine(model, obs0, actions)
    return {
        "real": float(jnp.sum(real.rewards)),
        "model": float(predicted_return(model, task, obs0, actions)),
        "max_state": float(jnp.max(jnp.abs(real.observations[:, :-1]))),
        "max_state_error": float(jnp.max(jnp.abs(predicted[:, :-1] - real.observations[1:, :-1]))),
    }


def diagnose(directory: Path) -> dict:
    model, task, meta = load_model(directory / "model")
    policy, _, _ = load_policy(directory, "final", 0)
    episode = rollout(task, policy.controller(), jax.random.key(0))
    obs0 = episode.observations[0]
    plan = best_plan(task)
    return {
        "run": directory.name,
        "task": meta["task"].get("source") or meta["task"]["name"],
        "horizon": task.horizon,
        "model": meta["model"]["name"],
        "policy": replay(model, task, obs0, episode.actions),
        "plan": replay(model, task, obs0, plan),
    }


def verdict(r: dict, rows_dir: Path) -> str:
    """awmctl's own diagnosis of the run (the summary's line), from its row's references."""
    row_file = rows_dir / f"{r['run']}.json"
    if not row_file.exists():
        return ""
    row = json.loads(row_file.read_text())
    p, q = r["policy"], r["plan"]
    score = (p["real"] - row["R_random"]) / (row["R_opt"] - row["R_random"])
    if analysis.model_overpromises(p["model"], p["real"], row["R_random"], row["R_opt"], score):
        return f"{score:.3f}: exploits the model"
    if analysis.model_hides_optimum(p["model"], q["model"], score):
        return f"{score:.3f}: the model hides the optimum"
    return f"{score:.3f}"


def report(rows: list[dict], rows_dir: Path) -> str:
    lines = [
        (
            "| run | policy: real / model | best plan: real / model | largest state: policy / plan"
            " | model's worst state error on the plan | seed 0's score: diagnosis |"
        ),
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        p, q = r["policy"], r["plan"]
        lines.append(
            f"| {r['run']} | {p['real']:.4g} / {p['model']:.4g} | {q['real']:.4g} / "
            f"{q['model']:.4g} | {p['max_state']:.4g} / {q['max_state']:.4g} | "
            f"{q['max_state_error']:.3g} | {verdict(r, rows_dir)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default=DEFAULT_RUNS, help="A glob of online run directories.")
    parser.add_argument("--out", default="benchmarks/results/model_limits.jsonl")
    parser.add_argument(
        "--rows",
        default="benchmarks/results/defaults/rows",
        help="The runs' benchmark rows (their references give each run's score and diagnosis).",
    )
    parser.add_argument("--report", action="store_true", help="Only print the table.")
    parser.add_argument(
        "--doc", default="", help="Also write the table into this file's marked section."
    )
    args = parser.parse_args()
    out = Path(args.out)
    rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    if not args.report:
        done = {r["run"] for r in rows}
        for d in sorted(Path(p) for p in glob.glob(args.runs)):
            if d.name in done or not (d / "model" / "meta.json").exists():
                continue
            print(f"diagnosing {d.name}", file=sys.stderr)
            rows.append(diagnose(d))
            atomic_write(out, "".join(json.dumps(r) + "\n" for r in rows))
    table = report(sorted(rows, key=lambda r: r["run"]), Path(args.rows))
    print(table)
    if args.doc:
        replace_section(Path(args.doc), "limits", table, tag="defaults")


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
