"""Idempotent reruns: a command whose ``--out`` is already complete, made with the same options,
prints the stored summary and exits 0 without work.

A Makefile, a retried CI job or a requeued SLURM array reruns commands whose output is there;
they must move on, not fail. A complete output made with *other* options is still refused (exit
2, one line naming the first option that differs): ``--overwrite`` replaces it.

The options a command was given are recorded in its ``meta.json`` (``options``: every option as
resolved by the command line, its defaults included, except those that do not change the
output: ``--out``, ``--overwrite``, ``--json``, ``--allow-task-change``, ``--wandb``; ``--config``'s
values are
in the options it set).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from awmctl import artifacts
from awmctl.cli.common import emit_json, err_console, option_flags, summary_table
from awmctl.errors import BadInputError

#: parameters that do not change what a command writes
NOT_COMPARED = frozenset(
    {"out", "overwrite", "json_out", "allow_task_change", "config_file", "wandb"}
)


def recorded(value: Any) -> Any:
    """An option's value as ``meta.json`` stores it (paths as typed, tuples as lists)."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple):
        return [recorded(v) for v in value]
    return value


def options_of(kwargs: dict[str, Any], flags: dict[str, str]) -> dict[str, Any]:
    """The command-line parameters (``flags``) among a command's arguments, as recorded."""
    return {
        name: recorded(value)
        for name, value in sorted(kwargs.items())
        if name in flags and name not in NOT_COMPARED
    }


def complete_meta(out: Path) -> dict[str, Any] | None:
    """``out``'s meta.json when it is a complete output of awmctl's, else None."""
    try:
        meta = artifacts.read_meta(out)
    except BadInputError:
        return None
    return meta if meta.get("status") == "complete" else None


def idempotent(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a command that writes ``--out`` (see the module's docstring)."""
    flags = option_flags(fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        out, overwrite = kwargs.get("out"), kwargs.get("overwrite", False)
        options = options_of(kwargs, flags)
        meta = None if out is None or overwrite else complete_meta(Path(out))
        if meta is not None and "options" in meta:
            stored = meta["options"]
            differs = [
                name
                for name in sorted(set(stored) | set(options))
                if stored.get(name) != options.get(name)
            ]
            if differs:
                name = differs[0]
                raise BadInputError(
                    f"--out {out} holds a complete {meta.get('kind', 'output')} made with "
                    f"{flags.get(name, name)} {stored.get(name)!r} (now {options.get(name)!r}); "
                    "pass --overwrite to replace it, or choose another --out"
                )
            summary = meta.get("summary", {})
            err_console.print(
                summary_table(
                    f"Already complete with the same options: {out} (nothing to do)", summary
                )
            )
            if kwargs.get("json_out"):
                emit_json(summary)
            return None
        result = fn(*args, **kwargs)
        import jax

        if out is not None and jax.process_index() == 0:
            made = complete_meta(Path(out))
            if (
                made is not None
            ):  # this process wrote it (a follower of a multi-process run writes nothing)
                artifacts.write_meta(out, {**made, "options": options})
        return result

    return wrapper


__all__ = ["idempotent", "option_flags", "options_of"]
