"""The paper's Figure 2: BPO of the double pendulum's first action through each world model family
and through the simulator, against the best first action of a dense grid.

Run: .venv/bin/python benchmarks/figure2.py [--horizons 10,100] [--methods simulator,markov-mlp,...]
     [--seeds 10] [--fit-steps 2000] [--bpo-steps 500] [--bpo-lr 1e-2]
     [--out benchmarks/results/figure2.jsonl] [--figures docs/figures]     (or `make figure2`)

The task (`double-pendulum`, the authors' code's conventions: dt 0.05, goal (0.3, -0.5), angles
180*a used as radians) lets the agent choose one thing, the first pendulum's initial angle (the
action at step 0); the only reward is at the last step, minus the squared distance to a goal
state. Offline, as the paper's exploration helper suggests (uniform first actions, zero after):
1024 random episodes (seed 0) train each model (`fit-model`'s defaults, `--fit-steps` steps, the
best validation checkpoint); then `--seeds` open-loop plans (only their first action matters) are
optimised by BPO through the model (Adam `--bpo-lr`, `--bpo-steps` steps, no entropy), each from
its own random first action (pre-tanh N(0, 1), key = the seed), and scored on the real task. The
simulator row is the same optimisation through the task's own differentiable dynamics (the
analytic gradient). The reference is the best of a 4001-point grid of first actions in [-1, 1]
through the simulator.

One JSON row per (H, method) is appended to `--out` (resumable: rows there are skipped); the
figure shows, per horizon, the true return against the first action with each method's final
first actions on it, and the final returns.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from awmctl import (
    BPO,
    BPOConfig,
    SimulatorModel,
    collect,
    make_task,
    model_spec,
    open_loop_return,
    random_controller,
)
from awmctl.algorithms import BPOState, run
from awmctl.plots import pyplot

sys.path.insert(0, str(Path(__file__).parent))
from bpo_tasks import fit
from reproduce import replace_section

METHODS = ("simulator", "markov-mlp", "awm-lstm", "awm-transformer", "hwm-transformer")
COLOURS = {
    "simulator": "tab:gray",
    "markov-mlp": "tab:purple",
    "awm-lstm": "tab:cyan",
    "awm-transformer": "tab:blue",
    "hwm-transformer": "tab:brown",
}


def first_action_grid(task, points: int) -> tuple[np.ndarray, np.ndarray]:
    """The true return of every first action on a grid (the other actions are ignored)."""
    firsts = jnp.linspace(-1.0, 1.0, points)
    plans = jnp.zeros((points, task.horizon, 1)).at[:, 0, 0].set(firsts)
    returns = jax.lax.map(lambda plan: open_loop_return(task, plan), plans, batch_size=256)
    return np.asarray(firsts), np.asarray(returns, np.float64)


def optimise_first_action(
    task, world, observations, config: BPOConfig, seeds: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each seed's final first action and its true return, BPO from a random first action."""
    bpo = BPO(task, world, "open-loop", observations, config)
    state = bpo.init(range(seeds))
    starts = jax.vmap(lambda s: jax.random.normal(jax.random.key(s), ()))(jnp.arange(seeds))
    table = state.params.table.at[:, 0, 0].set(starts.astype(state.params.table.dtype))
    state = BPOState(
        eqx.tree_at(lambda p: p.table, state.params, table), state.opt_state, state.key, state.step
    )
    final = {}

    def last(state, best, metrics):
        final.update(metrics)
        final["table"] = np.asarray(state.params.table)

    run(bpo, state, on_chunk=last)
    return np.tanh(final["table"][:, 0, 0]), np.asarray(final["eval/eval_return"], np.float64)


def plot(rows: list[dict], grids: dict[int, tuple[np.ndarray, np.ndarray]], path: Path) -> None:
    plt = pyplot()
    horizons = sorted(grids)
    fig, axes = plt.subplots(
        2, len(horizons), figsize=(6.0 * len(horizons), 7.5), dpi=110, squeeze=False
    )
    for col, horizon in enumerate(horizons):
        firsts, returns = grids[horizon]
        ax = axes[0, col]
        ax.plot(firsts, returns, color="black", lw=0.6, label="true return (grid)")
        mine = [r for r in rows if r["horizon"] == horizon]
        for row in mine:
            ax.scatter(
                row["first_actions"],
                row["returns"],
                s=18,
                color=COLOURS.get(row["method"]),
                zorder=3,
                label=row["method"],
            )
        ax.set_xlabel("first action a (initial angle 180a)")
        ax.set_ylabel("return")
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_title(
            f"H = {horizon}: the landscape and each method's final first actions", fontsize=9
        )
        ax.legend(fontsize=7)
        ax = axes[1, col]
        names = [r["method"] for r in mine]
        for i, row in enumerate(mine):
            ax.scatter(
                np.full(len(row["returns"]), i),
                row["returns"],
                s=14,
                color=COLOURS.get(row["method"]),
                alpha=0.7,
            )
            ax.errorbar(
                i + 0.2,
                row["returns_mean"],
                yerr=np.std(row["returns"], ddof=1),
                fmt="o",
                color="black",
                capsize=3,
            )
        ax.axhline(float(returns.max()), color="black", ls="--", lw=0.8, label="best grid action")
        ax.set_xticks(range(len(names)), names, fontsize=8)
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_ylabel("final return (mean ± std, and each seed)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizons", default="10,100")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--episodes", type=int, default=1024)
    parser.add_argument("--fit-steps", type=int, default=2000)
    parser.add_argument("--bpo-steps", type=int, default=500)
    parser.add_argument("--bpo-lr", type=float, default=1e-2)
    parser.add_argument("--grid-points", type=int, default=4001)
    parser.add_argument("--out", default="benchmarks/results/figure2.jsonl")
    parser.add_argument("--figures", default="docs/figures")
    parser.add_argument(
        "--doc", default="docs/results.md", help="Its figure2 section gets the table."
    )
    return parser.parse_args()


def method_row(task, method: str, episodes, grid, config: BPOConfig, args) -> dict:
    """``args.seeds`` first actions optimised through ``method`` (the simulator, or a model
    fitted to ``episodes``), and their returns."""
    t0 = time.perf_counter()
    fit_summary = None
    if model_spec(method).is_simulator:
        world = SimulatorModel(task)
    else:
        world, fit_summary = fit(task, method, episodes, args.fit_steps)
    firsts, returns = optimise_first_action(
        task, world, jnp.asarray(episodes.observations), config, args.seeds
    )
    return {
        "horizon": task.horizon,
        "method": method,
        "first_actions": firsts.tolist(),
        "returns": returns.tolist(),
        "returns_mean": float(returns.mean()),
        "returns_std": float(returns.std(ddof=1)),  # the sample std (rows before 2026-12: ddof 0)
        "grid_best_return": float(grid[1].max()),
        "grid_best_action": float(grid[0][grid[1].argmax()]),
        "fit": fit_summary,
        "wall_s": round(time.perf_counter() - t0, 1),
        "jax": jax.__version__,
    }


def main() -> None:
    args = parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    settings = {
        "seeds": args.seeds,
        "episodes": args.episodes,
        "fit_steps": args.fit_steps,
        "bpo_steps": args.bpo_steps,
        "bpo_lr": args.bpo_lr,
    }
    done = {
        (r["horizon"], r["method"]) for r in rows if all(r.get(k) == v for k, v in settings.items())
    }
    grids = {}
    config = BPOConfig(steps=args.bpo_steps, lr=args.bpo_lr, entropy=0.0, log_every=args.bpo_steps)
    for horizon in map(int, args.horizons.split(",")):
        task = make_task("double-pendulum", horizon)
        grids[horizon] = first_action_grid(task, args.grid_points)
        todo = [m for m in args.methods.split(",") if (horizon, m) not in done]
        if not todo:
            continue
        episodes = collect(task, random_controller(task), args.episodes, jax.random.key(0))
        for method in todo:
            found = method_row(task, method, episodes, grids[horizon], config, args)
            row = {"horizon": horizon, "method": method, **settings, **found}
            print(json.dumps({k: v for k, v in row.items() if k not in ("fit",)}), flush=True)
            with open(out, "a") as f:
                f.write(json.dumps(row, default=float) + "\n")
            rows.append(row)
    mine = [
        r for r in rows if r["horizon"] in grids and all(r.get(k) == v for k, v in settings.items())
    ]
    Path(args.figures).mkdir(parents=True, exist_ok=True)
    plot(mine, grids, Path(args.figures) / "figure2_double_pendulum.png")
    text = table(mine) + "\n\n" + pairwise(mine)
    replace_section(Path(args.doc), "figure2", text)
    print(text, file=sys.stderr)


def table(rows: list[dict]) -> str:
    lines = [
        (
            "| H | method | final return, mean ± sample std | median | best seed | seeds within 1 "
            "of the optimum | best grid action |"
        ),
        "|---|---|---|---|---|---|---|",
    ]
    for row in sorted(
        rows,
        key=lambda r: (r["horizon"], METHODS.index(r["method"]) if r["method"] in METHODS else 99),
    ):
        returns = np.asarray(row["returns"])
        near = int((returns >= row["grid_best_return"] - 1.0).sum())
        lines.append(
            f"| {row['horizon']} | {row['method']} | {returns.mean():.2f} ± "
            f"{returns.std(ddof=1):.2f} | {np.median(returns):.2f} | {returns.max():.2f} | "
            f"{near} of {len(returns)} | "
            f"{row['grid_best_return']:.2g} (a = {row['grid_best_action']:.4f}) |"
        )
    return "\n".join(lines)


def pairwise(rows: list[dict], reference: str = "awm-transformer") -> str:
    """The transformer AWM against each other method, seed by seed: seed s starts BPO from the same
    first action through every model, so the seeds pair up. Wins, the median of the paired
    differences, and the two-sided Wilcoxon signed-rank test's p-value (exact for 10 pairs
    without ties; distribution-free, as the returns' spread is far from normal)."""
    from scipy.stats import wilcoxon

    lines = [
        f"| H | {reference} against | {reference} better on | median difference | Wilcoxon p |",
        "|---|---|---|---|---|",
    ]
    by = {(r["horizon"], r["method"]): np.asarray(r["returns"], np.float64) for r in rows}
    for horizon in sorted({h for h, _ in by}):
        mine = by.get((horizon, reference))
        if mine is None:
            continue
        for method in [m for m in METHODS if m != reference and (horizon, m) in by]:
            other = by[(horizon, method)]
            diff = mine - other
            p = wilcoxon(mine, other).pvalue if np.any(diff != 0) else 1.0
            lines.append(
                f"| {horizon} | {method} | {int((diff > 0).sum())} of {diff.size} seeds | "
                f"{np.median(diff):+.2f} | {p:.3f} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
