"""Markdown table of benchmarks/bpo_tasks.py results: returns and normalised scores.

Run: .venv/bin/python benchmarks/results_table.py [benchmarks/results/bpo_tasks.jsonl]

Prints a pivot of normalised scores (method x task/H), then every row in detail.

Score = (R - R_random) / (R_opt - R_random), R_opt = the direct-shooting plan's return; a score
above 1 means a closed-loop policy beat the best open-loop plan found. When several rows exist
for one (task, H, method) the last one counts.
"""

from __future__ import annotations

import json
import sys

from awmctl.stats import ci95

#: why bacteria's fits cannot be judged: random-policy data always end extinct
EXTINCT = (
    "random-policy data always end extinct, so final-state R² is undefined (shown 0) and models "
    "never see a surviving run"
)
# Tasks whose numbers must not be used to rank methods, and why (docs/tasks.md).
#: caveats printed under a (task, H)'s rows: notes for the reader, not flags (which tasks are ranked
#: and counted is decided by one rule, docs/results.md section 9)
NOTES = {
    ("hiv-treatment", 20): "Euler unstable at dt = 1: clip-dominated, multi-modal",
    (
        "hiv-treatment",
        100,
    ): "return dominated by the uncontrollable healthy-cell term; optimum - random is small",
    (
        "bacteria",
        20,
    ): EXTINCT,
    (
        "bacteria",
        100,
    ): EXTINCT,
}
ORDER = [
    "random",
    "direct-shooting",
    "simulator",
    "markov-mlp",
    "awm-transformer",
    "awm-lstm",
    "awm-gru",
    "awm-rnn",
    "hwm-transformer",
    "hwm-lstm",
]


TASKS = ["cancer", "bacteria", "mould-fungicide", "hiv-treatment"]


def score(rows, task, h, value):
    random_r = rows.get((task, h, "random"), {}).get("returns_mean")
    opt = rows.get((task, h, "direct-shooting"), {}).get("returns_mean")
    if random_r is None or opt is None or opt == random_r:
        return None
    return (value - random_r) / (opt - random_r)


def pivot(rows) -> None:
    """Normalised scores: one row per method, one column per (task, H)."""
    keys = [(t, h) for t in TASKS for h in (20, 100) if (t, h, "random") in rows]
    print("| method | " + " | ".join(f"{t} H={h}" for t, h in keys) + " |")
    print("|---|" + "---|" * len(keys))
    for method in ORDER[1:]:
        cells = []
        for t, h in keys:
            r = rows.get((t, h, method))
            sc = None if r is None else score(rows, t, h, r["returns_mean"])
            cells.append("" if sc is None else f"{sc:.3f}")
        if any(cells):
            name = "direct-shooting (best of 8 starts)" if method == "direct-shooting" else method
            print(f"| {name} | " + " | ".join(cells) + " |")


def main(path: str = "benchmarks/results/bpo_tasks.jsonl") -> None:
    rows = {}
    with open(path) as lines:
        for line in lines:
            r = json.loads(line)
            rows[(r["task"], r["horizon"], r["method"])] = r
    pivot(rows)
    print()
    keys = sorted(
        {(t, h) for t, h, _ in rows},
        key=lambda k: (TASKS.index(k[0]) if k[0] in TASKS else 99, k[1]),
    )
    print("| task | H | method | return (mean ± 95% CI) | score | fit R² (final state) | time s |")
    print("|---|---|---|---|---|---|---|")
    for task, h in keys:
        for method in ORDER:
            r = rows.get((task, h, method))
            if r is None:
                continue
            # from the seeds' returns when the row has them, as awmctl.stats computes intervals now
            ci = ci95(r["returns"]) if len(r.get("returns", [])) > 1 else r.get("returns_ci95")
            ret = f"{r['returns_mean']:.4g}" + (f" ± {ci:.2g}" if ci else "")
            if method == "direct-shooting":  # R_opt: the best plan of its starts, not a mean
                ret = f"best of {len(r['returns'])} starts: {r['returns_mean']:.4g}"
            sc = score(rows, task, h, r["returns_mean"])
            sc_text = "" if sc is None else f"{sc:.3f}"
            r2 = r.get("val_final_r2") or []
            fit = ", ".join(f"{x:.2f}" for x in r2) if r2 else ""
            secs = r.get("seconds", "")
            print(f"| {task} | {h} | {method} | {ret} | {sc_text} | {fit} | {secs} |")
        if (task, h) in NOTES:
            print(f"| {task} | {h} | *note* | {NOTES[(task, h)]} | | | |")


if __name__ == "__main__":
    main(*sys.argv[1:])
