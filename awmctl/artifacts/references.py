"""A task's score references (:mod:`awmctl.algorithms.references`) cached on disk, one JSON file
per task, horizon and parameters, so that every later summary can report a score.

The key covers what decides the task's numbers: its record (name, horizon, every parameter), and
awmctl's version for a built-in task or the hash of the task's source file for a user's task
(editing the task makes a new entry). The settings the references were computed with are stored
in the entry: computing them again with other settings replaces it, and every later summary uses
the entry there is. Entries are written atomically; an unreadable entry counts as none.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from awmctl.algorithms.references import References, ReferenceSettings, compute_references
from awmctl.tasks import Task, source_fingerprint, task_identity, task_record, task_source


def task_fingerprint(task: Task) -> str:
    """What a task's numbers depend on beyond its record
    (:func:`awmctl.tasks.source_fingerprint`)."""
    return source_fingerprint(task_source(task))


def entry_path(task: Task, cache: Path) -> Path:
    return entry_path_of(task_record(task), cache)


def entry_path_of(record: dict[str, Any], cache: Path) -> Path:
    """The entry of a task's record. A user's task file is keyed by its content (the record's
    fingerprint) and its name, not by the directory it lies in: the same file in another
    checkout, or given by another path, finds the same entry."""
    record = task_identity(record)
    fingerprint = record.pop("fingerprint")  # keyed beside the record, as before records carried it
    key = json.dumps({"task": record, "fingerprint": fingerprint}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    name = record["name"].replace("/", "_").replace(":", "_")
    return cache / "references" / f"{name}-h{record['horizon']}-{digest}.json"


def load_references(
    task: Task, cache: Path, settings: ReferenceSettings | None = None
) -> References | None:
    """The cached references of ``task`` (with exactly ``settings``, if given), or None when there
    are none (or the entry is unreadable)."""
    try:
        refs = References.from_dict(json.loads(entry_path(task, cache).read_text())["references"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None if settings is not None and refs.settings != settings else refs


def save_references(
    task: Task, cache: Path, refs: References, seconds: float | None = None
) -> Path:
    record = task_record(task)
    path = entry_path_of(record, cache)
    path.parent.mkdir(parents=True, exist_ok=True)
    entry: dict[str, Any] = {
        "task": record,
        "fingerprint": record["fingerprint"],
        "references": refs.as_dict(),
        "seconds": seconds,
    }
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(entry, indent=1))
    partial.replace(path)
    return path


def load_or_compute(
    task: Task, cache: Path, settings: ReferenceSettings | None = None
) -> References:
    """The cached references of ``task`` with ``settings`` (default: the default settings),
    computed and cached first if there are none."""
    settings = settings or ReferenceSettings()
    refs = load_references(task, cache, settings)
    if refs is None:
        refs = compute_references(task, settings)
        save_references(task, cache, refs)
    return refs


__all__ = [
    "entry_path",
    "load_or_compute",
    "load_references",
    "save_references",
    "task_fingerprint",
]
