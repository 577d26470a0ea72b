"""The theory's growth rates, measured: the first action's gradient norm against the horizon
(2 to 200 steps) through every world model awmctl has and the simulator, on CANCER and the double
pendulum, with the forms of the paper's two bounds fitted to each curve -- exponential, O(eta^H),
for recurrent models, and a cubic polynomial, O(H^3), for self-attention -- and the form that
predicts held-out horizons better (`awmctl.analysis.fit_bound_forms`).

Run:  bash benchmarks/backbone_grad_norm.sh                          # CANCER's norms
      TASK=double-pendulum bash benchmarks/backbone_grad_norm.sh     # the pendulum's
      .venv/bin/python benchmarks/growth_rates.py --doc docs/results.md
          # the table (docs/results.md, section 9) and docs/figures/growth_rates.png

The norms are the median over 50 random action sequences of ||d s_H / d a_1|| (the `state` rows
of the CSVs), the quantity the paper bounds.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
from reproduce import replace_section  # benchmarks/, on the path when this script runs

from awmctl.analysis import fit_bound_forms
from awmctl.plots import pyplot

TABLES = {
    "cancer": Path("benchmarks/results/backbone_grad_norm.csv"),
    "double-pendulum": Path("benchmarks/results/backbone_grad_norm_double_pendulum.csv"),
}
#: the paper's families first: the simulator, the Markovian and history models, then every AWM
ORDER = (
    "simulator",
    "markov-mlp",
    "hwm-transformer",
    "awm-transformer",
    "awm-ssm",
    "awm-lstm",
    "awm-gru",
    "awm-rnn",
)


def curves(path: Path, quantity: str = "state") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """model -> (horizons, median norms) of one task's table."""
    with open(path) as f:
        rows = [r for r in csv.DictReader(f) if r["quantity"] == quantity]
    models = sorted(
        {r["model"] for r in rows},
        key=lambda m: (m not in ORDER, ORDER.index(m) if m in ORDER else 0, m),
    )
    found = {}
    for model in models:
        mine = sorted((int(r["horizon"]), float(r["median"])) for r in rows if r["model"] == model)
        found[model] = (np.array([h for h, _ in mine], np.float64), np.array([n for _, n in mine]))
    return found


def verdict(fit: dict) -> str:
    """The curve in words: flat when the exponential fit's eta is within 0.5% of 1 per step (a
    factor under 2.7 over 200 steps, whichever form fits better); otherwise the better form, and
    whether it grows or decays."""
    if fit["better"] is None:
        return "too few positive norms"
    if abs(fit["eta"] - 1.0) < 0.005:
        return "flat"
    if fit["better"] == "exponential":
        return "exponential growth" if fit["eta"] > 1 else "exponential decay"
    c3, c2, c1, _ = fit["cubic"]
    return "cubic" if c3 > 0 else "polynomial of degree below 3" if c2 > 0 or c1 > 0 else "flat"


def table(fits: dict[str, dict[str, dict]]) -> str:
    header = (
        "| task | model | H=2 | H=200 | eta per step (exponential fit) | cubic fit: c3 | held-out "
        "log10 error: exponential / cubic | AIC: exponential / cubic | better form |"
    )
    lines = [
        header,
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for task, by_model in fits.items():
        for model, (h, n, fit) in by_model.items():
            if fit["better"] is None:
                lines.append(
                    f"| {task} | {model} | {n[0]:.3g} | {n[-1]:.3g} | | | | | {verdict(fit)} |"
                )
                continue
            lines.append(
                f"| {task} | {model} | {n[0]:.3g} | {n[-1]:.3g} | {fit['eta']:.4f} | "
                f"{fit['cubic'][0]:.3g} | {fit['exponential_heldout']:.3f} / "
                f"{fit['cubic_heldout']:.3f} | {fit['exponential_aic']:.1f} / "
                f"{fit['cubic_aic']:.1f} | {verdict(fit)} |"
            )
    return "\n".join(lines)


def figure(fits: dict[str, dict[str, tuple]], path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, len(fits), figsize=(6.0 * len(fits), 4.2), dpi=110, squeeze=False)
    for ax, (task, by_model) in zip(axes[0], fits.items()):
        for model, (h, n, fit) in by_model.items():
            shown = n > 0
            (line,) = ax.plot(
                h[shown], n[shown], marker="o", ms=3, lw=1.4, label=f"{model}: {verdict(fit)}"
            )
            if fit["better"] == "exponential":  # the fitted form, dashed, in the curve's colour
                grid = np.linspace(h.min(), h.max(), 100)
                scale = np.exp(np.mean(np.log(n[shown]) - h[shown] * np.log(fit["eta"])))
                ax.plot(grid, scale * fit["eta"] ** grid, ls="--", lw=0.8, color=line.get_color())
            elif fit["better"] == "cubic":
                grid = np.linspace(h.min(), h.max(), 100)
                ax.plot(
                    grid, np.polyval(fit["cubic"], grid), ls="--", lw=0.8, color=line.get_color()
                )
        ax.set_yscale("log")
        ax.set_xlabel("horizon H (steps)")
        ax.set_ylabel("median ||d s_H / d a_1||")
        ax.set_title(f"{task}: measured (markers) and the better fitted form (dashed)", fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=6.5)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--doc", default=None, help="Rewrite the marked table of this file.")
    parser.add_argument("--figure", default="docs/figures/growth_rates.png")
    args = parser.parse_args()
    fits = {
        task: {m: (h, n, fit_bound_forms(h, n)) for m, (h, n) in curves(path).items()}
        for task, path in TABLES.items()
    }
    figure(fits, Path(args.figure))
    text = table(fits)
    if args.doc:
        replace_section(
            Path(args.doc),
            "growth",
            text + f"\n\n![Growth rates]({Path(args.figure).relative_to('docs')})",
            tag="power",
        )
    print(text, file=sys.stderr)


if __name__ == "__main__":
    main()
