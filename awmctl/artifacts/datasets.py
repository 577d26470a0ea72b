"""Dataset directories: episodes collected by ``awmctl collect``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import jax
import numpy as np

from awmctl import store
from awmctl.errors import BadInputError
from awmctl.tasks import Episode, Task, returns_of, task_record

DATASET_KIND = "dataset"


def dataset_bytes(task: Task, episodes: int) -> int:
    """Bytes a dataset of ``episodes`` episodes holds (float32 observations, actions, rewards,
    returns)."""
    per_episode = (task.horizon + 1) * task.obs_size + task.horizon * (task.action_size + 1) + 1
    return 4 * episodes * per_episode


def check_room(out: str | os.PathLike, task: Task, episodes: int) -> None:
    """Refuse, before any work, a collection that this machine's free memory or the disk under
    ``out`` cannot hold (it is built in memory, then written; both need room for it)."""
    need = dataset_bytes(task, episodes)
    parent = Path(out).absolute()
    while not parent.exists():
        parent = parent.parent
    disk = shutil.disk_usage(parent).free
    try:
        memory = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not a POSIX system that reports it
        memory = None
    gb = lambda n: f"{n / 1e9:.3g} GB"  # noqa: E731
    fix = f"collect fewer --episodes (this task: {dataset_bytes(task, 1)} bytes per episode), or several datasets"
    if need > disk:
        raise BadInputError(f"{episodes} episodes need {gb(need)} on disk, and {parent} has {gb(disk)} free; {fix}")
    # twice: the chunks as they are collected, and the joined arrays
    if memory is not None and 2 * need > memory:
        raise BadInputError(f"{episodes} episodes need about {gb(2 * need)} of memory to collect, and "
                            f"{gb(memory)} is available; {fix}")


def save_dataset(
    out: str | os.PathLike,
    episodes: Episode,
    task: Task,
    extra_meta: dict[str, Any],
    overwrite: bool = False,
) -> Path:
    """Write a dataset directory atomically; returns its path."""
    arrays = {
        "observations": np.asarray(episodes.observations),
        "actions": np.asarray(episodes.actions),
        "rewards": np.asarray(episodes.rewards),
        "returns": np.asarray(returns_of(episodes)),
    }
    n = arrays["observations"].shape[0]
    with store.atomic_output_dir(out, overwrite) as staging:
        leaves = store.save_arrays(staging, arrays)
        meta = store.base_meta(
            DATASET_KIND,
            task=task_record(task),
            episodes=n,
            sizes={"obs": task.obs_size, "state": task.state_size, "action": task.action_size},
            leaves=leaves,
            **extra_meta,
        )
        store.write_json_atomic(staging / store.META_FILE, meta)
    return Path(out)


def load_dataset(directory: str | os.PathLike) -> tuple[Episode, dict[str, Any]]:
    """Read a dataset directory, check its shapes, and refuse NaN/Inf with a one-line error."""
    meta = store.read_meta(directory, DATASET_KIND)
    n, h = meta["episodes"], meta["task"]["horizon"]
    o, a = meta["sizes"]["obs"], meta["sizes"]["action"]
    dtype = meta["leaves"].get("['observations']", {}).get("dtype", "float32")
    like = {
        "observations": jax.ShapeDtypeStruct((n, h + 1, o), np.dtype(dtype)),
        "actions": jax.ShapeDtypeStruct((n, h, a), np.dtype(dtype)),
        "rewards": jax.ShapeDtypeStruct((n, h), np.dtype(dtype)),
        "returns": jax.ShapeDtypeStruct((n,), np.dtype(dtype)),
    }
    arrays = store.restore_arrays(directory, like, meta)
    for name in ("observations", "actions", "rewards"):
        if not np.all(np.isfinite(arrays[name])):
            raise BadInputError(f"{directory}: {name} contain NaN or Inf; collect the data again")
    episodes = Episode(
        np.asarray(arrays["observations"]), np.asarray(arrays["actions"]), np.asarray(arrays["rewards"])
    )
    return episodes, meta


__all__ = ["DATASET_KIND", "load_dataset", "save_dataset"]
