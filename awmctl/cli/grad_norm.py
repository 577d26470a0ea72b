"""``awmctl grad-norm``: how the first action's gradient grows with the horizon, per model."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import equinox as eqx
import jax
import numpy as np
import typer

from awmctl import analysis, artifacts, plots
from awmctl.cli.common import (
    TASK_HELP,
    AllowTaskChangeOpt,
    JsonOpt,
    OutOpt,
    OverwriteOpt,
    SeedOpt,
    TaskParamOpt,
    check_input_tasks,
    complete_task,
    emit_json,
    err_console,
    handle_errors,
)
from awmctl.cli.config_file import ConfigOpt
from awmctl.cli.progress import progress_bar
from awmctl.cli.reruns import idempotent
from awmctl.cli.subjects import Subject, check_contexts, load_subjects
from awmctl.errors import BadInputError
from awmctl.tasks import Task, parse_task_params, task_record, with_horizon

GRAD_NORM_KIND = "grad-norm"
QUANTITIES = {"state": "||d s_H / d a_1||", "return": "||d R / d a_1||"}


def parse_horizons(text: str) -> list[int]:
    try:
        horizons = sorted({int(h) for h in text.split(",") if h.strip()})
    except ValueError:
        raise BadInputError(
            f"--horizons takes comma-separated integers like 10,20,50,100, got {text!r}"
        ) from None
    if not horizons or horizons[0] < 1:
        raise BadInputError(f"--horizons must be integers >= 1, got {text!r}")
    return horizons


@handle_errors
@idempotent
def grad_norm_command(
    model: Annotated[
        list[str],
        typer.Option(
            "--model",
            metavar="DIR|simulator (repeatable)",
            help="A fitted model directory or 'simulator' (repeatable).",
        ),
    ],
    out: OutOpt,
    horizons: Annotated[
        str, typer.Option("--horizons", help="Comma-separated horizons H.")
    ] = "10,20,50,100",
    samples: Annotated[
        int,
        typer.Option("--samples", help="Random action sequences (uniform in [-1, 1]) per horizon."),
    ] = 50,
    task: Annotated[
        str | None,
        typer.Option(
            "--task",
            help="Task (required when every --model is simulator); " + TASK_HELP,
            autocompletion=complete_task,
        ),
    ] = None,
    base_horizon: Annotated[
        int | None,
        typer.Option(
            "--base-horizon",
            help=(
                "(simulator only) Build the task at this H to fix its step length (Myriad: dt = "
                "T/H); fitted models bring their own."
            ),
        ),
    ] = None,
    task_param: TaskParamOpt = None,
    seed: SeedOpt = 0,
    overwrite: OverwriteOpt = False,
    json_out: JsonOpt = False,
    config_file: ConfigOpt = None,
    allow_task_change: AllowTaskChangeOpt = False,
) -> None:
    """Norm of the gradient of the imagined final state and return w.r.t. the first action.

    For every model and horizon H: over --samples random action sequences from the task's initial
    state, ||d s_H / d a_1|| (Frobenius norm of the Jacobian) and ||d R / d a_1||, through the
    model's own imagination, one compiled call per (model, H). Horizons keep the task's step
    length dt. Writes grad_norm.png (log scale, median with a 10-90% band), grad_norm.csv, the
    norms as arrays, and for each model the fitted growth: exponential (log-norm linear in H)
    against polynomial (log-norm linear in log H).
    """
    check_input_tasks(list(model), allow_task_change)
    hs = parse_horizons(horizons)
    if samples < 1:
        raise BadInputError(f"--samples must be at least 1, got {samples}")
    base, subjects, obs0 = load_subjects(model, task, base_horizon, parse_task_params(task_param))
    check_contexts(subjects, hs[-1])
    artifacts.check_output_dir(out, overwrite)

    with progress_bar(f"grad-norm on {base.name}", len(subjects) * len(hs)) as update:
        norms = _norms(subjects, base, obs0, hs, samples, seed, update)
    if not np.all(np.isfinite(norms)):
        bad = sorted({subjects[i].label for i in np.argwhere(~np.isfinite(norms))[:, 0]})
        err_console.print(
            f"[yellow]Warning:[/] non-finite gradients through {', '.join(bad)} (kept as NaN/inf "
            "in the output)"
        )
    results = {
        s.label: analysis.growth_summaries(norms[i], hs, tuple(QUANTITIES))
        for i, s in enumerate(subjects)
    }
    summary = {
        "out": str(out),
        "task": base.name,
        "dt": base.dt,
        "horizons": hs,
        "samples": samples,
        "seed": seed,
        "models": results,
    }
    with artifacts.output_dir(out, overwrite) as output:
        leaves = output.save_arrays({"norms": norms, "horizons": np.asarray(hs)})
        _write_csv(output.path / "grad_norm.csv", subjects, hs, results)
        curves = {
            s.label: {QUANTITIES[q]: _band(results[s.label][q], hs) for q in QUANTITIES}
            for s in subjects
        }
        plots.norm_vs_horizon(
            hs,
            curves,
            output.path / "grad_norm.png",
            f"{base.name}: first-action gradient norm (median, 10-90%)",
        )
        output.write_meta(
            GRAD_NORM_KIND,
            task=task_record(base),
            models=[s.record for s in subjects],
            labels=[s.label for s in subjects],
            arrays={"norms": "[model, horizon, (state, return), sample]"},
            summary=summary,
            leaves=leaves,
        )
    err_console.print(_table(results, hs))
    if json_out:
        emit_json(summary)


def _norms(
    subjects: list[Subject],
    base: Task,
    obs0: jax.Array,
    hs: list[int],
    samples: int,
    seed: int,
    update: Callable[[int, str], None],
) -> np.ndarray:
    """``[model, horizon, (state, return), sample]`` first-action gradient norms. One set of
    action sequences per horizon, shared by every model (compared on the same inputs): the first
    H actions of the longest draw, so horizons are nested. Every horizon starts from ``obs0``,
    the first observation of the task the models were fitted on (see load_subjects)."""
    longest = jax.random.uniform(
        jax.random.key(seed), (samples, hs[-1], base.action_size), minval=-1.0, maxval=1.0
    )
    norms = np.zeros((len(subjects), len(hs), 2, samples))
    for i, subject in enumerate(subjects):
        for j, h in enumerate(hs):
            task_h = with_horizon(base, h)
            state_n, return_n = _gradients(subject.at(task_h), task_h, obs0, longest[:, :h])
            norms[i, j] = np.stack([np.asarray(state_n), np.asarray(return_n)])
            update(i * len(hs) + j + 1, f"{subject.label} H={h}")
    return norms


# One compilation per (model, H): the model's arrays are traced, the task is static.
_gradients = eqx.filter_jit(analysis.first_action_gradients)


def _band(per_h: dict[str, dict[str, float]], hs: list[int]) -> dict[str, np.ndarray]:
    return {
        k: np.asarray([per_h[str(h)][s] for h in hs])
        for k, s in (("center", "median"), ("low", "p10"), ("high", "p90"))
    }


def _write_csv(path: Path, subjects, hs, results) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["model", "quantity", "horizon", "mean", "geomean", "median", "p10", "p90"])
        for s in subjects:
            for q in QUANTITIES:
                for h in hs:
                    st = results[s.label][q][str(h)]
                    writer.writerow(
                        [
                            s.label,
                            q,
                            h,
                            *(f"{st[k]:.6g}" for k in ("mean", "geomean", "median", "p10", "p90")),
                        ]
                    )


def _table(results, hs):
    from rich.table import Table

    first, last = hs[0], hs[-1]
    table = Table(
        title="First-action gradient norm (geometric mean over samples)", title_justify="left"
    )
    for column in ("model", "quantity", f"H={first}", f"H={last}", "growth (better fit, R2)"):
        table.add_column(column, justify="right" if column.startswith("H=") else "left")
    for label, entry in results.items():
        for q in QUANTITIES:
            g = entry[f"{q}_growth"]
            growth = (
                "n/a"
                if g["better"] is None
                else (
                    f"exp {g['exponential_rate']:.3g}/step, {g['exponential_r2']:.2f}"
                    if g["better"] == "exponential"
                    else f"H^{g['polynomial_degree']:.2f}, {g['polynomial_r2']:.2f}"
                )
            )
            table.add_row(
                label,
                q,
                f"{entry[q][str(first)]['geomean']:.3g}",
                f"{entry[q][str(last)]['geomean']:.3g}",
                growth,
            )
    return table
