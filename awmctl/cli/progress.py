"""Progress of long commands on stderr: a rich bar on a terminal, plain lines everywhere else.

A batch job's log (a SLURM log, ``2> log``, CI) is not a terminal, where a bar would be either
silent or a screenful of control characters. There a long command prints one plain line every
``AWMCTL_PROGRESS_SECONDS`` seconds (default 30; 0 turns the lines off), and one when it ends::

    [awmctl] sac on cancer: 2048/5024 (41%) 9.3/s elapsed 0:03:40 eta 0:05:20 eval/eval_return -20
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from awmctl.cli.common import err_console
from awmctl.errors import BadInputError

PROGRESS_SECONDS_ENV = "AWMCTL_PROGRESS_SECONDS"
DEFAULT_PROGRESS_SECONDS = 30.0


def progress_seconds() -> float:
    """Seconds between two progress lines (``AWMCTL_PROGRESS_SECONDS``); 0 means no lines."""
    raw = os.environ.get(PROGRESS_SECONDS_ENV, "")
    if raw.strip() == "":
        return DEFAULT_PROGRESS_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:  # also refuses nan
        raise BadInputError(
            f"{PROGRESS_SECONDS_ENV}={raw!r} is not a number of seconds: give one >= 0 "
            "(0 turns the progress lines off)"
        )
    return seconds


def clock_text(seconds: float) -> str:
    """``H:MM:SS``, as rich's bar shows elapsed and remaining time."""
    whole = round(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class ProgressLines:
    """Plain progress lines for a log: at most one every ``every`` seconds, and the last one."""

    def __init__(
        self,
        description: str,
        total: int,
        every: float,
        write: Callable[[str], None],
        start: int = 0,
        now: Callable[[], float] = time.monotonic,
    ):
        self.description, self.total, self.every, self.write, self.now = (
            description,
            total,
            every,
            write,
            now,
        )
        # the step this process started from (a resumed run's is not 0): the rate counts from it
        self.first = start
        self.start = self.last_line = now()

    def line(self, completed: int, info: str) -> str:
        elapsed = self.now() - self.start
        done = completed - self.first
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = clock_text((self.total - completed) / rate) if rate > 0 else "?"
        percent = 100 * completed // max(self.total, 1)
        text = (
            f"[awmctl] {self.description}: {completed}/{self.total} ({percent}%) {rate:.3g}/s "
            f"elapsed {clock_text(elapsed)} eta {eta}"
        )
        return f"{text} {info}" if info else text

    def update(self, completed: int, info: str = "") -> None:
        if completed >= self.total or self.now() - self.last_line >= self.every:
            self.write(self.line(completed, info))
            self.last_line = self.now()


@contextmanager
def progress_bar(
    description: str, total: int, show: bool = True, start: int = 0
) -> Iterator[Callable[..., None]]:
    """Yields ``update(completed, info="")``: a rich bar on a terminal, plain lines otherwise
    (see the module's docstring); nothing when ``show`` is False (a follower process). ``start``:
    the step a resumed run starts from."""
    every = progress_seconds()
    if show and not err_console.is_terminal:
        if every == 0:
            yield lambda completed, info="": None
            return

        def write(text: str) -> None:
            err_console.print(text, markup=False, highlight=False, soft_wrap=True)

        lines = ProgressLines(description, total, every, write, start)
        yield lines.update
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=err_console,
        disable=not show,
        transient=False,
    )
    with progress:
        task_id = progress.add_task(description, total=total, completed=start, info="")

        def update(completed: int, info: str = "") -> None:
            progress.update(task_id, completed=completed, info=info)

        yield update
