"""``awmctl landscape``: the return as a function of the first action (1-D) or of a policy's
parameters on a random plane (2-D), through each model next to the simulator."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import jax
import jax.numpy as jnp
import numpy as np
import typer

from awmctl import analysis, artifacts, plots
from awmctl.cli.common import (
    TASK_HELP,
    AllowTaskChangeOpt,
    HorizonOpt,
    JsonOpt,
    OutOpt,
    OverwriteOpt,
    SeedOpt,
    TaskParamOpt,
    check_input_tasks,
    choices,
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
from awmctl.models import SIMULATOR
from awmctl.policies import MarkovPolicy
from awmctl.tasks import Task, parse_task_params, task_record

LANDSCAPE_KIND = "landscape"


#: the policy checkpoint a 2-D landscape is drawn around; the actions after the first in 1-D
WHICH, REST = ("best", "final"), ("zero", "random")


@handle_errors
@idempotent
def landscape_command(
    model: Annotated[
        list[str],
        typer.Option(
            "--model",
            metavar="DIR|simulator (repeatable)",
            help=(
                "A fitted model directory or 'simulator' (repeatable); the simulator is always "
                "added as the reference."
            ),
        ),
    ],
    out: OutOpt,
    task: Annotated[
        str | None,
        typer.Option(
            "--task",
            help="Task (required when every --model is simulator); " + TASK_HELP,
            autocompletion=complete_task,
        ),
    ] = None,
    horizon: HorizonOpt = None,
    task_param: TaskParamOpt = None,
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            help="A policy directory from optimize-policy: draw the 2-D landscape around it.",
        ),
    ] = None,
    which: Annotated[
        str,
        typer.Option("--which", **choices(WHICH), help="[--policy] best or final checkpoint."),
    ] = "best",
    policy_seed: Annotated[
        int,
        typer.Option(
            "--policy-seed",
            help="[--policy] Which seed of a multi-seed policy directory (0-based).",
        ),
    ] = 0,
    points: Annotated[
        int | None,
        typer.Option("--points", help="Grid points per axis (default 201 in 1-D, 25 in 2-D)."),
    ] = None,
    span: Annotated[
        float,
        typer.Option(
            "--span", help="[--policy] The plane covers [-span, span]^2 in filter-normalised units."
        ),
    ] = 1.0,
    rest: Annotated[
        str,
        typer.Option(
            "--rest",
            **choices(REST),
            help=(
                "[1-D] Actions after the first: zero, or random (uniform, drawn once from --seed)."
            ),
        ),
    ] = "zero",
    chunk: Annotated[
        int, typer.Option("--chunk", help="Grid points evaluated per compiled call (memory bound).")
    ] = 256,
    seed: SeedOpt = 0,
    overwrite: OverwriteOpt = False,
    json_out: JsonOpt = False,
    config_file: ConfigOpt = None,
    allow_task_change: AllowTaskChangeOpt = False,
) -> None:
    """Return landscapes through each model and the true simulator, with roughness figures.

    1-D (default): the return and the final state as functions of the first action over
    --points values in [-1, 1]; for each model the total variation and number of local maxima
    of its curve, its distance from the simulator's curve, where its maximum sits and what the
    simulator loses by playing it. 2-D (--policy DIR): the imagined return through each model and
    the true return on a --points x --points grid along two random filter-normalised directions
    around the policy's parameters (Li et al., 2018), as heatmaps and arrays.
    """
    check_input_tasks([*model, policy], allow_task_change)
    two_d = policy is not None
    points = points if points is not None else (25 if two_d else 201)
    _check_options(points, chunk, rest, span, which, two_d)
    base, subjects, obs0 = load_subjects(model, task, horizon, parse_task_params(task_param))
    if all(s.model is not None for s in subjects):
        subjects = [Subject.simulator(), *subjects]
    check_contexts(subjects, base.horizon)
    the_policy = _policy_of(policy, which, policy_seed, base) if policy is not None else None
    artifacts.check_output_dir(out, overwrite)

    with progress_bar(
        f"landscape on {base.name}", len(subjects) * points ** (2 if two_d else 1)
    ) as update:

        def progress_of(i):
            return lambda done, total: update(i * total + done, subjects[i].label)

        if the_policy is not None:
            arrays = _plane(
                the_policy, subjects, base, obs0, points, span, chunk, seed, progress_of
            )
        else:
            arrays = _first_action(subjects, base, obs0, points, rest, chunk, seed, progress_of)

    arrays = {k: np.asarray(v, np.float64) for k, v in arrays.items()}  # one dtype on disk
    labels = [s.label for s in subjects]
    ref = labels.index(SIMULATOR)
    # Per grid point, each model's final-state MSE against the simulator's final state.
    state_errors = None if two_d else analysis.final_state_errors(arrays["final_states"], ref)
    results = analysis.landscape_summaries(arrays, state_errors, labels, ref)
    summary = {
        "out": str(out),
        "task": base.name,
        "horizon": base.horizon,
        "kind": "2d" if two_d else "1d",
        "points": points,
        "seed": seed,
        "models": results,
    }
    settings = {
        "points": points,
        "span": span if two_d else None,
        "rest": None if two_d else rest,
        "seed": seed,
    }
    policy_record = (
        None
        if policy is None
        else {"path": str(Path(policy).absolute()), "which": which, "seed_index": policy_seed}
    )
    _save(out, overwrite, arrays, state_errors, base, subjects, policy_record, settings, summary)
    err_console.print(_table(results, two_d))
    if json_out:
        emit_json(summary)


def _save(
    out: Path,
    overwrite: bool,
    arrays: dict[str, np.ndarray],
    state_errors: np.ndarray | None,
    base: Task,
    subjects: list[Subject],
    policy: dict[str, Any] | None,
    settings: dict[str, Any],
    summary: dict[str, Any],
) -> None:
    """The output directory: the arrays, the figure and meta.json."""
    labels = [s.label for s in subjects]
    with artifacts.output_dir(out, overwrite) as output:
        leaves = output.save_arrays(arrays)
        title = f"{base.name} (H={base.horizon})"
        if policy is not None:
            plots.heatmaps(
                arrays["alphas"],
                dict(zip(labels, arrays["returns"])),
                output.path / "landscape.png",
                f"{title}: return around {Path(policy['path']).name} ({policy['which']})",
            )
        else:
            _plot_1d(arrays, state_errors, labels, output.path / "landscape.png", title)
        output.write_meta(
            LANDSCAPE_KIND,
            task=task_record(base),
            models=[s.record for s in subjects],
            labels=labels,
            policy=policy,
            settings=settings,
            arrays={k: list(np.shape(v)) for k, v in arrays.items()},
            summary=summary,
            leaves=leaves,
        )


def _check_options(points: int, chunk: int, rest: str, span: float, which: str, two_d: bool):
    """Refuse a bad option (exit 2) before anything is loaded or written."""
    if points < 3:
        raise BadInputError(f"--points must be at least 3, got {points}")
    if chunk < 1:
        raise BadInputError(f"--chunk must be at least 1, got {chunk}")
    if rest not in REST:
        raise BadInputError(f"--rest must be zero or random, got {rest!r}")
    if not span > 0:
        raise BadInputError(f"--span must be positive, got {span}")
    if two_d and points % 2 == 0:
        raise BadInputError(
            "--points must be odd for a 2-D landscape, so that the policy itself is the centre "
            f"point; got {points}"
        )
    if two_d and which not in WHICH:
        raise BadInputError(f"--which must be best or final, got {which!r}")


def _policy_of(policy: Path, which: str, seed_index: int, base: Task) -> MarkovPolicy:
    """The policy a 2-D landscape is drawn around, which must act in ``base``'s task."""
    the_policy, policy_task, _ = artifacts.load_policy(policy, which, seed_index)
    if policy_task.name != base.name or policy_task.obs_size != base.obs_size:
        raise BadInputError(
            f"{policy} is a policy for {policy_task.name}, not {base.name}; pass a policy of the "
            "same task"
        )
    return the_policy


def _plane(
    the_policy: MarkovPolicy,
    subjects: list[Subject],
    base: Task,
    obs0: jax.Array,
    points: int,
    span: float,
    chunk: int,
    seed: int,
    progress_of: Callable[[int], Callable[[int, int], None]],
) -> dict[str, Any]:
    """Each subject's return on a ``points`` x ``points`` grid of the policy's parameters along
    two random filter-normalised directions drawn from ``seed``."""
    params, _ = analysis.perturbable(the_policy)
    k1, k2 = jax.random.split(jax.random.key(seed))
    directions = (
        analysis.filter_normalized_direction(params, k1),
        analysis.filter_normalized_direction(params, k2),
    )
    grid = np.linspace(-span, span, points)
    surfaces = [
        analysis.policy_plane(
            the_policy, s.at(base), base, obs0, directions, jnp.asarray(grid), chunk, progress_of(i)
        )
        for i, s in enumerate(subjects)
    ]
    return {"alphas": grid, "returns": np.stack(surfaces)}


def _first_action(
    subjects: list[Subject],
    base: Task,
    obs0: jax.Array,
    points: int,
    rest: str,
    chunk: int,
    seed: int,
    progress_of: Callable[[int], Callable[[int, int], None]],
) -> dict[str, Any]:
    """Each subject's return and final state over ``points`` first actions in [-1, 1], the
    later actions zero or uniform (drawn once from ``seed``)."""
    grid = np.linspace(-1.0, 1.0, points)
    shape = (base.horizon - 1, base.action_size)
    later = (
        jnp.zeros(shape)
        if rest == "zero"
        else jax.random.uniform(jax.random.key(seed), shape, minval=-1.0, maxval=1.0)
    )
    curves = [
        analysis.first_action_landscape(
            s.at(base), base, obs0, jnp.asarray(grid), later, chunk, progress_of(i)
        )
        for i, s in enumerate(subjects)
    ]
    return {
        "grid": grid,
        "returns": np.stack([c[0] for c in curves]),
        "final_states": np.stack([c[1] for c in curves]),
    }


def _plot_1d(
    arrays: dict[str, np.ndarray],
    state_errors: np.ndarray,
    labels: list[str],
    path: Path,
    title: str,
) -> None:
    """The return against the first action, and each model's final-state error beside it."""
    panels = {"return": dict(zip(labels, arrays["returns"]))}
    if len(labels) > 1:
        panels["final-state MSE vs simulator"] = {
            label: np.maximum(e, 1e-12)
            for label, e in zip(labels, state_errors)
            if label != SIMULATOR
        }
    plots.curves_1d(
        arrays["grid"],
        panels,
        path,
        f"{title}: return vs first action",
        "first action a_1",
        log_panels=("final-state MSE vs simulator",),
    )


def _table(results: dict[str, Any], two_d: bool):
    from rich.table import Table

    table = Table(title="Landscape roughness", title_justify="left")
    for column in (
        "model",
        "total variation",
        "local maxima",
        *(("RMSE vs simulator",) if two_d else ("RMSE vs simulator", "argmax a_1", "regret")),
    ):
        table.add_column(column, justify="left" if column == "model" else "right")
    for label, e in results.items():
        row = [
            label,
            f"{e['roughness']['total_variation']:.4g}",
            str(e["roughness"]["local_maxima"]),
        ]
        if two_d:
            row.append(f"{e['rmse_vs_simulator']:.4g}")
        else:
            row += [f"{e['rmse']:.4g}", f"{e['argmax']:.3f}", f"{e['regret']:.4g}"]
        table.add_row(*row)
    return table
