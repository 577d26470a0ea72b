"""Choosing awmctl's default policy optimiser with a held-out protocol (docs/results.md, section 8).

Run:  .venv/bin/python benchmarks/defaults.py --set dev --candidates paper,lr1e-3,lr1e-3-k4 \
          --methods awm-lstm,simulator
      .venv/bin/python benchmarks/defaults.py --set dev --shard 0/2 &
      .venv/bin/python benchmarks/defaults.py --set dev --shard 1/2
      .venv/bin/python benchmarks/defaults.py --set heldout --candidates paper,converged
      .venv/bin/python benchmarks/defaults.py --report [--doc docs/results.md]
          # the tables from the rows there are

Two sets of problems, fixed before any candidate ran:
- dev (choose on it): the paper's eight Myriad tasks at H = 20 and 100, and three user tasks with
  structures the paper's lack (benchmarks/tasks/dev_tasks.py: a bang-bang optimum, an unstable
  pendulum from random starts, an oscillator paid only at the end), at H = 20 and 100;
- heldout (report only, never choose on it): the built-in tasks outside the paper's grid
  (timber-harvest, harvest, invasive-plant, predator-prey-t10) and two textbook problems written
  to their sources (benchmarks/tasks/heldout_tasks.py: CasADi's Van der Pol, the Rayleigh
  problem), at H = 20 and 100.

A row is one (problem, H, method, candidate): `--seeds` seeds of one `awmctl optimize-policy
--online` command (or `--agent sac|online-dt` for the baselines) in `--out/runs/ROW/`; a killed row
resumes, a finished one is read back, never rerun. Scores use awmctl's own references (`awmctl
references`: 512 random episodes; best of 8 direct-shooting plans, Adam 1e-2, 2000 steps), cached
in `--out/cache`. For the paper's tasks at the paper's schedule (and the baselines) the Figure 5
grid's rows (benchmarks/results/reproduce/rows) are the same commands: their per-seed returns are
reused, not rerun.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from awmctl import make_task
from awmctl.artifacts.references import load_or_compute
from awmctl.stats import ci95

sys.path.insert(0, str(Path(__file__).parent))
from reproduce import atomic_write, bpo_command, replace_section, run_unless_done

HERE = Path(__file__).parent
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
DEV_USER = tuple(f"benchmarks/tasks/dev_tasks.py:{c}" for c in ("LinearHarvest", "Balance", "Park"))
HELDOUT_BUILTIN = ("timber-harvest", "harvest", "invasive-plant", "predator-prey-t10")
HELDOUT_USER = tuple(f"benchmarks/tasks/heldout_tasks.py:{c}" for c in ("VanDerPol", "Rayleigh"))
SETS = {"dev": PAPER_TASKS + DEV_USER, "heldout": HELDOUT_BUILTIN + HELDOUT_USER}
HORIZONS = (20, 100)
#: candidate -> the options it adds to `optimize-policy --online` (BPO methods only)
CANDIDATES = {
    "paper": ["--preset", "paper"],
    "lr1e-3": ["--preset", "paper", "--lr", "1e-3"],
    "lr1e-3-k4": ["--preset", "paper", "--lr", "1e-3", "--policy-updates", "4"],
    "lr1e-3-k4-ent0": [
        "--preset",
        "paper",
        "--lr",
        "1e-3",
        "--policy-updates",
        "4",
        "--entropy",
        "0",
    ],
    # the converged optimiser without its guard against model exploitation (awmctl's defaults
    # before the trust gate: its rows ran then, as `converged`)
    "ungated": ["--trust-gate", "0"],
    # awmctl's defaults: lr 1e-3, 4 updates per round, entropy 0, trust gate 0.5
    "converged": [],
    # the defaults with a model update after every env step instead of every two (twice the
    # model's compute, the same env steps): is the model undertrained where the gate shuts?
    "model-every-1": ["--model-every", "1"],
    # the defaults with the trust gate also checking the episode in progress before every
    # policy round (its evidence every 16 env steps instead of once per episode)
    "in-progress": ["--trust-check", "in-progress"],
    # the defaults with a distrusted episode also setting the policy back to the one that began
    # the last trusted episode (undoing the updates that exploited the model before the check)
    "restore": ["--trust-restore"],
    # world models that know their uncertainty (docs/results.md, section 8: each piece alone on the
    # development set, then combined): an ensemble of 3 models imagined in together, the policy's
    # objective the members' mean return ...
    "ens3": ["--ensemble", "3"],
    # ... or their lower confidence bound, mean minus one standard deviation (pessimism)
    "ens3-p1": ["--ensemble", "3", "--pessimism", "1"],
    # ... or, for the first 1500 env steps of updating, their upper bound, mean plus one standard
    # deviation (directed exploration: the policy goes where the members disagree), then the mean
    "ens3-x1": ["--ensemble", "3", "--exploration", "1", "--explore-steps", "1500"],
    # ... pessimism, and the trust gate reading the disagreement: it compares the lower bound the
    # policy climbs, not the members' mean, with the real return
    "ens3-p1-tb": ["--ensemble", "3", "--pessimism", "1", "--trust-bound"],
    # the defaults with the policy going back to the best policy the real episodes saw when an
    # episode returns more than a spread below it (no ensemble: the data's own guard)
    "keep1": ["--keep-best", "1"],
    # exploration by perturbed plans (no ensemble): the first 1500 env steps of updating shift
    # every episode's actions by a constant offset drawn per episode in [-1, 1]
    "offset1": ["--explore-offset", "1", "--explore-steps", "1500"],
    # optimism that matters: on the policy's own episodes the members disagree by 0.1-5% of the
    # score's span (ens3-x1's runs), so one standard deviation barely moves the objective
    "ens3-x10": ["--ensemble", "3", "--exploration", "10", "--explore-steps", "1500"],
}
#: the candidates of the uncertainty-aware world models (ensembles, pessimism, exploration, the
#: gate reading the disagreement, the fall-back to the best real policy): each piece measured alone
#: on the development set's hard rows before any is combined, in a table of their own
UNCERTAINTY = ("ens3", "ens3-p1", "ens3-x1", "ens3-x10", "ens3-p1-tb", "offset1", "keep1")
#: the same candidates offline (`optimize-policy --model simulator`, 1000 updates)
OFFLINE_CANDIDATES = {"paper": ["--preset", "paper"], "converged": []}
AGENTS = ("sac", "online-dt")
REPRODUCE_ROWS = HERE / "results" / "reproduce" / "rows"


def short(task: str) -> str:
    return task.rsplit(":", 1)[-1].lower() if ":" in task else task


def row_id(task: str, horizon: int, method: str, candidate: str) -> str:
    return f"{short(task)}-h{horizon}-{method}-{candidate}"


#: offline BPO through the simulator (no data: initial states and input scales from random episodes)
OFFLINE = "offline-simulator"
#: offline BPO through a world model fitted at awmctl's defaults (`collect`: 512 random episodes;
#: `fit-model`: 2000 steps), the data's episodes its initial states; method -> model
OFFLINE_FITTED = {"offline-awm-lstm": "awm-lstm", "offline-awm-transformer": "awm-transformer"}
OFFLINE_METHODS = (OFFLINE, *OFFLINE_FITTED)


def fitted_model(task: str, horizon: int, model: str, out: Path) -> tuple[Path, Path]:
    """The dataset and the fitted model offline BPO through ``model`` starts from (one of each
    per task and H, shared by the candidates): made by awmctl's own commands at their defaults,
    or read back."""
    base = out / "runs" / f"{short(task)}-h{horizon}-{model}-offline"
    data, fitted = base / "data", base / "model"
    for argv, where in (
        (["collect", "--task", task, "--horizon", str(horizon), "--out", str(data)], data),
        (["fit-model", "--data", str(data), "--model", model, "--out", str(fitted)], fitted),
    ):
        name = f"{base.name}-{where.name}"
        run_unless_done([sys.executable, "-m", "awmctl", *argv], where, base / f"{name}.log", name)
    return data, fitted


def command(
    task: str,
    horizon: int,
    method: str,
    candidate: str,
    seeds: int,
    run_dir: Path,
    fitted: tuple[Path, Path] | None = None,
) -> list[str]:
    if method in AGENTS:
        how = ["--agent", method]
    elif method == OFFLINE:
        how = ["--model", "simulator", *OFFLINE_CANDIDATES[candidate]]
    elif method in OFFLINE_FITTED:
        data, model = fitted or (Path("DATA"), Path("MODEL"))
        how = ["--model", str(model), "--data", str(data), *OFFLINE_CANDIDATES[candidate]]
    else:
        how = ["--online", "--model", method, *CANDIDATES[candidate]]
    return bpo_command(
        how, task, horizon, "--seed", "0", "--seeds", str(seeds), "--out", str(run_dir)
    )


def grid_row(task: str, horizon: int, method: str, candidate: str) -> dict | None:
    """The Figure 5 grid's row of the same command (the paper's schedule on a paper task, or a
    baseline), whose per-seed returns and curves are reused instead of running it again."""
    if candidate != "paper" or method in OFFLINE_METHODS:
        return None
    path = REPRODUCE_ROWS / f"{task}-h{horizon}-{method}.json"
    return json.loads(path.read_text()) if path.exists() else None


def run_row(task: str, horizon: int, method: str, candidate: str, seeds: int, out: Path) -> dict:
    rid = row_id(task, horizon, method, candidate)
    run_dir = out / "runs" / rid
    fitted = (
        fitted_model(task, horizon, OFFLINE_FITTED[method], out)
        if method in OFFLINE_FITTED
        else None
    )
    argv = command(task, horizon, method, candidate, seeds, run_dir, fitted)
    wall = run_wall = gate = None
    grid = grid_row(task, horizon, method, candidate)
    if grid is not None:
        curves, final = grid["curves"], np.asarray(grid["returns"], np.float64)
        wall, run_wall = grid["wall_s"], (grid.get("run_time") or {}).get("wall_s")
    else:
        wall = run_unless_done(argv, run_dir, out / "runs" / f"{rid}.log", rid)
        records = [
            json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()
        ]
        curves = [r["eval/eval_return"] for r in records if "eval/eval_return" in r]
        final = np.asarray(curves[-1], np.float64)
        meta = json.loads((run_dir / "meta.json").read_text())
        run_wall = meta["summary"].get("wall_s")
        gate = gate_record(records, meta["config"].get("online", {}).get("policy_updates"))
    refs = load_or_compute(make_task(task, horizon), out / "cache")
    scores = refs.score(final)
    return {
        "task": short(task),
        "source": task,
        "horizon": horizon,
        "method": method,
        "candidate": candidate,
        "seeds": len(final),
        "returns": final.tolist(),
        "scores": scores.tolist(),
        "score_mean": float(scores.mean()),
        "R_random": refs.random,
        "R_opt": refs.opt,
        "curves": curves,
        "wall_s": None if wall is None else round(wall, 1),
        "run_wall_s": run_wall,
        "command": " ".join(argv[1:]),
        "from_grid": grid is not None,
        **(fit_record(fitted[1]) if fitted else {}),
        **(gate or {}),
    }


def fit_record(model_dir: Path) -> dict:
    """How well the model offline BPO went through was fitted (its validation numbers)."""
    summary = json.loads((model_dir / "meta.json").read_text())["summary"]
    return {"fit": {k: summary[k] for k in ("val_mse", "val_final_r2", "val_rollout_mse")}}


def gate_record(records: list[dict], per_round: int | None) -> dict | None:
    """Per seed, the policy rounds the trust gate skipped and the rounds scheduled (a skipped
    round makes no update, a full one ``per_round``: the run's ``--policy-updates``); None for a
    run with no trust gate (an agent, or a run recorded before the gate existed)."""
    last = records[-1]
    if per_round is None or "train/gated_rounds" not in last:
        return None
    gated = last["train/gated_rounds"]
    return {
        "gated_rounds": gated,
        "policy_rounds": [u // per_round + g for u, g in zip(last["train/policy_updates"], gated)],
        **({"restores": last["train/restores"]} if "train/restores" in last else {}),
    }


def planned(args) -> list[tuple[str, int, str, str]]:
    tasks = [
        t
        for s in args.set.split(",")
        for t in SETS[s]
        if not args.tasks or short(t) in args.tasks.split(",")
    ]
    rows = [
        (t, h, m, c)
        for c in args.candidates.split(",")
        for m in args.methods.split(",")
        for h in map(int, args.horizons.split(","))
        for t in tasks
        if not (m in AGENTS and c != "paper")
        and not (m in OFFLINE_METHODS and c not in OFFLINE_CANDIDATES)
    ]
    index, count = (int(x) for x in args.shard.split("/"))
    return rows[index::count]


def sweep(args) -> None:
    out = Path(args.out)
    rows = planned(args)
    for n, key in enumerate(rows, 1):
        path = out / "rows" / f"{row_id(*key)}.json"
        if path.exists():
            continue
        print(f"[{n}/{len(rows)}] {row_id(*key)}", file=sys.stderr, flush=True)
        row = run_row(*key, args.seeds, out)
        atomic_write(path, json.dumps(row))
        print(
            f"    score {row['score_mean']:.3f} ({', '.join(f'{s:.3f}' for s in row['scores'])}), "
            f"{row['wall_s']} s",
            file=sys.stderr,
            flush=True,
        )


def load_rows(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / "rows").glob("*.json"))]


def cell(r: dict | None) -> str:
    return "" if r is None else f"{r['score_mean']:.3f} ± {ci95(r['scores']):.3f}"


def columns(rows: list[dict], tasks: list[str]) -> list[tuple[str, str]]:
    present = {(r["method"], r["candidate"]) for r in rows if r["task"] in tasks}
    methods = [
        m
        for m in ("awm-transformer", "awm-lstm", "simulator", *OFFLINE_METHODS, "sac", "online-dt")
        if any(p[0] == m for p in present)
    ]
    return [
        (m, c) for m in methods for c in CANDIDATES if (m, c) in present and c not in UNCERTAINTY
    ]


def uncertainty_table(rows: list[dict]) -> str:
    """The uncertainty candidates beside the converged defaults, on every development row where
    any of them ran: per (task, H, method) the score of each (mean ± 95% interval over seeds),
    then per column the mean, the lowest row and the rows at 0.95 or more over the rows that
    column has; the last column is the best real evaluation the converged runs saw (the mean over
    seeds of each seed's highest eval return), what a run that never fell below its data would
    keep."""
    by = {(r["task"], r["horizon"], r["method"], r["candidate"]): r for r in rows}
    keys = sorted(
        {(r["task"], r["horizon"], r["method"]) for r in rows if r["candidate"] in UNCERTAINTY},
        key=lambda k: (k[2], k[1], [short(t) for t in SETS["dev"]].index(k[0])),
    )
    cols = ("converged", *UNCERTAINTY)
    lines = [
        "| task | H | method | " + " | ".join(cols) + " | best real evaluation (converged) |",
        "|---|---|---|" + "---|" * (len(cols) + 1),
    ]
    found: dict[str, list[float]] = {c: [] for c in cols}
    for t, h, m in keys:
        cells = []
        for c in cols:
            r = by.get((t, h, m, c))
            cells.append(cell(r))
            if r is not None:
                found[c].append(r["score_mean"])
        base = by.get((t, h, m, "converged"))
        best = ""
        if base is not None:
            peak = np.max(np.asarray(base["curves"], np.float64), axis=0)
            span = base["R_opt"] - base["R_random"]
            best = f"{np.mean((peak - base['R_random']) / span):.3f}"
        lines.append(f"| {t} | {h} | {m} | " + " | ".join(cells) + f" | {best} |")
    for label, fn in (("mean", np.mean), ("lowest", np.min)):
        lines.append(
            f"| **{label}** | | | "
            + " | ".join(f"{fn(v):.3f} ({len(v)})" if v else "" for v in found.values())
            + " | |"
        )
    lines.append(
        "| **rows >= 0.95** | | | "
        + " | ".join(
            f"{sum(x >= 0.95 for x in v)} of {len(v)}" if v else "" for v in found.values()
        )
        + " | |"
    )
    rule = [verdict(by, keys, c) for c in UNCERTAINTY]
    lines.append("| **the rule, against converged** | | | | " + " | ".join(rule) + " | |")
    return "\n".join(lines)


def verdict(by: dict, keys: list[tuple], candidate: str) -> str:
    """Section 8's rule for an uncertainty piece, over the rows it shares with the converged
    defaults: the difference of the means, the rows that are *lower* (the candidate's mean below
    the converged row's by more than that row's 95% half-width), and whether it is kept (a
    higher mean, no row lower, every row run)."""
    pairs = [
        (by[(t, h, m, "converged")], by[(t, h, m, candidate)])
        for t, h, m in keys
        if (t, h, m, "converged") in by and (t, h, m, candidate) in by
    ]
    if not pairs:
        return ""
    diff = np.mean([new["score_mean"] - old["score_mean"] for old, new in pairs])
    lower = [
        f"{new['task']} H{new['horizon']}"
        for old, new in pairs
        if new["score_mean"] < old["score_mean"] - ci95(old["scores"])
    ]
    if diff <= 0 or lower:
        state = "not kept"
    else:
        state = "kept" if len(pairs) == len(keys) else "so far kept"
    return f"{diff:+.3f} over {len(pairs)} rows; lower: {', '.join(lower) or 'none'}; {state}"


def table(rows: list[dict], which: str) -> str:
    """Per (task, H): every (method, candidate)'s score, mean ± 95% interval over seeds; then per
    column the mean over the rows present, the lowest row, and how many rows reach 0.95."""
    tasks = [short(t) for t in SETS[which]]
    by = {(r["task"], r["horizon"], r["method"], r["candidate"]): r for r in rows}
    cols = columns(rows, tasks)
    lines = [
        "| task | H | " + " | ".join(f"{m} ({c})" for m, c in cols) + " |",
        "|---|---|" + "---|" * len(cols),
    ]
    found: dict[tuple, list] = {col: [] for col in cols}
    for h in HORIZONS:
        for t in tasks:
            mine = [by.get((t, h, *col)) for col in cols]
            for col, r in zip(cols, mine):
                if r is not None:
                    found[col].append(r["score_mean"])
            if any(mine):
                lines.append(f"| {t} | {h} | " + " | ".join(cell(r) for r in mine) + " |")
    for label, fn in (
        ("mean", np.mean),
        ("lowest", np.min),
        ("rows >= 0.95", lambda v: f"{sum(x >= 0.95 for x in v)} of"),
    ):
        lines.append(
            f"| **{label}** | | "
            + " | ".join(
                ""
                if not v
                else (
                    f"{fn(v)} {len(v)}"
                    if label.startswith("rows")
                    else f"{fn(v):.3f} ({len(v)} rows)"
                )
                for v in found.values()
            )
            + " |"
        )
    return "\n".join(lines)


def grid_comparison(rows: list[dict]) -> str:
    """The paper's grid at the converged defaults against the paper's schedule: per paper task, H
    and BPO method, both scores, their difference, and a verdict by the page's interval rule
    (lower: the converged mean is below the paper row's by more than the paper row's 95% half-width;
    higher: above it by more than the converged row's). An AWM row not yet rerun with the trust
    gate shows its ungated row, marked so."""
    by = {(r["task"], r["horizon"], r["method"], r["candidate"]): r for r in rows}
    lines = [
        "| task | H | method | paper schedule | converged | difference | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    verdicts: dict[str, int] = {"higher": 0, "same": 0, "lower": 0}
    for h in HORIZONS:
        for t in PAPER_TASKS:
            for m in ("awm-transformer", "awm-lstm", "simulator"):
                old, new = by.get((t, h, m, "paper")), by.get((t, h, m, "converged"))
                # an AWM row not rerun since the trust gate: the ungated row, marked
                fallback = new is None and m != "simulator"
                if fallback:
                    new = by.get((t, h, m, "ungated"))
                if old is None or new is None:
                    continue
                diff = new["score_mean"] - old["score_mean"]
                verdict = (
                    "lower"
                    if diff < -ci95(old["scores"])
                    else "higher"
                    if diff > ci95(new["scores"])
                    else "same"
                )
                verdicts[verdict] += 1
                lines.append(
                    f"| {t} | {h} | {m} | {cell(old)} | "
                    f"{cell(new)}{' (ungated)' if fallback else ''} | {diff:+.3f} | {verdict} |"
                )
    lines.append(
        "\n"
        + ", ".join(f"{v}: {n}" for v, n in verdicts.items())
        + f" (of {sum(verdicts.values())} rows)"
    )
    return "\n".join(lines)


def skipped_share(row: dict | None) -> str:
    """The share of policy rounds the trust gate skipped in a row ("" without a gate)."""
    if row is None or "gated_rounds" not in row:
        return ""
    return f"{sum(row['gated_rounds']) / max(sum(row['policy_rounds']), 1):.0%}"


def gate_table(rows: list[dict]) -> str:
    """Every AWM row at the defaults (trust gate on) beside the same row without the gate (and,
    where they ran, with the first, cautious gate: one update moved a tenth of its way, and with
    the gate also checking the episode in progress, and with it setting a distrusted policy
    back), with the share of policy rounds skipped."""
    by = {(r["task"], r["horizon"], r["method"], r["candidate"]): r for r in rows}
    lines = [
        (
            "| task | H | method | ungated | cautious gate | skipping gate (converged) | rounds "
            "skipped | in-progress check (rounds skipped) | restore (restores per seed) |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for which in ("dev", "heldout"):
        for h in HORIZONS:
            for t in (short(x) for x in SETS[which]):
                for m in ("awm-transformer", "awm-lstm"):
                    new = by.get((t, h, m, "converged"))
                    if new is None:
                        continue
                    old, cautious = by.get((t, h, m, "ungated")), by.get((t, h, m, "cautious-gate"))
                    checked = by.get((t, h, m, "in-progress"))
                    restored = by.get((t, h, m, "restore"))
                    restores = (
                        f" ({sum(restored['restores']) / len(restored['restores']):.1f})"
                        if restored and "restores" in restored
                        else ""
                    )
                    lines.append(
                        f"| {t}{' (held out)' if which == 'heldout' else ''} | {h} | {m} | "
                        f"{cell(old)} | {cell(cautious)} | {cell(new)} | {skipped_share(new)} | "
                        f"{cell(checked)}{f' ({skipped_share(checked)})' if checked else ''} | "
                        f"{cell(restored)}{restores} |"
                    )
    return "\n".join(lines)


def report(args) -> None:
    rows = load_rows(Path(args.out))
    body = uncertainty_table(rows)
    print(f"\n### uncertainty-aware world models\n\n{body}")
    if args.doc:
        replace_section(Path(args.doc), "uncertainty", body, tag="defaults")
    body = gate_table(rows)
    print(f"\n### the trust gate\n\n{body}")
    if args.doc:
        replace_section(Path(args.doc), "gate", body, tag="defaults")
    body = grid_comparison(rows)
    print(f"\n### the paper's grid\n\n{body}")
    if args.doc:
        replace_section(Path(args.doc), "grid", body, tag="defaults")
    for which in ("dev", "heldout"):
        body = table(rows, which)
        print(f"\n### {which}\n\n{body}")
        if args.doc:
            replace_section(Path(args.doc), which, body, tag="defaults")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--set", default="dev", help="dev, heldout, or both (dev,heldout).")
    parser.add_argument("--candidates", default="paper,converged", help=", ".join(CANDIDATES))
    parser.add_argument("--methods", default="awm-lstm,awm-transformer,simulator")
    parser.add_argument("--horizons", default="20,100")
    parser.add_argument(
        "--tasks", default="", help="Only these tasks of the set (comma-separated short names)."
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/defaults")
    parser.add_argument("--shard", default="0/1")
    parser.add_argument(
        "--report", action="store_true", help="Print the tables from the rows there are."
    )
    parser.add_argument(
        "--doc",
        default="",
        help="With --report: also rewrite the marked tables of this file (docs/results.md).",
    )
    args = parser.parse_args()
    report(args) if args.report else sweep(args)


if __name__ == "__main__":
    main()
