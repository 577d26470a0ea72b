"""The paper's Figure 5 grid (online BPO through every model family against SAC and Online-DT on
the Myriad tasks, H = 20 and 100) and its robustness runs, as one resumable sweep.

Run:  .venv/bin/python benchmarks/reproduce.py                      # the whole default grid
      .venv/bin/python benchmarks/reproduce.py --shard 0/2 &
      .venv/bin/python benchmarks/reproduce.py --shard 1/2
      .venv/bin/python benchmarks/reproduce.py --tasks cancer,bacteria --horizons 100
            --methods awm-transformer,markov-mlp,sac --variants
            clean,distractors=4,distractors=16,noise=0.01,noise=0.1
      .venv/bin/python benchmarks/reproduce.py --report
          # the tables and figures from the rows there are
      (or `make reproduce`, `make reproduce-robustness`)

A *row* is one (task, H, method, variant): `--seeds` seeds (0..N-1) of one `awmctl optimize-policy`
command, run as a user would run it (a fresh process, the paper's schedule and sizes: awmctl's
defaults), in `--out/runs/ROW/`. A row killed half-way resumes from its last checkpoint when the
sweep is run again; a finished row is never run again. Each finished row is a JSON file
`--out/rows/ROW.json`: every seed's final return and learning curve (deterministic eval return
every 32 env steps), mean and 95% interval, normalised scores, wall time.

Methods: `simulator` (online BPO by the analytic gradient through the task itself, no model),
`markov-mlp`, `awm-lstm`, `awm-transformer`, `hwm-transformer` (online BPO, Algorithm 1, through
that model), `sac` (the authors' variant), `online-dt`; any other model name awmctl knows works too.
Variants are task parameters (`distractors=N`, `noise=SIGMA`, or `clean`).

Scores: (R - R_random) / (R_opt - R_random) with the *clean* task's references, cached in
`--out/references/`: R_random is the mean return of 512 uniformly random episodes (key 0),
R_opt the best open-loop plan of multi-start direct shooting through the simulator (8 starts, Adam
1e-2, 2000 steps), both from awmctl's own code (`awmctl references`). Every BPO row runs at the
paper's policy budget (`--preset paper`). Tasks that are
degenerate or nearly flat as the paper runs them carry a flag (`awmctl tasks`) shown beside their
numbers in every table.

`--report` redraws `docs/figures/reproduce_*.png` and rewrites the marked sections of
`docs/results.md` from the rows there are (a partial grid says how many rows it has).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import host  # benchmarks/, on the path when this script runs
import numpy as np

from awmctl import make_task
from awmctl.artifacts.references import load_or_compute
from awmctl.plots import pyplot
from awmctl.stats import ci95
from awmctl.tasks import task_info

PAPER_TASKS = (
    "cancer",
    "bear-populations",
    "bioreactor",
    "hiv-treatment",
    "mould-fungicide",
    "bacteria",
    "predator-prey",
    "glucose",
)
#: the cheap methods first, so that a partial sweep already covers whole columns
METHODS = (
    "simulator",
    "sac",
    "markov-mlp",
    "awm-lstm",
    "awm-transformer",
    "hwm-transformer",
    "online-dt",
)
AGENTS = ("sac", "online-dt")
LABELS = {
    "simulator": "simulator (analytic gradient)",
    "markov-mlp": "Markovian MLP",
    "awm-lstm": "AWM LSTM",
    "awm-transformer": "AWM transformer",
    "hwm-transformer": "HWM transformer",
    "awm-ssm": "AWM state-space",
    "awm-gru": "AWM GRU",
    "awm-rnn": "AWM RNN",
    "sac": "SAC",
    "online-dt": "Online-DT",
}
COLOURS = {
    "simulator": "tab:gray",
    "markov-mlp": "tab:purple",
    "awm-lstm": "tab:cyan",
    "awm-transformer": "tab:blue",
    "hwm-transformer": "tab:brown",
    "awm-ssm": "tab:olive",
    "awm-gru": "tab:pink",
    "awm-rnn": "tab:red",
    "sac": "tab:orange",
    "online-dt": "tab:green",
}


def row_id(task: str, horizon: int, method: str, variant: str) -> str:
    return f"{task}-h{horizon}-{method}" + (
        "" if variant == "clean" else "-" + variant.replace("=", "")
    )


@dataclass(frozen=True)
class Block:
    """One awmctl command of a row: seeds first_seed..first_seed+seeds-1 of (task, H, method,
    variant), at ``env_steps`` env steps and the BPO ``preset``. A row is one block, or several
    when it grew seed by seed."""

    task: str
    horizon: int
    method: str
    variant: str
    seeds: int
    env_steps: int
    first_seed: int = 0
    preset: str = "paper"

    @property
    def row_id(self) -> str:
        return row_id(self.task, self.horizon, self.method, self.variant)

    def run_dir(self, out: Path) -> Path:
        """The row's own directory for the block that starts at seed 0 (every row's first run), a
        sibling for a block that extends the row."""
        last = self.first_seed + self.seeds - 1
        name = (
            self.row_id if self.first_seed == 0 else f"{self.row_id}+seeds{self.first_seed}-{last}"
        )
        return out / "runs" / name

    def command(self, run_dir: Path) -> list[str]:
        """The awmctl command (what a user would type, in a fresh process)."""
        # BPO at the paper's policy budget (--preset paper): the grid reproduces the paper's
        # settings; --preset converged, awmctl's defaults, for the comparison without the budget
        # limit. The baselines keep the paper's settings either way.
        how = (
            ["--agent", self.method]
            if self.method in AGENTS
            else ["--online", "--model", self.method, "--preset", self.preset]
        )
        params = [] if self.variant == "clean" else ["--task-param", self.variant]
        return bpo_command(
            how,
            self.task,
            self.horizon,
            *params,
            "--env-steps",
            str(self.env_steps),
            "--seed",
            str(self.first_seed),
            "--seeds",
            str(self.seeds),
            "--out",
            str(run_dir),
        )


def bpo_command(how: list[str], task: str, horizon: int, *rest: str) -> list[str]:
    """``awmctl optimize-policy`` in a fresh process: ``how`` picks the method, ``rest`` adds
    options; the JSON summary on stdout is what a row reads."""
    return [
        sys.executable,
        "-m",
        "awmctl",
        "optimize-policy",
        *how,
        "--task",
        task,
        "--horizon",
        str(horizon),
        *rest,
        "--json",
    ]


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(text)
    partial.replace(path)


# ----------------------------------------------------------------------------- references


def references(task_name: str, horizon: int, out: Path) -> dict[str, float]:
    """R_random and R_opt of the clean (task, H), computed once by awmctl's own references code
    (`awmctl references`, :mod:`awmctl.algorithms.references`) and cached under ``out``."""
    path = out / "references" / f"{task_name}-h{horizon}.json"
    if path.exists():
        return json.loads(path.read_text())
    refs = load_or_compute(make_task(task_name, horizon), out / "cache")
    found = {
        "random": refs.random,
        "opt": refs.opt,
        "source": (
            "awmctl references (512 random episodes; best of 8 direct-shooting plans, "
            "Adam 1e-2, 2000 steps)"
        ),
    }
    atomic_write(path, json.dumps(found, indent=1))
    return found


# ------------------------------------------------------------------------------------ rows


def run_unless_done(argv: list[str], run_dir: Path, log: Path, rid: str) -> float | None:
    """Run a row's command unless ``run_dir`` is complete (a half-done run resumes), its stderr
    (progress and summary) appended to ``log``; the wall seconds, None if it was already done."""
    if (run_dir / "meta.json").exists():
        return None
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(log, "a") as stderr:
        done = subprocess.run(argv, check=False, stdout=subprocess.PIPE, stderr=stderr, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-5:])
        raise RuntimeError(
            f"row {rid} failed with exit code {done.returncode}; the end of {log}:\n{tail}"
        )
    return wall


def run_row(block: Block, out: Path) -> dict:
    """Run (or resume, or just read) one block's awmctl command and turn its outputs into the row
    of its seeds."""
    run_dir = block.run_dir(out)
    argv = block.command(run_dir)
    wall = run_unless_done(argv, run_dir, run_dir.with_name(run_dir.name + ".log"), block.row_id)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    meta = json.loads((run_dir / "meta.json").read_text())
    curves = [r["eval/eval_return"] for r in records if "eval/eval_return" in r]
    steps = [r["step"] for r in records if "eval/eval_return" in r]
    final = np.asarray(curves[-1], np.float64)
    refs = references(block.task, block.horizon, out)
    scores = (final - refs["random"]) / (refs["opt"] - refs["random"])
    environment = meta.get("environment", {})

    return {
        "task": block.task,
        "horizon": block.horizon,
        "method": block.method,
        "variant": block.variant,
        "preset": "paper" if block.method in AGENTS else block.preset,
        "seeds": block.seeds,
        "first_seed": block.first_seed,
        "env_steps": block.env_steps,
        "returns": final.tolist(),
        "returns_mean": float(final.mean()),
        "returns_ci95": ci95(final),
        "scores": scores.tolist(),
        "score_mean": float(scores.mean()),
        "score_ci95": ci95(scores),
        "R_random": refs["random"],
        "R_opt": refs["opt"],
        "flag": task_info(block.task).flag,
        # the wall time of this sweep's process for the row (None: finished by an earlier sweep,
        # whose process time was not seen), and the run's own time (its last process)
        "wall_s": None if wall is None else round(wall, 1),
        "run_time": {k: meta["summary"].get(k) for k in ("wall_s", "compile_s")},
        "steps": steps,
        "curves": curves,
        "versions": environment.get("versions"),
        "commit": environment.get("awmctl_commit"),
        "machine": host.describe(),
        "command": " ".join(argv[1:]),
    }


def extend(row: dict, block: dict) -> dict:
    """``row`` (seeds 0..n-1) with ``block``'s seeds (n..m-1) after them: the row a single run of
    seeds 0..m-1 gives (each seed's numbers do not depend on the others', tests/test_reproduce.py),
    its means and intervals recomputed, the times added and each block's command kept."""
    if block["first_seed"] != row["seeds"] or block["steps"] != row["steps"]:
        raise ValueError(
            f"{row_id(row['task'], row['horizon'], row['method'], row['variant'])}: a block of "
            f"seeds from {block['first_seed']} with {len(block['steps'])} evaluations cannot "
            f"extend a row of {row['seeds']} seeds with {len(row['steps'])}"
        )
    returns = np.asarray(row["returns"] + block["returns"], np.float64)
    scores = np.asarray(row["scores"] + block["scores"], np.float64)
    blocks = row.get("blocks") or [
        {k: row.get(k) for k in ("first_seed", "seeds", "wall_s", "run_time", "commit", "machine")}
        | {"first_seed": 0, "command": row["command"]}
    ]
    blocks = [
        *blocks,
        {
            k: block[k]
            for k in ("first_seed", "seeds", "wall_s", "run_time", "commit", "machine", "command")
        },
    ]

    def total(key: str) -> float | None:
        values = [b["wall_s"] if key == "wall" else (b["run_time"] or {}).get(key) for b in blocks]
        return None if None in values else round(sum(values), 3)

    return {
        **row,
        "seeds": row["seeds"] + block["seeds"],
        "returns": returns.tolist(),
        "returns_mean": float(returns.mean()),
        "returns_ci95": ci95(returns),
        "scores": scores.tolist(),
        "score_mean": float(scores.mean()),
        "score_ci95": ci95(scores),
        "wall_s": total("wall"),
        "run_time": {"wall_s": total("wall_s"), "compile_s": total("compile_s")},
        "curves": [a + b for a, b in zip(row["curves"], block["curves"])],
        "blocks": blocks,
    }


def planned_rows(args) -> list[tuple[str, int, str, str]]:
    rows = [
        (task, horizon, method, variant)
        for variant in args.variants.split(",")
        for method in args.methods.split(",")
        for horizon in map(int, args.horizons.split(","))
        for task in args.tasks.split(",")
    ]
    index, count = (int(x) for x in args.shard.split("/"))
    if not 0 <= index < count:
        raise SystemExit(f"--shard I/N needs 0 <= I < N, got {args.shard}")
    return rows[index::count]


def sweep(args) -> None:
    """Run every planned row that is not done. A row done with fewer seeds than ``--seeds`` grows:
    only the missing seeds run (one more awmctl command), and the row becomes the one a single run
    of all the seeds would give."""
    out = Path(args.out)
    rows = planned_rows(args)
    for n, (task, horizon, method, variant) in enumerate(rows, 1):
        rid = row_id(task, horizon, method, variant)
        path = out / "rows" / f"{rid}.json"
        done = json.loads(path.read_text()) if path.exists() else None
        have = 0 if done is None else done["seeds"]
        if have >= args.seeds:
            continue
        print(
            f"[{n}/{len(rows)}] {rid}" + (f" (seeds {have}-{args.seeds - 1})" if have else ""),
            file=sys.stderr,
            flush=True,
        )
        block = run_row(
            Block(
                task, horizon, method, variant, args.seeds - have, args.env_steps, have, args.preset
            ),
            out,
        )
        row = block if done is None else extend(done, block)
        atomic_write(path, json.dumps(row))
        print(
            f"    score {row['score_mean']:.3f} ± {row['score_ci95']:.3f} ({row['seeds']} seeds), "
            f"return {row['returns_mean']:.4g}, {block['wall_s']} s",
            file=sys.stderr,
            flush=True,
        )


# ---------------------------------------------------------------------------------- report


def load_rows(out: Path, seeds: int | None = None) -> list[dict]:
    """Every row, or with ``seeds`` each row's first ``seeds`` seeds only (the grid as it ran, at 3
    seeds, while its H = 100 rows grow to 10 for section 9), means and intervals recomputed."""
    rows = [json.loads(p.read_text()) for p in sorted((out / "rows").glob("*.json"))]
    for row in rows:
        if seeds is not None and row["seeds"] > seeds:
            row["seeds"] = seeds
            for key in ("returns", "scores"):
                row[key] = row[key][:seeds]
            row["curves"] = [point[:seeds] for point in row["curves"]]
            row["returns_mean"], row["score_mean"] = (
                float(np.mean(row["returns"])),
                float(np.mean(row["scores"])),
            )
            # the first block's time: the one the grid's own run of these seeds took
            first = (row.get("blocks") or [row])[0]
            row["wall_s"], row["run_time"] = first["wall_s"], first["run_time"]
        # intervals from the seeds' values, as awmctl.stats computes them now
        row["returns_ci95"], row["score_ci95"] = ci95(row["returns"]), ci95(row["scores"])
    return rows


#: a (task, H) where every BPO method's mean score at the paper's settings reaches this is
#: saturated: no comparison can be seen on it
SATURATED = 0.97


def not_counted(rows: list[dict], task: str, horizon: int) -> str:
    """Why (task, H) is reported but neither ranked nor counted in any mean, or '' when it counts.
    One rule for every table (docs/results.md, section 9), decided on the grid's rows at the
    paper's settings (their first 3 seeds): a task `awmctl tasks` flags, or a saturated one (every
    BPO method's mean score 0.97 or more). No other exclusion."""
    mine = [
        r
        for r in rows
        if r["task"] == task
        and r["horizon"] == horizon
        and r["variant"] == "clean"
        and r["method"] not in AGENTS
        and r.get("preset", "paper") == "paper"
    ]
    if not mine:
        return ""
    if mine[0]["flag"]:
        return f"flagged: {mine[0]['flag']}"
    if all(np.mean(r["scores"][:3]) >= SATURATED for r in mine):
        return f"saturated: every BPO method at {SATURATED} or more"
    return ""


def cell(row: dict | None) -> str:
    return "" if row is None else f"{row['score_mean']:.2f} ± {row['score_ci95']:.2f}"


def best_methods(rows: dict[str, dict]) -> list[str]:
    """The best method and every method whose 95% interval reaches the best's, best first."""
    if not rows:
        return []
    top = max(rows.values(), key=lambda r: r["score_mean"])
    tied = [
        m
        for m, r in rows.items()
        if r["score_mean"] + r["score_ci95"] >= top["score_mean"] - top["score_ci95"]
    ]
    return sorted(tied, key=lambda m: -rows[m]["score_mean"])


def leaders(rows: dict[str, dict]) -> str:
    """The best method, or every method tied with it."""
    names = [LABELS.get(m, m) for m in best_methods(rows)]
    return "" if not names else names[0] if len(names) == 1 else "tie: " + ", ".join(names)


def grid_table(rows: list[dict], methods: list[str]) -> str:
    clean = {(r["task"], r["horizon"], r["method"]): r for r in rows if r["variant"] == "clean"}
    keys = sorted(
        {(t, h) for t, h, _ in clean},
        key=lambda k: (k[1], PAPER_TASKS.index(k[0]) if k[0] in PAPER_TASKS else 99, k[0]),
    )
    lines = [
        "| task | H | " + " | ".join(LABELS.get(m, m) for m in methods) + " | best |",
        "|---|---|" + "---|" * (len(methods) + 1),
    ]
    for task, horizon in keys:
        mine = {m: clean.get((task, horizon, m)) for m in methods}
        present = {m: r for m, r in mine.items() if r is not None}
        flag = not_counted(rows, task, horizon)
        best = "not ranked: " + flag if flag else leaders(present)
        name = f"{task} ({flag.split(':')[0]})" if flag else task
        lines.append(
            f"| {name} | {horizon} | " + " | ".join(cell(mine[m]) for m in methods) + f" | {best} |"
        )
    return "\n".join(lines)


def time_table(rows: list[dict], methods: list[str]) -> str:
    clean = [r for r in rows if r["variant"] == "clean"]
    lines = [
        "| method | H | rows | seeds | mean wall s per row | total wall s |",
        "|---|---|---|---|---|---|",
    ]
    total = 0.0
    for method in methods:
        for horizon in sorted({r["horizon"] for r in clean}):
            mine = [r for r in clean if r["method"] == method and r["horizon"] == horizon]
            walls = [
                r["wall_s"] if r["wall_s"] is not None else (r["run_time"] or {}).get("wall_s")
                for r in mine
            ]
            walls = [w for w in walls if w is not None]
            if walls:
                total += sum(walls)
                lines.append(
                    f"| {LABELS.get(method, method)} | {horizon} | {len(mine)} | "
                    f"{mine[0]['seeds']} | {np.mean(walls):.0f} | {sum(walls):.0f} |"
                )
    lines.append(f"| all | | {len(clean)} | | | {total:.0f} ({total / 3600:.2f} h) |")
    return "\n".join(lines)


def variant_order(variant: str) -> tuple:
    """clean first, then each parameter by name and by value (distractors=4 before
    distractors=16)."""
    if variant == "clean":
        return ("",)
    name, _, value = variant.partition("=")
    return (name, float(value))


def robustness_table(rows: list[dict]) -> str:
    variants = sorted({r["variant"] for r in rows if r["variant"] != "clean"}, key=variant_order)
    if not variants:
        return "(no robustness rows yet)"
    by = {(r["task"], r["horizon"], r["method"], r["variant"]): r for r in rows}
    keys = sorted(
        {(r["task"], r["horizon"], r["method"]) for r in rows if r["variant"] != "clean"},
        key=lambda k: (k[0], k[1], METHODS.index(k[2]) if k[2] in METHODS else 99, k[2]),
    )
    lines = [
        "| task | H | method | clean | " + " | ".join(variants) + " |",
        "|---|---|---|---|" + "---|" * len(variants),
    ]
    for task, horizon, method in keys:
        clean = by.get((task, horizon, method, "clean"))
        cells = []
        for variant in variants:
            row = by.get((task, horizon, method, variant))
            change = (
                ""
                if row is None or clean is None
                else f" ({row['score_mean'] - clean['score_mean']:+.2f})"
            )
            cells.append(cell(row) + change)
        lines.append(
            f"| {task} | {horizon} | {LABELS.get(method, method)} | {cell(clean)} | "
            + " | ".join(cells)
            + " |"
        )
    return (
        "\n".join(lines)
        + "\n\nScore, mean ± 95% half-width over seeds; in brackets, the change from the clean row."
    )


def summary_table(rows: list[dict], methods: list[str]) -> str:
    """Per H and method: the mean score over the counted tasks (:func:`not_counted`), and on how
    many of them the method is best or tied for best (the counts are over the tasks where the
    method has a row)."""
    clean = {
        (r["task"], r["horizon"], r["method"]): r
        for r in rows
        if r["variant"] == "clean" and not not_counted(rows, r["task"], r["horizon"])
    }
    lines = [
        "| H | method | counted tasks | mean score | best or tied best on |",
        "|---|---|---|---|---|",
    ]
    for horizon in sorted({h for _, h, _ in clean}):
        tasks = sorted({t for t, h, _ in clean if h == horizon})
        won = {
            t: best_methods(
                {m: clean[(t, horizon, m)] for m in methods if (t, horizon, m) in clean}
            )
            for t in tasks
        }
        for method in methods:
            mine = [clean[(t, horizon, method)] for t in tasks if (t, horizon, method) in clean]
            if mine:
                wins = sum(1 for r in mine if method in won[r["task"]])
                lines.append(
                    f"| {horizon} | {LABELS.get(method, method)} | {len(mine)} | "
                    f"{np.mean([r['score_mean'] for r in mine]):.2f} | {wins} of {len(mine)} |"
                )
    return "\n".join(lines)


def robustness_chart(rows: list[dict], path: Path) -> bool:
    plt = pyplot()

    perturbed = {(r["task"], r["horizon"]) for r in rows if r["variant"] != "clean"}
    if not perturbed:
        return False
    mine = [r for r in rows if (r["task"], r["horizon"]) in perturbed]
    variants = sorted({r["variant"] for r in mine}, key=variant_order)
    groups = sorted(perturbed)
    fig, axes = plt.subplots(
        1, len(groups), figsize=(5.5 * len(groups), 3.6), dpi=110, squeeze=False
    )
    for ax, (task, horizon) in zip(axes[0], groups):
        here = [r for r in mine if (r["task"], r["horizon"]) == (task, horizon)]
        # the methods that ran perturbed here (their clean rows beside them; other methods' clean
        # rows left out)
        methods = [
            m for m in METHODS if any(r["method"] == m and r["variant"] != "clean" for r in here)
        ]
        width = 0.8 / max(len(methods), 1)
        for j, method in enumerate(methods):
            by = {r["variant"]: r for r in here if r["method"] == method}
            xs = [
                i + (j - (len(methods) - 1) / 2) * width for i, v in enumerate(variants) if v in by
            ]
            ax.bar(
                xs,
                [by[v]["score_mean"] for v in variants if v in by],
                width,
                yerr=[by[v]["score_ci95"] for v in variants if v in by],
                capsize=2,
                color=COLOURS.get(method),
                label=LABELS.get(method, method),
            )
        ax.set_xticks(range(len(variants)), variants, fontsize=7, rotation=20)
        ax.axhline(1.0, color="black", lw=0.8, ls="--")
        ax.axhline(0.0, color="grey", lw=0.8, ls=":")
        ax.set_ylim(-0.5, 1.4)
        ax.set_title(f"{task}, H = {horizon}", fontsize=9)
        ax.set_ylabel("normalised score (clean references)")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", ncol=len(methods))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def bar_chart(rows: list[dict], methods: list[str], path: Path) -> None:
    plt = pyplot()

    clean = {(r["task"], r["horizon"], r["method"]): r for r in rows if r["variant"] == "clean"}
    horizons = sorted({h for _, h, _ in clean})
    fig, axes = plt.subplots(
        len(horizons), 1, figsize=(11, 3.6 * len(horizons)), dpi=110, squeeze=False
    )
    for ax, horizon in zip(axes[:, 0], horizons):
        tasks = [t for t in PAPER_TASKS if any((t, horizon, m) in clean for m in methods)]
        tasks += sorted({t for t, h, _ in clean if h == horizon} - set(tasks))
        width = 0.8 / max(len(methods), 1)
        for j, method in enumerate(methods):
            xs, ys, errs = [], [], []
            for i, task in enumerate(tasks):
                row = clean.get((task, horizon, method))
                if row is not None:
                    xs.append(i + (j - (len(methods) - 1) / 2) * width)
                    ys.append(row["score_mean"])
                    errs.append(row["score_ci95"])
            ax.bar(
                xs,
                ys,
                width,
                yerr=errs,
                capsize=2,
                color=COLOURS.get(method),
                label=LABELS.get(method, method),
            )
            for x, y in zip(xs, ys):
                if y < -0.5:  # below the axis: say how far
                    ax.text(x, -0.48, f"{y:.1f}", ha="center", va="bottom", fontsize=6, rotation=90)
        flags = {
            t: next(
                (
                    r["flag"]
                    for (tt, h, _), r in clean.items()
                    if tt == t and h == horizon and r["flag"]
                ),
                "",
            )
            for t in tasks
        }
        ax.set_xticks(
            range(len(tasks)), [t + (" *" if flags[t] else "") for t in tasks], fontsize=8
        )
        ax.axhline(1.0, color="black", lw=0.8, ls="--")
        ax.axhline(0.0, color="grey", lw=0.8, ls=":")
        ax.set_ylim(-0.5, 1.25)
        ax.set_ylabel("normalised score")
        ax.set_title(
            f"H = {horizon}: mean and 95% interval over seeds (* flagged task: not ranked)",
            fontsize=10,
        )
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].legend(fontsize=7, ncol=4, loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def curves_figure(
    rows: list[dict],
    task: str,
    horizon: int,
    path: Path,
    methods=("awm-transformer", "sac", "online-dt"),
) -> bool:
    plt = pyplot()

    mine = [
        r
        for r in rows
        if r["task"] == task
        and r["horizon"] == horizon
        and r["variant"] == "clean"
        and r["method"] in methods
    ]
    if not mine:
        return False
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    for row in sorted(mine, key=lambda r: methods.index(r["method"])):
        score = (np.asarray(row["curves"]) - row["R_random"]) / (
            row["R_opt"] - row["R_random"]
        )  # [points, seeds]
        mean = score.mean(axis=1)
        colour = COLOURS.get(row["method"])
        ax.plot(
            row["steps"], mean, color=colour, lw=1.6, label=LABELS.get(row["method"], row["method"])
        )
        if score.shape[1] > 1:
            half = ci95(score, axis=1)
            ax.fill_between(row["steps"], mean - half, mean + half, color=colour, alpha=0.2)
    ax.axhline(1.0, color="black", lw=0.8, ls="--", label="best open-loop plan (1)")
    ax.axhline(0.0, color="grey", lw=0.8, ls=":", label="random policy (0)")
    ax.set_xlabel("environment step")
    ax.set_ylabel("normalised eval return")
    ax.set_ylim(-1.0, 1.3)
    flag = mine[0]["flag"]
    ax.set_title(
        f"{task}, H={horizon} ({mine[0]['seeds']} seeds)" + (f"\nflagged: {flag}" if flag else ""),
        fontsize=9,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def replace_section(doc: Path, name: str, body: str, tag: str = "reproduce") -> None:
    """Rewrite the part of ``doc`` between ``<!-- TAG:NAME:begin -->`` and its end marker."""
    text = doc.read_text()
    begin, end = (f"<!-- {tag}:{name}:{edge} -->" for edge in ("begin", "end"))
    if begin not in text or end not in text:
        raise SystemExit(f"{doc} has no {begin} ... {end} markers")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    atomic_write(doc, f"{head}{begin}\n{body}\n{end}{tail}")


def report(args) -> None:
    out, figures = Path(args.out), Path(args.figures)
    figures.mkdir(parents=True, exist_ok=True)
    rows = load_rows(out, seeds=args.seeds)
    methods = [m for m in METHODS if any(r["method"] == m for r in rows)]
    methods += sorted({r["method"] for r in rows} - set(methods))
    clean = [r for r in rows if r["variant"] == "clean"]
    if clean:
        bar_chart(rows, methods, figures / "reproduce_fig5a.png")
    curves = []
    for task, horizon in sorted({(r["task"], r["horizon"]) for r in clean}):
        if curves_figure(rows, task, horizon, figures / f"reproduce_curves_{task}_h{horizon}.png"):
            curves.append(f"![{task}, H={horizon}](figures/reproduce_curves_{task}_h{horizon}.png)")
    # every method with a row (the default grid's and any other model run with --methods)
    planned = len(PAPER_TASKS) * 2 * len(methods)
    grid, robustness = grid_table(rows, methods), robustness_table(rows)
    body = (
        f"{len(clean)} of the grid's {planned} rows ({len(methods)} methods, "
        f"{len(PAPER_TASKS)} tasks, H = 20 and 100) are done "
        f"(`.venv/bin/python benchmarks/reproduce.py`, rows in `{out}/rows/`).\n\n"
        + grid
        + "\n\nSummary over the counted tasks (not flagged, not saturated: section 9's rule):\n\n"
        + summary_table(rows, methods)
        + "\n\n![Figure 5a](figures/reproduce_fig5a.png)\n\nWall time per row "
        "(this machine; a row is one awmctl command running every seed):\n\n"
        + time_table(rows, methods)
        + "\n\nLearning curves (Figure 5b):\n\n"
        + "\n".join(curves)
    )
    replace_section(Path(args.doc), "grid", body)
    chart = robustness_chart(rows, figures / "reproduce_robustness.png")
    replace_section(
        Path(args.doc),
        "robustness",
        robustness + ("\n\n![Robustness](figures/reproduce_robustness.png)" if chart else ""),
    )
    print(grid, file=sys.stderr)
    print(robustness, file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--tasks",
        default=",".join(PAPER_TASKS),
        help="Comma-separated task names (any awmctl task).",
    )
    parser.add_argument("--horizons", default="20,100", help="Comma-separated horizons.")
    parser.add_argument(
        "--methods", default=",".join(METHODS), help="Comma-separated: " + ", ".join(METHODS) + "."
    )
    parser.add_argument(
        "--variants", default="clean", help="Comma-separated: clean, distractors=N, noise=SIGMA."
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=3,
        help="Seeds per row (the paper: 10; a row with fewer grows, running only the missing "
        "seeds). With --report: the first N seeds of each row (the grid as it ran: 3).",
    )
    parser.add_argument("--env-steps", type=int, default=5000)
    parser.add_argument(
        "--preset",
        default="paper",
        choices=("paper", "converged"),
        help="The BPO rows' policy optimiser: the paper's budget (the grid), or awmctl's converged "
        "defaults (their rows in --out's default benchmarks/results/reproduce-converged).",
    )
    parser.add_argument("--out", default=None, help="(default benchmarks/results/reproduce)")
    parser.add_argument(
        "--shard",
        default="0/1",
        help="I/N: run every N-th row from the I-th (array jobs, parallel processes).",
    )
    parser.add_argument(
        "--report",
        action="store_true",
        help="Only write the tables and figures from the rows there are.",
    )
    parser.add_argument("--figures", default="docs/figures")
    parser.add_argument("--doc", default="docs/results.md")
    args = parser.parse_args()
    if args.out is None:
        args.out = "benchmarks/results/reproduce" + ("" if args.preset == "paper" else "-converged")
    if args.report:
        report(args)
    else:
        sweep(args)


if __name__ == "__main__":
    main()
