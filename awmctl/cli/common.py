"""What every subcommand shares: option spellings, the output sinks, and error handling.

Conventions: human output (tables, progress bars, warnings, errors) goes to stderr; ``--json``
prints exactly one JSON object on stdout. Exit codes: 0 success, 2 bad input, 1 failure while
running. ``AWMCTL_DEBUG=1`` shows full tracebacks instead of one-line errors.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.models import ArgumentInfo, OptionInfo

from awmctl import artifacts
from awmctl.artifacts import jsonable
from awmctl.errors import AwmctlError, BadInputError, RunFailedError

err_console = Console(stderr=True)

# ---------------------------------------------------------------------- shared option types

SeedOpt = Annotated[
    int,
    typer.Option(
        "--seed", help="Random seed; the same seed on the same machine gives identical numbers."
    ),
]
OutOpt = Annotated[
    Path, typer.Option("--out", help="Output directory (gets meta.json and the Orbax checkpoint).")
]
OverwriteOpt = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        metavar="",
        help="Replace --out if it exists (only once the new output is complete).",
    ),
]
WandbOpt = Annotated[
    str | None,
    typer.Option(
        "--wandb",
        envvar="WANDB_PROJECT",
        metavar="PROJECT",
        show_default=False,
        help="Also log the metrics to this Weights & Biases project (needs awmctl[wandb]; "
        "WANDB_MODE=offline keeps them under OUT/wandb/). TensorBoard files are always written "
        "under OUT/tensorboard/.",
    ),
]
JsonOpt = Annotated[
    bool,
    typer.Option("--json", metavar="", help="Print one machine-readable JSON summary on stdout."),
]
EnsembleOpt = Annotated[
    int,
    typer.Option(
        "--ensemble",
        help="World models fitted together as one ensemble (each from its own initialisation, "
        "on its own order of the episodes); their disagreement says where the model does not "
        "know. 1: one model.",
    ),
]


def choices(values: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """A string option's closed set of values, for ``typer.Option(**choices(...))``: listed in
    --help and offered by shell completion. The value stays a string, checked where it is used
    (a one-line error, exit code 2, as for every bad input)."""
    values = tuple(values)
    return {
        "metavar": "|".join(values),
        "autocompletion": lambda incomplete: [v for v in values if v.startswith(incomplete)],
    }


def complete_task(incomplete: str) -> list[str]:
    """Shell completion of --task: the built-in and installed tasks' names (a user's
    ``module:Class`` or ``path/file.py:Class`` is typed out)."""
    from awmctl.tasks import task_names

    return [name for name in task_names() if name.startswith(incomplete)]


def complete_model(incomplete: str) -> list[str]:
    """Shell completion of --model: the model names (a directory completes as a path)."""
    from awmctl.models import MODEL_SPECS

    return [name for name in MODEL_SPECS if name.startswith(incomplete)]


TASK_HELP = (
    "Task: a name (see `awmctl tasks`), or a user's task as module:Class or path/file.py:Class "
    "(docs/tasks.md)."
)
TaskOpt = Annotated[str, typer.Option("--task", help=TASK_HELP, autocompletion=complete_task)]
HorizonOpt = Annotated[
    int | None, typer.Option("--horizon", help="Episode length H (default: the task's).")
]
TaskParamOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--task-param",
        metavar="NAME=VALUE (repeatable)",
        help="Override a task parameter, NAME=VALUE (repeatable), e.g. goal=0.3,-0.5 or T=10.",
    ),
]

AllowTaskChangeOpt = Annotated[
    bool,
    typer.Option(
        "--allow-task-change",
        metavar="",
        help="Use inputs made from another version of a user's task file (refused otherwise: the "
        "data, model or policy belong to other dynamics or rewards).",
    ),
]

F = TypeVar("F", bound=Callable[..., Any])


def check_input_tasks(inputs: list[Any], allow_task_change: bool) -> None:
    """Exit 2 with one line when an input directory (data, model, policy; other values such as
    model names are skipped) was made from another version of a user's task file."""
    if allow_task_change:
        return
    for item in inputs:
        if item is not None and (Path(str(item)) / "meta.json").is_file():
            artifacts.check_task_unchanged(artifacts.read_meta(item), item)


def given(ctx: Any, *names: str) -> list[str]:
    """The options among ``names`` (parameter names) that the user typed on the command line.

    ``ctx`` is the command's ``typer.Context`` (typed ``Any``: at run time typer hands over its
    own click context, which is not an instance of the class it documents).
    """
    out = []
    for name in names:
        source = ctx.get_parameter_source(name)  # typer's own click: compare the enum by name
        if source is not None and source.name != "DEFAULT":
            flag = next(
                (p.opts[0] for p in ctx.command.params if p.name == name),
                "--" + name.replace("_", "-"),
            )
            out.append(flag)
    return out


def refuse_options(ctx: Any, names: tuple[str, ...], reason: str) -> None:
    """Exit 2 with one line when an option that does not apply (``reason``) was given."""
    wrong = given(ctx, *names)
    if wrong:
        raise BadInputError(
            f"{', '.join(wrong)} {'does' if len(wrong) == 1 else 'do'} not apply {reason}"
        )


#: the exit code after SIGTERM (128 + 15, as a shell reports a process SIGTERM ended)
TERMINATED_EXIT = 143


class Terminated(BaseException):
    """SIGTERM arrived (a cluster scheduler's notice before it kills the job). A BaseException,
    like KeyboardInterrupt, so that no ``except Exception`` swallows it."""


_termination = {"requested": False, "deferred": False}


def on_sigterm(signum: int, frame: Any) -> None:
    """The SIGTERM handler: stop at once, unless a training loop asked to stop at the end of
    its current chunk (:func:`deferring_termination`) so that it can checkpoint first."""
    _termination["requested"] = True
    if not _termination["deferred"]:
        raise Terminated


def install_process_handlers() -> None:
    """SIGTERM -> :class:`Terminated`; and silence the "Event loop is closed" errors that Orbax's
    background I/O raises while the interpreter shuts down after a failed restore (the user has
    already read the one-line error; these would follow it as tracebacks)."""
    if threading.current_thread() is threading.main_thread():
        _termination["requested"] = False
        signal.signal(signal.SIGTERM, on_sigterm)
    default = sys.__unraisablehook__

    def quiet_closed_loops(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, RuntimeError) and "Event loop is closed" in str(
            unraisable.exc_value
        ):
            return
        default(unraisable)

    sys.unraisablehook = quiet_closed_loops
    # The same failed restore can also leave one of Orbax's reading tasks with an exception that
    # nobody awaits; asyncio logs it when the task is collected, at exit, as a second traceback.
    logging.getLogger("asyncio").addFilter(forget_unretrieved_task_errors)


def forget_unretrieved_task_errors(record: logging.LogRecord) -> bool:
    """A logging filter: False (drop) for asyncio's "Task exception was never retrieved"."""
    return not str(record.msg).startswith("Task exception was never retrieved")


@contextlib.contextmanager
def deferring_termination() -> Iterator[Callable[[], bool]]:
    """Inside: SIGTERM only sets a flag, which the yielded function reads."""
    _termination["deferred"] = True
    try:
        yield lambda: _termination["requested"]
    finally:
        _termination["deferred"] = False


def print_error(message: str) -> None:
    """The one ``Error: ...`` line on stderr (the message escaped: brackets in it are text)."""
    err_console.print(f"[bold red]Error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def option_flags(fn: Callable[..., Any]) -> dict[str, str]:
    """Each parameter of a typer command -> the flag a user types (``data_dir`` -> ``--data``)."""
    # (get_type_hints would give nothing for a command marked @no_type_check)
    hints = inspect.get_annotations(inspect.unwrap(fn), eval_str=True)
    flags = {}
    for name, hint in hints.items():
        info = next(
            (
                m
                for m in getattr(hint, "__metadata__", ())
                if isinstance(m, OptionInfo | ArgumentInfo)
            ),
            None,
        )
        if info is None:  # not a command-line parameter (the click context, the return value)
            continue
        # Annotated[..., typer.Option("--data")] keeps the first flag as the info's "default"
        first = [info.default] if isinstance(info.default, str) else []
        decls = [d for d in (*first, *(info.param_decls or ())) if d.startswith("--")]
        flags[name] = decls[0] if decls else "--" + name.replace("_", "-")
    return flags


#: the largest magnitude an integer option takes: JAX's integers are 32 bits by default, and a
#: larger one fails deep inside a compiled call (an OverflowError) instead of as bad input
INT_OPTION_LIMIT = 2**31 - 1


def check_integer_options(kwargs: dict[str, Any], flags: dict[str, str]) -> None:
    """Refuse an integer option beyond :data:`INT_OPTION_LIMIT` in one line (exit 2)."""
    for name, value in kwargs.items():
        values = value if isinstance(value, list | tuple) else [value]
        for v in values:
            if isinstance(v, int) and not isinstance(v, bool) and abs(v) > INT_OPTION_LIMIT:
                raise BadInputError(
                    f"{flags.get(name, name)} {v} is out of range: give at most "
                    f"{INT_OPTION_LIMIT} ({INT_OPTION_LIMIT:.2g})"
                )


def reflowed(fn: F) -> F:
    """``fn`` with its docstring's paragraphs on one line each, so that ``--help`` fills the
    terminal's width: Typer's rich help keeps a docstring's line breaks, which then break a
    second time, mid-sentence, on a terminal narrower than the source's lines."""
    doc = inspect.getdoc(fn) or ""
    fn.__doc__ = "\n\n".join(" ".join(p.split()) for p in doc.split("\n\n"))
    return fn


def handle_errors(fn: F) -> F:
    """Map awmctl's own errors to ``Error: ...`` on stderr and their exit codes."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = os.environ.get("AWMCTL_DEBUG", "") not in ("", "0")
        try:
            check_integer_options(kwargs, option_flags(fn))
            return fn(*args, **kwargs)
        except AwmctlError as err:
            if debug:
                raise
            print_error(str(err))
            raise typer.Exit(err.exit_code) from None
        except KeyboardInterrupt:
            err_console.print(
                "[bold red]Interrupted.[/] Rerun the same command to resume where it supports it."
            )
            raise typer.Exit(130) from None
        except Terminated:
            err_console.print(
                "[bold red]Terminated[/] (SIGTERM): the checkpoint is written; rerun the same "
                "command to resume where it supports it."
            )
            raise typer.Exit(TERMINATED_EXIT) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as err:  # a bug or an environment failure: still one line by default
            if debug:
                raise
            err_console.print(
                f"[bold red]Error:[/] unexpected failure: {type(err).__name__}: {escape(str(err))} "
                "(set AWMCTL_DEBUG=1 for the traceback)",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


#: the version of the ``--json`` schema (docs/usage.md, "JSON output"): fields may be added
#: within a version; renaming, removing or changing the meaning of one bumps it
JSON_SCHEMA_VERSION = 1


def emit_json(summary: dict[str, Any]) -> None:
    """The one machine-readable object on stdout (non-finite numbers: null or +-1e308); in a
    run spread over several processes, process 0's."""
    import jax

    if jax.process_index() != 0:
        return
    text = json.dumps(jsonable({"schema_version": JSON_SCHEMA_VERSION, **summary})) + "\n"
    where = f"; the summary is in {summary['out']}/meta.json" if summary.get("out") else ""
    if sys.stdout is None or sys.stdout.closed:  # started with stdout closed (`>&-`)
        raise RunFailedError(f"--json: standard output is closed, nothing to write to{where}")
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except (BrokenPipeError, ValueError, OSError) as err:
        # the reader went away (`| head -0`) or the stream cannot take it: point stdout at
        # /dev/null, so that Python's own flush at exit does not fail a second time
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise RunFailedError(
            f"--json: cannot write to standard output ({type(err).__name__}){where}"
        ) from None


def summary_table(title: str, rows: dict[str, Any]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows.items():
        table.add_row(key, f"{value:.6g}" if isinstance(value, float) else str(value))
    return table


def references_cache() -> Path:
    """Where score references are cached: ``AWMCTL_CACHE_DIR`` (default ``~/.cache/awmctl``)."""
    return Path(os.environ.get("AWMCTL_CACHE_DIR", str(Path.home() / ".cache" / "awmctl")))


def configure_jax() -> None:
    """Process-wide JAX settings for CLI runs.

    The persistent compilation cache makes repeated invocations (a sweep of CLI calls, a SLURM
    array) skip recompiling identical programs. ``AWMCTL_X64=1`` runs everything in float64.
    """
    import jax

    # Orbax logs every save and restore at INFO through absl; a command's stderr stays quiet.
    logging.getLogger("absl").setLevel(logging.WARNING)
    cache = os.environ.get(
        "AWMCTL_COMPILATION_CACHE", str(Path.home() / ".cache" / "awmctl" / "jax")
    )
    if cache and cache.lower() not in ("0", "off", "none"):
        try:
            jax.config.update("jax_compilation_cache_dir", cache)
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
        except Exception:  # noqa: BLE001, S110  (an unwritable cache dir must never stop a run)
            pass
    if os.environ.get("AWMCTL_X64", "") not in ("", "0"):
        jax.config.update("jax_enable_x64", True)
    platforms = os.environ.get("JAX_PLATFORMS", "")
    if platforms:
        # a backend asked for and missing fails deep inside the first operation (on a CPU-only
        # machine, JAX_PLATFORMS=cuda raises a bare AssertionError there): ask JAX now
        try:
            jax.devices()
        except Exception as err:  # noqa: BLE001  (JAX raises RuntimeError or AssertionError)
            why = f" ({type(err).__name__}: {str(err).splitlines()[0]})" if str(err) else ""
            raise BadInputError(
                f"JAX_PLATFORMS={platforms}: JAX cannot start that backend on this machine{why}; "
                "unset JAX_PLATFORMS to run on what it has, or install JAX's build for it "
                "(docs/cluster.md)"
            ) from None
    if os.environ.get(DISTRIBUTED_ENV, "") not in ("", "0"):
        start_distributed()


#: ``AWMCTL_DISTRIBUTED=1``: spread ``--seeds N`` over the processes of a multi-process job
DISTRIBUTED_ENV = "AWMCTL_DISTRIBUTED"
#: a local job's settings (``--processes N`` sets them in each of its processes); a cluster's
#: launcher sets its own, which JAX reads
COORDINATOR_ENV, COUNT_ENV, INDEX_ENV = (
    "AWMCTL_COORDINATOR",
    "AWMCTL_PROCESS_COUNT",
    "AWMCTL_PROCESS_INDEX",
)


def start_distributed() -> None:
    """Join the job's processes with JAX's multi-controller runtime, its settings read from the
    environment as JAX reads them (SLURM's ``SLURM_NTASKS``/``SLURM_PROCID``/..., or
    ``JAX_COORDINATOR_ADDRESS`` with the other cluster environments JAX detects)."""
    import jax

    jax.config.update(
        "jax_cpu_collectives_implementation", "gloo"
    )  # collectives between CPU processes
    local = {}
    if os.environ.get(COORDINATOR_ENV):
        local = {
            "coordinator_address": os.environ[COORDINATOR_ENV],
            "num_processes": int(os.environ[COUNT_ENV]),
            "process_id": int(os.environ[INDEX_ENV]),
        }
    try:
        jax.distributed.initialize(**local)
    except (ValueError, RuntimeError) as err:
        raise BadInputError(
            f"{DISTRIBUTED_ENV}=1 but the job's processes could not be joined ({err}); run it "
            "under srun --ntasks=K, or set JAX_COORDINATOR_ADDRESS and the process count and index"
        ) from None
    # The first collective connects the processes, and Gloo announces it on stdout, which
    # belongs to --json: connect now, with stdout sent to stderr.
    from jax.experimental import multihost_utils

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        multihost_utils.process_allgather(np.zeros((1,), np.int32))
    finally:
        os.dup2(saved, 1)
        os.close(saved)
