"""Output directories of commands: resumable training runs and one-shot analysis results.

A training run works in ``OUT.partial`` (checkpoints, ``metrics.jsonl``) and is moved to ``OUT``
only when complete (:class:`~awmctl.store.ResumableRun`); a one-shot result is built in a hidden
staging directory and renamed into place (:class:`Output`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from awmctl import store
from awmctl.store import ResumableRun as Run
from awmctl.store import check_output_dir, jsonable, read_metrics, torn_metrics


class Output:
    """A one-shot output directory being written (see :func:`output_dir`)."""

    def __init__(self, path: Path):
        self.path = path

    def save_arrays(self, tree: Any) -> dict[str, Any]:
        """Write a pytree of arrays (the directory's checkpoint); returns the leaf specs."""
        return store.save_arrays(self.path, tree)

    def write_meta(self, kind: str, **fields: Any) -> None:
        write_meta(self.path, store.base_meta(kind, **fields))


@contextlib.contextmanager
def output_dir(out: str | os.PathLike, overwrite: bool = False) -> Iterator[Output]:
    """An :class:`Output` that replaces ``out`` only if the block succeeds (nothing is lost on
    failure)."""
    with store.atomic_output_dir(out, overwrite) as staging:
        yield Output(staging)


def write_meta(directory: str | os.PathLike, meta: dict[str, Any]) -> None:
    """Complete a directory with its ``meta.json`` (atomically)."""
    store.write_json_atomic(Path(directory) / store.META_FILE, meta)


def read_meta(
    directory: str | os.PathLike, kind: str | tuple[str, ...] | None = None
) -> dict[str, Any]:
    """A complete directory's ``meta.json``, checked (see :func:`awmctl.store.read_meta`)."""
    return store.read_meta(directory, kind)


__all__ = [
    "Output",
    "Run",
    "check_output_dir",
    "jsonable",
    "output_dir",
    "read_meta",
    "read_metrics",
    "torn_metrics",
    "write_meta",
]
