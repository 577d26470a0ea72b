"""The paper's question with its statistical power: do transformer AWMs give better policies than
the other world models? The H = 100 world-model comparison with 10 seeds per row, aggregated over
the tasks that count (docs/results.md, section 9).

Run:  make reproduce-power          # the rows (resumable, SHARDS processes), then the report
      .venv/bin/python benchmarks/reproduce.py --horizons 100 --methods METHODS --seeds 10
      .venv/bin/python benchmarks/reproduce.py --horizons 100 --methods METHODS --seeds 3 \
            --preset converged       # item 6: the same comparison at the converged defaults
      .venv/bin/python benchmarks/power.py --doc docs/results.md   # tables, figures, summary

A 3-seed grid row grows to 10 seeds by running seeds 3-9 only (`reproduce.py --seeds 10`), and
the grown row equals a 10-seed run. Until every row has its seeds, each method's aggregate uses
the first k seeds of every counted task, k the fewest any of them has (stated in the tables).

**Which tasks count** (decided on the 3-seed grid at the paper's settings, before any 10-seed row
ran, and applied to every aggregate and comparison here):
1. a task that `awmctl tasks` flags is reported, not counted (bioreactor: trivial optimum;
   predator-prey: degenerate; glucose: nearly flat);
2. a *saturated* task is reported, not counted: every BPO method's mean score at the paper's
   settings is 0.97 or more, so no comparison can be seen on it (bear-populations);
3. no other exclusion. hiv-treatment at H = 100 counts (dt = 0.2: the Euler step is stable, and
   its scores differ between methods; section 1's "do not rank" is for H = 20, where dt = 1).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from reproduce import (
    AGENTS,
    COLOURS,
    LABELS,
    PAPER_TASKS,
    load_rows,
    not_counted,
    replace_section,
)

from awmctl.aggregate import (
    difference,
    interquartile_mean,
    mean_score,
    probability_of_improvement,
    stratified_bootstrap,
)
from awmctl.plots import pyplot

HORIZON = 100
#: every world model awmctl has, and the simulator (the comparison's methods)
WORLD_MODELS = (
    "awm-transformer",
    "awm-lstm",
    "awm-gru",
    "awm-rnn",
    "awm-ssm",
    "hwm-transformer",
    "markov-mlp",
    "simulator",
)
REFERENCE = "awm-transformer"
#: the rule above, applied to the 3-seed grid (tests/test_power.py recomputes it from the rows)
COUNTED = ("cancer", "hiv-treatment", "mould-fungicide", "bacteria")
SEEDS = 10
GRID = Path("benchmarks/results/reproduce")
CONVERGED = Path("benchmarks/results/reproduce-converged")
DEFAULTS = Path("benchmarks/results/defaults")


def label(method: str) -> str:
    return LABELS.get(method, method)


def which_tasks_count(rows: list[dict], horizon: int = HORIZON) -> tuple[list[str], dict]:
    """The rule of the module's docstring (:func:`reproduce.not_counted`) on the grid's rows: the
    counted tasks, and the others with the reason."""
    reasons = {t: not_counted(rows, t, horizon) for t in PAPER_TASKS}
    return [t for t, why in reasons.items() if not why], {t: w for t, w in reasons.items() if w}


def score_matrix(
    rows: list[dict], method: str, tasks: tuple[str, ...], seeds: int | None = None
) -> np.ndarray | None:
    """[seeds, tasks] scores of ``method`` at H = 100: the first k seeds of every task, k the
    fewest any task has (or ``seeds``); None when a task has no row."""
    by = {r["task"]: r for r in rows if r["method"] == method and r["horizon"] == HORIZON}
    if any(t not in by for t in tasks):
        return None
    k = min(len(by[t]["scores"]) for t in tasks)
    k = k if seeds is None else min(k, seeds)
    return np.array([by[t]["scores"][:k] for t in tasks], np.float64).T


def matrices(rows: list[dict], tasks=COUNTED) -> dict[str, np.ndarray]:
    found = {m: score_matrix(rows, m, tasks) for m in WORLD_MODELS}
    return {m: s for m, s in found.items() if s is not None and s.shape[0] >= 2}


def interval(i) -> str:
    return f"{i.value:.3f} [{i.low:.3f}, {i.high:.3f}]"


def aggregates(scores: dict[str, np.ndarray]) -> dict[str, dict]:
    """Per method: IQM and mean with stratified bootstrap intervals, and P(reference > method)."""
    found = {}
    for method, s in scores.items():
        entry = {
            "seeds": s.shape[0],
            "iqm": stratified_bootstrap({method: s}, interquartile_mean),
            "mean": stratified_bootstrap({method: s}, mean_score),
        }
        if method != REFERENCE and REFERENCE in scores:
            entry["improvement"] = stratified_bootstrap(
                {REFERENCE: scores[REFERENCE], method: s}, probability_of_improvement
            )
        found[method] = entry
    return found


def improvement_verdict(i) -> str:
    """The rule for P(X > Y): better when the whole interval is above one half, worse when below,
    otherwise not resolved."""
    return "better" if i.low > 0.5 else "worse" if i.high < 0.5 else "not resolved"


def aggregate_table(found: dict[str, dict], tasks=COUNTED) -> str:
    header = (
        f"| method | seeds per task | IQM [95% CI] | mean [95% CI] | "
        f"P({label(REFERENCE)} > method) [95% CI] | verdict |"
    )
    lines = [
        header,
        "|---|---|---|---|---|---|",
    ]
    for method in sorted(found, key=lambda m: -found[m]["iqm"].value):
        e = found[method]
        poi = e.get("improvement")
        lines.append(
            f"| {label(method)} | {e['seeds']} | {interval(e['iqm'])} | {interval(e['mean'])} | "
            + (f"{interval(poi)} | {improvement_verdict(poi)} |" if poi else "(reference) | |")
        )
    return "\n".join(lines) + (
        f"\n\nOver {len(tasks)} tasks ({', '.join(tasks)}), H = {HORIZON}; stratified bootstrap "
        "(2000 samples, seeds resampled within each task)."
    )


def difference_verdict(d) -> str:
    return "higher" if d.low > 0 else "lower" if d.high < 0 else "not resolved"


def differences(rows: list[dict], tasks=PAPER_TASKS) -> list[dict]:
    """Per task and world model: the reference's mean score minus the model's, Welch's interval
    and test over seeds."""
    by = {(r["task"], r["method"]): r for r in rows if r["horizon"] == HORIZON}
    found = []
    for task in tasks:
        mine = by.get((task, REFERENCE))
        if mine is None:
            continue
        for method in WORLD_MODELS[1:]:
            other = by.get((task, method))
            if other is None or len(mine["scores"]) < 2 or len(other["scores"]) < 2:
                continue
            d = difference(mine["scores"], other["scores"])
            found.append(
                {
                    "task": task,
                    "method": method,
                    "seeds": (len(mine["scores"]), len(other["scores"])),
                    "difference": d,
                    "verdict": difference_verdict(d),
                }
            )
    return found


def difference_table(found: list[dict]) -> str:
    lines = [
        f"| task | {label(REFERENCE)} minus | seeds | difference ± 95% (Welch) | p | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for f in found:
        d = f["difference"]
        counted = "" if f["task"] in COUNTED else " (not counted)"
        lines.append(
            f"| {f['task']}{counted} | {label(f['method'])} | {f['seeds'][0]} / {f['seeds'][1]} | "
            f"{d.diff:+.4f} ± {d.half_width:.4f} | {d.p_value:.3f} | {f['verdict']} |"
        )
    return "\n".join(lines)


def converged_rows() -> list[dict]:
    """H = 100 rows at the converged defaults: reproduce.py's (--preset converged), and where it
    has none for a (task, method), the defaults protocol's row of the same command
    (benchmarks/defaults.py: `optimize-policy --online --model M --task T --horizon 100` at the
    defaults, 3 seeds)."""
    rows = load_rows(CONVERGED) if (CONVERGED / "rows").exists() else []
    have = {(r["task"], r["method"]) for r in rows}
    for path in sorted((DEFAULTS / "rows").glob(f"*-h{HORIZON}-*-converged.json")):
        r = json.loads(path.read_text())
        wanted = r["method"] in WORLD_MODELS and r["task"] in PAPER_TASKS
        if wanted and (r["task"], r["method"]) not in have:
            rows.append({**r, "variant": "clean", "source_protocol": "defaults"})
    return [r for r in rows if r["horizon"] == HORIZON and r.get("variant", "clean") == "clean"]


def interval_figure(found: dict[str, dict], path: Path, title: str) -> None:
    plt = pyplot()
    order = sorted(found, key=lambda m: found[m]["iqm"].value)
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.45 * len(order) + 1.4), dpi=110, sharey=True)
    for ax, key in zip(axes, ("iqm", "mean")):
        for y, method in enumerate(order):
            i = found[method][key]
            ax.plot(
                [i.low, i.high],
                [y, y],
                lw=6,
                alpha=0.6,
                solid_capstyle="butt",
                color=COLOURS[method],
            )
            ax.plot([i.value], [y], "k|", ms=12)
        ax.set_yticks(range(len(order)), [f"{label(m)} ({found[m]['seeds']})" for m in order])
        ax.set_xlabel(f"{'IQM' if key == 'iqm' else 'mean'} normalised score (95% CI)")
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def improvement_figure(found: dict[str, dict], path: Path, title: str) -> None:
    plt = pyplot()
    order = [m for m in found if "improvement" in found[m]]
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(order) + 1.4), dpi=110)
    for y, method in enumerate(order):
        i = found[method]["improvement"]
        ax.plot(
            [i.low, i.high], [y, y], lw=6, alpha=0.6, solid_capstyle="butt", color=COLOURS[method]
        )
        ax.plot([i.value], [y], "k|", ms=12)
    ax.axvline(0.5, color="grey", ls="--", lw=0.8)
    ax.set_yticks(range(len(order)), [label(m) for m in order])
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"P({label(REFERENCE)} > method), 95% CI")
    ax.set_title(title, fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def ordering(found: dict[str, dict]) -> list[str]:
    return sorted(found, key=lambda m: -found[m]["iqm"].value)


# ------------------------------------------------------------------------- the summary's claims


def claims(grid: list[dict], converged: list[dict]) -> list[dict]:
    """The page's summary, sentence by sentence: each claim's statistic recomputed from the rows,
    its verdict by the claim's rule, and the sentence made from both (tests/test_power.py checks
    the page against this)."""
    out = []
    found = aggregates(matrices(grid))
    if REFERENCE in found:
        verdicts = {
            m: improvement_verdict(e["improvement"]) for m, e in found.items() if m != REFERENCE
        }
        better = [label(m) for m, v in verdicts.items() if v == "better"]
        worse = [label(m) for m, v in verdicts.items() if v == "worse"]
        unresolved = [label(m) for m, v in verdicts.items() if v == "not resolved"]
        seeds = min(e["seeds"] for e in found.values())
        out.append(
            {
                "claim": "Transformer AWMs give better policies than the other world models "
                "(H = 100, the counted tasks, the paper's settings).",
                "rule": "P(transformer AWM > model) with its 95% stratified bootstrap interval: "
                "better if the interval is above 1/2, worse if below, otherwise not resolved.",
                "verdict": (
                    f"Better than {', '.join(better) or 'none'}; worse than "
                    f"{', '.join(worse) or 'none'}; not resolved against "
                    f"{', '.join(unresolved) or 'none'} (at least {seeds} seeds per task)."
                ),
                "numbers": "; ".join(
                    f"{label(m)} {interval(found[m]['improvement'])}" for m in verdicts
                ),
            }
        )
        top = ordering(found)[0]
        out.append(
            {
                "claim": "The transformer AWM has the highest aggregate score.",
                "rule": "The method with the highest IQM; tied if another method's IQM interval "
                "reaches its point estimate.",
                "verdict": (
                    f"{label(top)} has the highest IQM"
                    + (
                        "; tied with "
                        + ", ".join(
                            label(m)
                            for m in found
                            if m != top and found[m]["iqm"].high >= found[top]["iqm"].value
                        )
                        if any(
                            found[m]["iqm"].high >= found[top]["iqm"].value
                            for m in found
                            if m != top
                        )
                        else ""
                    )
                    + "."
                ),
                "numbers": "; ".join(f"{label(m)} {interval(found[m]['iqm'])}" for m in found),
            }
        )
    diffs = differences(grid, COUNTED)
    if diffs:
        counts = {v: sum(1 for d in diffs if d["verdict"] == v) for v in ("higher", "lower")}
        out.append(
            {
                "claim": "Per task, the transformer AWM scores higher than each other world model.",
                "rule": "Welch's 95% interval of the difference of means over seeds: higher or "
                "lower when it excludes 0, otherwise not resolved.",
                "verdict": (
                    f"Higher in {counts['higher']}, lower in {counts['lower']}, not resolved in "
                    f"{len(diffs) - counts['higher'] - counts['lower']} of {len(diffs)} "
                    "(task, model) pairs."
                ),
                "numbers": "; ".join(
                    f"{d['task']} vs {d['method']} {d['difference'].diff:+.3f}"
                    for d in diffs
                    if d["verdict"] != "not resolved"
                )
                or "none resolved",
            }
        )
    out += [c for c in (baseline_claim(grid), growth_claim()) if c is not None]
    out += figure2_claims()
    order = ordering_claim(matrices(grid), matrices(converged))
    if order is not None:
        out.append(order)
    return out


def pairwise_verdicts(scores: dict[str, np.ndarray]) -> dict[tuple[str, str], str]:
    """For every pair of methods (a, b): "a" or "b" when the stratified bootstrap interval of
    P(a > b) lies above or below 1/2, otherwise "not resolved"."""
    methods = sorted(scores)
    found = {}
    for i, a in enumerate(methods):
        for b in methods[i + 1 :]:
            poi = stratified_bootstrap({a: scores[a], b: scores[b]}, probability_of_improvement)
            found[(a, b)] = "a" if poi.low > 0.5 else "b" if poi.high < 0.5 else "not resolved"
    return found


def ordering_claim(paper: dict[str, np.ndarray], converged: dict[str, np.ndarray]) -> dict | None:
    """Does removing the budget limit change which world model beats which? Every pair of methods
    with rows at both presets, resolved or not at each."""
    common = {m: paper[m] for m in paper if m in converged}
    if len(common) < 2:
        return None
    before = pairwise_verdicts(common)
    after = pairwise_verdicts({m: converged[m] for m in common})

    def said(pair, verdict):
        a, b = (label(m) for m in pair)
        return f"{a} > {b}" if verdict == "a" else f"{b} > {a}" if verdict == "b" else "tie"

    reversed_, kept, newly, lost = [], [], [], []
    for pair, was in before.items():
        now = after[pair]
        if was != "not resolved" and now != "not resolved":
            (kept if was == now else reversed_).append(pair)
        elif now != "not resolved":
            newly.append(pair)
        elif was != "not resolved":
            lost.append(pair)
    verdict = (
        f"{'The order changes' if reversed_ else 'No pair reverses'}: of {len(before)} pairs of "
        f"{len(common)} methods, {len(kept)} resolved the same way at both presets, "
        f"{len(reversed_)} reversed, {len(newly)} resolved only at the converged defaults, "
        f"{len(lost)} only at the paper's settings."
    )
    return {
        "claim": "Without the policy budget's limit (the converged defaults), the world models "
        "keep their order.",
        "rule": "Every pair of methods with rows at both presets, by the interval of P(a > b) at "
        "each (above or below 1/2, or not resolved); the order changes if a pair resolved at "
        "both reverses.",
        "verdict": verdict,
        "numbers": "; ".join(
            f"{said(pair, before[pair])} -> {said(pair, after[pair])}" for pair in before
        ),
    }


def baseline_claim(grid: list[dict]) -> dict | None:
    """BPO through the transformer AWM against the model-free baselines, per counted task."""
    by = {(r["task"], r["method"]): r for r in grid if r["horizon"] == HORIZON}
    pairs = [
        (task, agent, difference(by[(task, REFERENCE)]["scores"], by[(task, agent)]["scores"]))
        for task in COUNTED
        for agent in AGENTS
        if (task, REFERENCE) in by and (task, agent) in by
    ]
    if not pairs:
        return None
    verdicts = [(t, a, d, difference_verdict(d)) for t, a, d in pairs]
    lower = [f"{t} vs {label(a)} {d.diff:+.3f}" for t, a, d, v in verdicts if v == "lower"]
    return {
        "claim": "Backpropagation through a world model beats the model-free baselines (SAC, "
        "Online-DT) at H = 100.",
        "rule": "Welch's 95% interval of the transformer AWM's score minus the baseline's, per "
        "counted task: higher or lower when it excludes 0.",
        "verdict": (
            f"Higher in {sum(v == 'higher' for *_, v in verdicts)}, lower in "
            f"{sum(v == 'lower' for *_, v in verdicts)}, not resolved in "
            f"{sum(v == 'not resolved' for *_, v in verdicts)} of {len(verdicts)} (task, "
            "baseline) pairs."
        ),
        "numbers": "lower: " + ("; ".join(lower) or "none"),
    }


def growth_claim() -> dict | None:
    """The better-fitting form of every model's gradient-norm curve (benchmarks/growth_rates.py)."""
    from growth_rates import TABLES, curves, verdict

    from awmctl.analysis import fit_bound_forms

    found = {
        (task, model): verdict(fit_bound_forms(h, n))
        for task, path in TABLES.items()
        if path.exists()
        for model, (h, n) in curves(path).items()
    }
    if not found:
        return None
    grows = [f"{m} on {t}" for (t, m), v in found.items() if v in ("exponential growth", "cubic")]
    return {
        "claim": "Gradient norms grow as O(eta^H) through recurrent models and the simulator, "
        "and no faster than O(H^3) through self-attention.",
        "rule": "Per (task, model), the form (exponential or cubic polynomial) with the smaller "
        "leave-one-out error on the log scale; growth when it rises with H.",
        "verdict": (
            f"Growth in {len(grows)} of {len(found)} curves ({', '.join(grows) or 'none'}); "
            "every other curve decays or stays flat, whatever the architecture."
        ),
        "numbers": "; ".join(f"{m} on {t}: {v}" for (t, m), v in found.items()),
    }


def figure2_claims(path: Path = Path("benchmarks/results/figure2.jsonl")) -> list[dict]:
    """Figure 2 (the double pendulum's first action, 10 seeds paired by starting action): the
    transformer AWM against the simulator and against the HWM at H = 100."""
    from scipy.stats import wilcoxon

    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    by = {(r["horizon"], r["method"]): np.asarray(r["returns"]) for r in rows}
    out = []
    for other, claim in (
        (
            "simulator",
            (
                "On the double pendulum at H = 100, BPO through the transformer AWM finds "
                "better first actions than through the simulator's own gradient."
            ),
        ),
        (
            "hwm-transformer",
            (
                "On the double pendulum at H = 100, the transformer AWM finds better "
                "first actions than the history (HWM) transformer."
            ),
        ),
    ):
        if (100, REFERENCE) not in by or (100, other) not in by:
            continue
        mine, theirs = by[(100, REFERENCE)], by[(100, other)]
        p = float(wilcoxon(mine, theirs).pvalue)
        wins, median = int((mine > theirs).sum()), float(np.median(mine - theirs))
        verdict = "better" if p < 0.05 and median > 0 else "worse" if p < 0.05 else "not resolved"
        out.append(
            {
                "claim": claim,
                "rule": "Two-sided Wilcoxon signed-rank test over the 10 seeds paired by starting "
                "action: better or worse at p < 0.05 by the sign of the median difference.",
                "verdict": f"{verdict.capitalize()} (better on {wins} of {mine.size} seeds).",
                "numbers": f"median difference {median:+.1f}, p = {p:.3f}",
            }
        )
    return out


def claims_table(found: list[dict]) -> str:
    lines = ["| claim | verdict | numbers | rule |", "|---|---|---|---|"]
    for c in found:
        lines.append(f"| {c['claim']} | **{c['verdict']}** | {c['numbers']} | {c['rule']} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ report


def report(doc: Path, figures: Path) -> dict[str, str]:
    grid = load_rows(GRID)
    converged = converged_rows()
    counted, excluded = which_tasks_count(grid)
    if tuple(counted) != COUNTED:
        raise SystemExit(f"the rule now counts {counted}, the page says {COUNTED}: decide again")
    sections: dict[str, str] = {}
    for name, rows, title in (
        ("aggregate", grid, "the paper's settings"),
        ("converged", converged, "the converged defaults"),
    ):
        found = aggregates(matrices(rows))
        if not found:
            sections[name] = "(no rows yet)"
            continue
        interval_figure(found, figures / f"power_{name}.png", f"H = {HORIZON}, {title}")
        improvement_figure(found, figures / f"power_{name}_improvement.png", title)
        sections[name] = (
            aggregate_table(found)
            + f"\n\n![Aggregates, {title}](figures/power_{name}.png)\n"
            + f"![Probability of improvement, {title}](figures/power_{name}_improvement.png)"
        )
    excluded_text = "; ".join(f"{t} ({why})" for t, why in excluded.items())
    sections["differences"] = (
        difference_table(differences(grid))
        + f"\n\nCounted: {', '.join(counted)}. Reported, not counted: {excluded_text}."
    )
    sections["claims"] = claims_table(claims(grid, converged))
    for name, body in sections.items():
        replace_section(doc, name, body, tag="power")
    return sections


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--doc", default="docs/results.md")
    parser.add_argument("--figures", default="docs/figures")
    args = parser.parse_args()
    for name, body in report(Path(args.doc), Path(args.figures)).items():
        print(f"## {name}\n{body}\n", file=sys.stderr)


if __name__ == "__main__":
    main()
