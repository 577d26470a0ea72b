"""``awmctl collect``: roll out episodes of a task and store them as a dataset."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Annotated

import jax
import numpy as np
import typer
from rich.markup import escape

from awmctl import artifacts
from awmctl.cli.common import (
    AllowTaskChangeOpt,
    HorizonOpt,
    JsonOpt,
    OutOpt,
    OverwriteOpt,
    SeedOpt,
    TaskOpt,
    TaskParamOpt,
    check_input_tasks,
    emit_json,
    err_console,
    handle_errors,
    summary_table,
)
from awmctl.cli.config_file import ConfigOpt
from awmctl.cli.progress import progress_bar
from awmctl.cli.reruns import idempotent
from awmctl.errors import BadInputError
from awmctl.rollouts import DEFAULT_CHUNK, collect_chunks
from awmctl.tasks import Episode, make_task, parse_task_params


@handle_errors
@idempotent
def collect_command(
    task: TaskOpt,
    out: OutOpt,
    episodes: Annotated[
        int, typer.Option("--episodes", "-n", help="Number of episodes to roll out.")
    ] = 512,
    horizon: HorizonOpt = None,
    policy: Annotated[
        str,
        typer.Option(
            "--policy",
            help=(
                "Behaviour: 'random' (uniform in [-1, 1]), 'constant:V' (or V1,V2,...), or a "
                "policy directory."
            ),
        ),
    ] = "random",
    task_param: TaskParamOpt = None,
    max_memory: Annotated[
        float,
        typer.Option(
            "--max-memory",
            help=(
                "MB of episodes held in memory at once: larger datasets are written in parts as "
                "they are made."
            ),
        ),
    ] = 1024.0,
    seed: SeedOpt = 0,
    overwrite: OverwriteOpt = False,
    json_out: JsonOpt = False,
    config_file: ConfigOpt = None,
    allow_task_change: AllowTaskChangeOpt = False,
) -> None:
    """Roll out N episodes of a task (one compiled vmap+scan call) and store them under --out.

    Stores observations [N, H+1, obs], actions [N, H, act], rewards [N, H] and returns [N],
    with a meta.json saying what they are. Memory stays within --max-memory whatever N: episodes
    are written in parts as they are made.
    """
    check_input_tasks([policy], allow_task_change)
    if episodes < 1:
        raise BadInputError(f"--episodes must be at least 1, got {episodes}")
    if not max_memory > 0:
        raise BadInputError(f"--max-memory must be a positive number of MB, got {max_memory}")
    spec = artifacts.parse_policy(policy)
    the_task = make_task(task, horizon, parse_task_params(task_param))
    artifacts.check_output_dir(out, overwrite)  # fail before any work, not after
    artifacts.check_room(out, the_task, episodes)
    act = artifacts.behaviour(spec, the_task)
    if spec.path is not None:
        trained_for = artifacts.read_meta(spec.path)["policy"]["horizon"]
        if trained_for != the_task.horizon:
            err_console.print(
                f"warning: {escape(spec.path)} was optimised over H={trained_for} steps; "
                f"collecting at H={the_task.horizon}",
                highlight=False,
            )

    # Half the budget for the part being gathered, half for the arrays Orbax writes from it.
    part = max(1, int(max_memory * 1_000_000 / 2) // artifacts.dataset_bytes(the_task, 1))
    with progress_bar(f"collect {the_task.name} H={the_task.horizon}", episodes) as update:
        chunks = finite_chunks(
            collect_chunks(the_task, act, episodes, jax.random.key(seed), min(DEFAULT_CHUNK, part)),
            task,
        )
        described = {
            "out": str(out),
            "task": the_task.name,
            "horizon": the_task.horizon,
            "policy": spec.describe(),
            "seed": seed,
            "episodes": episodes,
        }
        # the whole summary is stored (a rerun of the same command prints it: awmctl/cli/reruns.py)
        meta = artifacts.write_dataset(
            out,
            chunks,
            the_task,
            {"policy": spec.describe(), "seed": seed, "summary": described},
            overwrite,
            part_episodes=part,
            on_chunk=update,
        )
    summary = meta["summary"]
    err_console.print(summary_table(f"Collected {episodes} episodes -> {out}", summary))
    if json_out:
        emit_json(summary)


def finite_chunks(chunks: Iterable[Episode], task: str) -> Iterator[Episode]:
    """``chunks`` as they come, refused (:class:`BadInputError`, before the dataset is complete:
    nothing is written) at the first episode whose states or rewards are not finite, naming the
    episode and step: the task's transition or reward left the numbers there."""
    done = 0
    for chunk in chunks:
        finite = np.isfinite(np.asarray(chunk.observations)).all(axis=-1)  # [N, H+1]
        finite = finite[:, 1:] & np.isfinite(np.asarray(chunk.rewards))  # step k: x_k+1, r_k
        if not finite.all():
            episode, step = np.argwhere(~finite)[0]
            raise BadInputError(
                f"{task}: episode {done + int(episode)} is not finite from step {int(step)} (its "
                "next state or reward is inf or nan): the task's transition or reward fails "
                "there; nothing was written"
            )
        done += chunk.rewards.shape[0]
        yield chunk
