"""What every directory's ``meta.json`` says about the task it belongs to."""

from __future__ import annotations

import os
from typing import Any

from awmctl.errors import BadInputError
from awmctl.tasks import Task, source_fingerprint, task_from_record


class TaskChangedError(BadInputError):
    """A directory was made from another version of a user's task than the one there is now."""


def task_from_meta(meta: dict[str, Any]) -> Task:
    """Rebuild the exact task (name or source, horizon, every parameter) a directory was made
    with."""
    return task_from_record(meta["task"])


def check_task_unchanged(meta: dict[str, Any], directory: str | os.PathLike) -> None:
    """Refuse (:class:`TaskChangedError`) a directory made from a user's task whose source file
    has changed since: its data, model or policy belong to other dynamics or rewards.

    Directories that record no fingerprint (awmctl before it recorded them) pass. A built-in
    task's fingerprint (awmctl's version) is recorded but not compared here: a directory from
    another awmctl is governed by its ``format_version``.
    """
    record = meta.get("task") or {}
    source, recorded = record.get("source"), record.get("fingerprint")
    if source is None or recorded is None:
        return
    now = source_fingerprint(source)
    if now != recorded:
        raise TaskChangedError(
            f"{directory} was made from another version of {source} ({recorded}, now {now}): "
            "make it again from the task as it is, or pass --allow-task-change to use it anyway"
        )


__all__ = ["TaskChangedError", "check_task_unchanged", "task_from_meta"]
