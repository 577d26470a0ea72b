"""``awmctl references``: a task's score references, R_random and R_opt, computed once and cached,
after which every ``optimize-policy`` summary on that task reports ``score``."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from awmctl.algorithms.references import ReferenceSettings, compute_references
from awmctl.artifacts.references import entry_path, load_references, save_references
from awmctl.cli.common import (
    HorizonOpt,
    JsonOpt,
    TaskOpt,
    TaskParamOpt,
    emit_json,
    err_console,
    handle_errors,
    references_cache,
    summary_table,
)
from awmctl.cli.config_file import ConfigOpt
from awmctl.tasks import make_task, parse_task_params

R = ReferenceSettings()


@handle_errors
def references_command(
    task: TaskOpt,
    horizon: HorizonOpt = None,
    task_param: TaskParamOpt = None,
    episodes: Annotated[
        int, typer.Option("--episodes", help="Random episodes whose mean return is R_random.")
    ] = R.random_episodes,
    starts: Annotated[
        int,
        typer.Option(
            "--starts",
            help="Direct-shooting plans (one from a = 0, the rest perturbed); R_opt is the best.",
        ),
    ] = R.shooting_starts,
    steps: Annotated[
        int, typer.Option("--shooting-steps", help="Adam steps per plan, through the simulator.")
    ] = R.shooting_steps,
    lr: Annotated[
        float, typer.Option("--shooting-lr", help="Adam learning rate of the plans.")
    ] = R.shooting_lr,
    recompute: Annotated[
        bool,
        typer.Option(
            "--recompute",
            metavar="",
            help=(
                "Compute again even if cached (the entry is replaced; other settings than the "
                "cached entry's always recompute)."
            ),
        ),
    ] = False,
    json_out: JsonOpt = False,
    config_file: ConfigOpt = None,
) -> None:
    """Compute (or read from the cache) a task's score references, R_random and R_opt.

    R_random is the mean return of uniformly random episodes, and R_opt the best open-loop plan
    that multi-start direct shooting finds through the task's own gradient from the evaluation's
    start. Afterwards every
    optimize-policy summary on the same task, horizon and parameters reports score = (R -
    R_random) / (R_opt - R_random): 0 is random, 1 the best plan found. Cached under
    AWMCTL_CACHE_DIR (default ~/.cache/awmctl), one entry per task, horizon, parameters and source.
    The best plan's actions are kept too: an online run through a world model then reports how its
    final models score that plan beside the policy's own episode, and says when the model cannot
    see the optimum (an entry made before awmctl kept plans has none: --recompute).
    """
    the_task = make_task(task, horizon, parse_task_params(task_param))
    settings = ReferenceSettings(episodes, starts, steps, lr)
    settings.check()
    cache = references_cache()
    refs = None if recompute else load_references(the_task, cache, settings)
    cached = refs is not None
    seconds = None
    if refs is None:
        err_console.print(
            f"Computing references of {the_task.name} (H={the_task.horizon}): {episodes} random "
            f"episodes, {starts} direct-shooting plans x {steps} steps ...",
            highlight=False,
        )
        t0 = time.perf_counter()
        refs = compute_references(the_task, settings)
        seconds = round(time.perf_counter() - t0, 1)
        save_references(the_task, cache, refs, seconds)
    summary = {
        "task": the_task.name,
        "horizon": the_task.horizon,
        "R_random": refs.random,
        "R_opt": refs.opt,
        "plans_best_worst": f"{max(refs.plans):.6g} / {min(refs.plans):.6g}",
        "cached": cached,
        "seconds": seconds,
        "path": str(entry_path(the_task, cache)),
    }
    err_console.print(
        summary_table(f"References of {the_task.name} (H={the_task.horizon})", summary)
    )
    if not refs.usable:
        err_console.print(
            "Warning: the best plan is no better than random; no score can be formed for this task."
        )
    if json_out:
        emit_json({**summary, "plans": list(refs.plans), "settings": refs.as_dict()["settings"]})
