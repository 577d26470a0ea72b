"""``awmctl show``: what run directories hold, one in detail or several side by side."""

from __future__ import annotations

import fcntl
import inspect
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.markup import escape
from rich.table import Table

from awmctl import artifacts, plots
from awmctl.cli.common import JsonOpt, emit_json, err_console, handle_errors, summary_table
from awmctl.cli.config_file import as_toml
from awmctl.cli.reruns import option_flags, recorded
from awmctl.errors import BadInputError


def making_commands() -> dict[str, Any]:
    """Each kind of directory -> the command that makes it (imported when --as-config asks)."""
    from awmctl.cli import collect, fit_model, grad_norm, landscape, optimize_policy

    return {
        "dataset": collect.collect_command,
        "model": fit_model.fit_model_command,
        "policy": optimize_policy.optimize_policy_command,
        "grad-norm": grad_norm.grad_norm_command,
        "landscape": landscape.landscape_command,
    }


#: the learning curve drawn for each kind of run, the first of these its metrics have
CURVES = ("eval/eval_return", "eval/return", "val/loss", "train/loss")
#: the final numbers a table of several runs shows, the first ones each run has
HEADLINE = ("score", "final_return_mean", "best_return_mean", "val_mse", "episodes", "return_mean")


def lock_held(out: Path) -> bool:
    """Whether a process is writing ``out`` now (it holds the ``.OUT.lock`` flock)."""
    lock = out.with_name(f".{out.name}.lock")
    if not lock.is_file():
        return False
    with open(lock) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def inspect_dir(given: Path) -> dict[str, Any]:
    """One directory awmctl wrote (or its unfinished ``.partial`` run): what it is, its state,
    its options and final numbers. :class:`BadInputError` for anything else."""
    out = given.with_name(given.name.removesuffix(".partial"))
    partial = out.with_name(out.name + ".partial")
    where = (
        out
        if (out / "meta.json").is_file()
        else partial
        if (partial / "meta.json").is_file()
        else given
    )
    if not (where / "meta.json").is_file():
        raise BadInputError(
            f"{given} is not a directory awmctl wrote (no meta.json in it or in {partial.name})"
        )
    try:
        meta = json.loads((where / "meta.json").read_text())
    except (OSError, ValueError) as err:
        raise BadInputError(f"{where}/meta.json is not readable JSON ({err})") from None
    if not isinstance(meta, dict) or "kind" not in meta:
        raise BadInputError(f"{where}/meta.json was not written by awmctl (it names no kind)")
    # a field of the wrong kind (a string where a table belongs) reads as missing, not as a crash
    table = lambda value: value if isinstance(value, dict) else {}
    meta = {
        k: table(v) if k in ("task", "config", "environment", "summary", "options") else v
        for k, v in meta.items()
    }
    metrics = artifacts.read_metrics(where)
    if meta.get("status") == "complete":
        state = "complete"
    else:
        last = metrics[-1]["step"] if metrics else 0
        state = f"{'running' if lock_held(out) else 'stopped'} at step {last}"
    task = meta.get("task") or table((meta.get("config") or {}).get("task"))
    model = meta.get("model") or (meta.get("config") or {}).get("model")
    what = meta.get("agent") or (model.get("name") if isinstance(model, dict) else model)
    env = meta.get("environment", {})
    return {
        "dir": str(where),
        "kind": meta["kind"],
        "state": state,
        "task": task.get("name"),
        "horizon": task.get("horizon"),
        "model": what,
        "command": " ".join(["awmctl", *meta.get("command", [])[1:]])
        if meta.get("command")
        else None,
        "created": meta.get("created"),
        "options": meta.get("options") or {},
        "config": meta.get("config"),
        "versions": env.get("versions"),
        "commit": env.get("awmctl_commit"),
        "summary": meta.get("summary") or {},
        "metrics": metrics,
    }


def curve(run: dict[str, Any]) -> tuple[str, list[int], np.ndarray] | None:
    """The run's learning curve: (metric, steps, values[points, seeds])."""
    for key in CURVES:
        points = [(r["step"], r[key]) for r in run["metrics"] if key in r]
        if points:
            steps, values = zip(*points)
            return key, list(steps), np.asarray([np.atleast_1d(v) for v in values], np.float64)
    return None


def differing(runs: list[dict[str, Any]]) -> list[str]:
    """The options whose values are not the same in every run."""
    names = sorted({name for run in runs for name in run["options"]})
    return [n for n in names if len({json.dumps(run["options"].get(n)) for run in runs}) > 1]


def headline(run: dict[str, Any]) -> tuple[str, Any] | None:
    return next(((k, run["summary"][k]) for k in HEADLINE if k in run["summary"]), None)


def show_one(run: dict[str, Any]) -> None:
    about = {
        "directory": run["dir"],
        "kind": run["kind"],
        "state": run["state"],
        "task": run["task"],
        "horizon": run["horizon"],
        "model / agent": run["model"],
        "created": run["created"],
        "awmctl": (run["versions"] or {}).get("awmctl"),
        "commit": run["commit"],
        "command": run["command"],
    }
    err_console.print(
        summary_table(
            escape(f"{run['dir']}"), {k: escape(str(v)) for k, v in about.items() if v is not None}
        )
    )
    if run["options"]:
        err_console.print(
            summary_table("Options", {k: escape(json.dumps(v)) for k, v in run["options"].items()})
        )
    if run["summary"]:
        err_console.print(summary_table("Final numbers", run["summary"]))


def show_many(runs: list[dict[str, Any]]) -> None:
    varying = differing(runs)
    table = Table(title=f"{len(runs)} runs", title_justify="left")
    for column in (
        "run",
        "kind",
        "state",
        "task",
        "H",
        *[f"--{v.replace('_', '-')}" for v in varying],
        "result",
    ):
        table.add_column(column, overflow="fold")
    for run in runs:
        top = headline(run)
        result = (
            ""
            if top is None
            else f"{top[0]} {top[1]:.4g}"
            if isinstance(top[1], float)
            else f"{top[0]} {top[1]}"
        )
        table.add_row(
            escape(Path(run["dir"]).name),
            run["kind"],
            run["state"],
            escape(str(run["task"])),
            str(run["horizon"]),
            *[escape(json.dumps(run["options"].get(v))) for v in varying],
            result,
        )
    err_console.print(table)


@handle_errors
def show_command(
    runs: Annotated[
        list[Path],
        typer.Argument(
            help="Directories awmctl wrote (a run, a dataset, a model, ...).", show_default=False
        ),
    ],
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            help="Overlay the runs' learning curves (mean and 95% "
            "interval over seeds) in this PNG.",
        ),
    ] = None,
    as_config: Annotated[
        bool,
        typer.Option(
            "--as-config",
            metavar="",
            help="Print the one run's options as a --config "
            "file (TOML) on stdout, to make it again.",
        ),
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Say what run directories hold, and compare runs.

    One directory in detail (command, task, model, options, versions, state, final numbers);
    several as one table whose columns are the options that differ."""
    found = [inspect_dir(path) for path in runs]
    if as_config:
        if len(found) != 1:
            raise BadInputError(
                f"--as-config prints one run's options; {len(found)} directories were given"
            )
        (run,) = found
        if not run["options"]:
            raise BadInputError(
                f"{run['dir']} records no options (made by an awmctl before 0.1.0's option "
                "records); its command line is in meta.json"
            )
        command = making_commands()[run["kind"]]
        defaults = {
            name: recorded(p.default) for name, p in inspect.signature(command).parameters.items()
        }
        sys.stdout.write(as_toml(run["options"], option_flags(command), defaults))
        return
    if plot is not None:
        if not Path(plot).absolute().parent.is_dir():
            raise BadInputError(
                f"--plot {plot}: its directory {Path(plot).absolute().parent} does not exist; "
                "make it first or plot elsewhere"
            )
        drawn = {Path(run["dir"]).name: c for run in found if (c := curve(run)) is not None}
        if not drawn:
            raise BadInputError(
                "none of these directories has a learning curve to plot (datasets and "
                "landscapes have none)"
            )
        metrics = {key for key, _, _ in drawn.values()}
        plots.compare_runs(
            {label: (steps, values) for label, (_, steps, values) in drawn.items()},
            plot,
            title=f"{len(drawn)} run(s)",
            ylabel=" / ".join(sorted(metrics)),
        )
    if json_out:
        emit_json(
            {
                "runs": [{k: v for k, v in run.items() if k != "metrics"} for run in found],
                "differing_options": differing(found),
                **({"plot": str(plot)} if plot is not None else {}),
            }
        )
    elif len(found) == 1:
        show_one(found[0])
    else:
        show_many(found)
    if plot is not None:
        err_console.print(f"Learning curves -> {escape(str(plot))}")
