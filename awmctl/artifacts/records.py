"""What every directory's ``meta.json`` says about the task it belongs to."""

from __future__ import annotations

from typing import Any

from awmctl.tasks import Task, task_from_record


def task_from_meta(meta: dict[str, Any]) -> Task:
    """Rebuild the exact task (name or source, horizon, every parameter) a directory was made with."""
    return task_from_record(meta["task"])


__all__ = ["task_from_meta"]
