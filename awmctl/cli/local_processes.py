"""`--processes N`: one command's seeds over N local processes, each a block of them.

On a CPU one training process keeps about one core busy: the model's operations are too small
for XLA to spread over several threads, and seeds inside one program run one after another. N
processes on N cores finish N blocks of seeds in about the time of one (docs/benchmarks.md). They
form the same multi-process job as ``AWMCTL_DISTRIBUTED=1`` under a cluster launcher (the
coordinator on localhost, a free port), so the run's outputs are those of the one-process run.

The command re-runs itself: the children get the options the user typed (minus
``--processes``) and the job's settings in the environment; this process waits for them, passes
SIGTERM and Ctrl-C on, and exits with process 0's exit code (or the first failure's).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from awmctl.cli.common import COORDINATOR_ENV, COUNT_ENV, DISTRIBUTED_ENV, INDEX_ENV
from awmctl.errors import BadInputError


def typed_arguments(ctx: Any, drop: tuple[str, ...]) -> list[str]:
    """The command line that reproduces what the user typed for this subcommand, less ``drop``."""
    args = [ctx.info_name]
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name)
        if (
            param.name in drop
            or source is None
            or source.name == "DEFAULT"
            or not getattr(param, "opts", None)
        ):
            continue
        value = ctx.params[param.name]
        if getattr(param, "is_flag", False):
            if value:
                args.append(param.opts[0])
            elif param.secondary_opts:
                args.append(param.secondary_opts[0])
        elif getattr(param, "multiple", False):
            for item in value or ():
                args += [param.opts[0], str(item)]
        elif value is not None:
            args += [param.opts[0], str(value)]
    return args


def run_locally(ctx: Any, processes: int, seeds: int) -> int:
    """Run this command as ``processes`` local processes; their exit code."""
    if os.environ.get(DISTRIBUTED_ENV, "") not in ("", "0"):
        raise BadInputError(
            f"--processes starts a job of its own; it cannot run inside one ({DISTRIBUTED_ENV}=1)"
        )
    if seeds % processes:
        raise BadInputError(
            f"--seeds {seeds} cannot be shared by --processes {processes}: give a multiple of "
            f"{processes}"
        )
    with socket.socket() as probe:  # a free port for the coordinator
        probe.bind(("localhost", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "awmctl", *typed_arguments(ctx, drop=("processes",))]
    env = {
        **os.environ,
        DISTRIBUTED_ENV: "1",
        COORDINATOR_ENV: f"localhost:{port}",
        COUNT_ENV: str(processes),
    }
    children = [subprocess.Popen(command, env={**env, INDEX_ENV: str(i)}) for i in range(processes)]

    def pass_on(signum: int, frame: Any) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {s: signal.signal(s, pass_on) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        while any(child.poll() is None for child in children):
            if any(
                child.poll() not in (None, 0) for child in children
            ):  # one failed: the others would wait for it
                pass_on(signal.SIGTERM, None)
                for child in children:
                    child.wait()
            time.sleep(0.1)
        codes = [child.returncode for child in children]
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return next((code for code in codes if code != 0), 0)


__all__ = ["run_locally", "typed_arguments"]
