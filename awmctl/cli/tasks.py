"""``awmctl tasks``: list every task with its sizes, duration and default horizon."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from awmctl.cli.common import JsonOpt, emit_json, err_console, handle_errors
from awmctl.tasks import make_task, task_info, task_names


@handle_errors
def tasks_command(json_out: JsonOpt = False) -> None:
    """List every task: state/action sizes, duration T, default horizon H and dt at that H."""
    rows = [_row(name) for name in task_names()]
    if json_out:
        emit_json({"tasks": rows})
        return
    table = _table(rows)
    # The listing is this command's result, so it goes to stdout (pipe it to grep).
    stdout = Console()
    if (
        not stdout.is_terminal
    ):  # a pipe or a file: wide enough that rows do not wrap (a terminal: its width)
        stdout.width = max(stdout.width, 120)
    stdout.print(table)
    err_console.print(
        "Override parameters with --task-param NAME=VALUE; `awmctl tasks --json` lists their "
        "names. Every task also takes distractors=N and noise=SIGMA (the paper's robustness "
        "variants)."
    )


def _row(name: str) -> dict[str, Any]:
    """One task's sizes, duration, horizon and provenance."""
    info = task_info(name)
    # A user's task without a default horizon is described at H = 1 (its sizes do not depend on
    # H; its default horizon shows as "-").
    task = make_task(name, None if info.default_horizon is not None else 1)
    return {
        "name": name,
        "state_size": task.state_size,
        "action_size": task.action_size,
        "obs_size": task.obs_size,
        "duration": task.params.get(
            "T", None if info.default_horizon is None else task.dt * task.horizon
        ),
        "default_horizon": info.default_horizon,
        "dt": task.dt,
        "in_paper": info.in_paper,
        "variant_of": info.variant_of,
        "params": sorted(info.param_names),
        "title": info.title,
        "notes": info.notes,
        "flag": info.flag,
        "source": info.source,
    }


def _table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="awmctl tasks", title_justify="left")
    table.add_column("task", no_wrap=True, min_width=19)
    for col, width in (("state", 5), ("action", 6), ("T", 5), ("H", 4), ("dt", 6)):
        table.add_column(col, justify="right", no_wrap=True, min_width=width)
    table.add_column("paper", no_wrap=True, min_width=7)
    table.add_column("description", overflow="fold")
    for r in rows:
        paper = (
            "yes"
            if r["in_paper"]
            else ("variant" if r["variant_of"] else ("user" if r["source"] else "no"))
        )
        table.add_row(
            r["name"],
            str(r["state_size"]),
            str(r["action_size"]),
            "-" if r["duration"] is None else f"{r['duration']:g}",
            "-" if r["default_horizon"] is None else str(r["default_horizon"]),
            f"{r['dt']:g}",
            paper,
            # escaped: rich would read "[flagged: ...]" (or brackets in a user's title) as markup
            escape(r["title"] + (f" [flagged: {r['flag']}]" if r["flag"] else "")),
        )
    return table
