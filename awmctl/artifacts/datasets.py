"""Dataset directories: episodes collected by ``awmctl collect``."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from awmctl import store
from awmctl.errors import BadInputError
from awmctl.stats import RunningSummary
from awmctl.tasks import Episode, Task, returns_of, task_record

DATASET_KIND = "dataset"


def dataset_bytes(task: Task, episodes: int) -> int:
    """Bytes a dataset of ``episodes`` episodes holds (float32 observations, actions, rewards,
    returns)."""
    per_episode = (task.horizon + 1) * task.obs_size + task.horizon * (task.action_size + 1) + 1
    return 4 * episodes * per_episode


def check_room(out: str | os.PathLike, task: Task, episodes: int) -> None:
    """Refuse, before any work, a collection that the disk under ``out`` cannot hold (memory is
    bounded by :func:`write_dataset`'s parts, whatever the number of episodes)."""
    need = dataset_bytes(task, episodes)
    parent = Path(out).absolute()
    while not parent.exists():
        parent = parent.parent
    disk = shutil.disk_usage(parent).free
    if need > disk:
        raise BadInputError(
            f"{episodes} episodes need {need / 1e9:.3g} GB on disk, and {parent} has "
            f"{disk / 1e9:.3g} GB free; collect fewer --episodes (this task: "
            f"{dataset_bytes(task, 1)} bytes per episode), or several datasets"
        )


def _arrays(episodes: Episode) -> dict[str, np.ndarray]:
    return {
        "observations": np.asarray(episodes.observations),
        "actions": np.asarray(episodes.actions),
        "rewards": np.asarray(episodes.rewards),
        "returns": np.asarray(returns_of(episodes)),
    }


def write_dataset(
    out: str | os.PathLike,
    chunks: Iterable[Episode],
    task: Task,
    extra_meta: dict[str, Any],
    overwrite: bool = False,
    part_episodes: int | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Stream episodes into a dataset directory, written atomically; returns its ``meta.json``.

    Chunks are gathered into parts of at most ``part_episodes`` episodes (None: one part), each
    written as soon as it is full, so memory holds one part whatever the number of episodes. A
    dataset of one part has the single ``arrays/`` checkpoint of every awmctl dataset; a larger
    one has ``parts/NNNNN/arrays/``, joined again by :func:`load_dataset`. The return summary
    (mean, std, min, max) is in ``meta["summary"]``.
    """
    with store.atomic_output_dir(out, overwrite) as staging:
        stats, sizes, pending, done, dtype = RunningSummary(), [], [], 0, "float32"
        in_part = 0  # episodes in ``pending``

        def flush() -> None:
            if not pending:
                return
            part = staging / "parts" / f"{len(sizes):05d}"
            part.mkdir(parents=True)
            store.save_arrays(part, _arrays(Episode(*(np.concatenate(x) for x in zip(*pending)))))
            sizes.append(in_part)
            pending.clear()

        for chunk in chunks:
            dtype = str(np.asarray(chunk.observations).dtype)
            stats.add(returns_of(chunk))
            pending.append(chunk)
            done += chunk.rewards.shape[0]
            in_part += chunk.rewards.shape[0]
            if part_episodes is not None and in_part >= part_episodes:
                flush()
                in_part = 0
            if on_chunk is not None:
                on_chunk(done)
        flush()
        if len(sizes) == 1:  # the layout of every dataset that fits one part
            os.replace(staging / "parts" / "00000" / store.ARRAYS_DIR, staging / store.ARRAYS_DIR)
            shutil.rmtree(staging / "parts")
        like = _like(done, task.horizon, task.obs_size, task.action_size, dtype)
        meta = store.base_meta(
            DATASET_KIND,
            task=task_record(task),
            episodes=done,
            sizes={"obs": task.obs_size, "state": task.state_size, "action": task.action_size},
            leaves=store.leaf_specs(like),
            **({"parts": sizes} if len(sizes) > 1 else {}),
            **{**extra_meta, "summary": {**extra_meta.get("summary", {}), **stats.summary()}},
        )
        store.write_json_atomic(staging / store.META_FILE, meta)
    return meta


def save_dataset(
    out: str | os.PathLike,
    episodes: Episode,
    task: Task,
    extra_meta: dict[str, Any],
    overwrite: bool = False,
) -> Path:
    """Write a dataset directory of episodes already in memory, atomically; returns its path."""
    write_dataset(out, [episodes], task, extra_meta, overwrite)
    return Path(out)


def _like(n: int, h: int, o: int, a: int, dtype: str) -> dict[str, jax.ShapeDtypeStruct]:
    return {
        "observations": jax.ShapeDtypeStruct((n, h + 1, o), np.dtype(dtype)),
        "actions": jax.ShapeDtypeStruct((n, h, a), np.dtype(dtype)),
        "rewards": jax.ShapeDtypeStruct((n, h), np.dtype(dtype)),
        "returns": jax.ShapeDtypeStruct((n,), np.dtype(dtype)),
    }


def load_dataset(directory: str | os.PathLike) -> tuple[Episode, dict[str, Any]]:
    """Read a dataset directory, check its shapes, and refuse NaN/Inf with a one-line error."""
    meta = store.read_meta(directory, DATASET_KIND)
    n, h = meta["episodes"], meta["task"]["horizon"]
    o, a = meta["sizes"]["obs"], meta["sizes"]["action"]
    dtype = meta["leaves"].get("['observations']", {}).get("dtype", "float32")
    parts = meta.get("parts")
    if parts is None:
        arrays = store.restore_arrays(directory, _like(n, h, o, a, dtype), meta)
    else:
        if not (isinstance(parts, list) and sum(parts) == n):
            raise BadInputError(
                f"{directory}/meta.json lists parts of {parts} episodes, not {n}; re-create "
                f"{directory}"
            )
        pieces = []
        for i, size in enumerate(parts):  # each part's arrays are checked like a whole dataset's
            like = _like(size, h, o, a, dtype)
            pieces.append(
                store.restore_arrays(
                    Path(directory) / "parts" / f"{i:05d}", like, {"leaves": store.leaf_specs(like)}
                )
            )
        arrays = {k: np.concatenate([np.asarray(p[k]) for p in pieces]) for k in pieces[0]}
    for name in ("observations", "actions", "rewards"):
        if not np.all(np.isfinite(arrays[name])):
            raise BadInputError(f"{directory}: {name} contain NaN or Inf; collect the data again")
    episodes = Episode(
        np.asarray(arrays["observations"]),
        np.asarray(arrays["actions"]),
        np.asarray(arrays["rewards"]),
    )
    return episodes, meta


__all__ = [
    "DATASET_KIND",
    "check_room",
    "dataset_bytes",
    "load_dataset",
    "save_dataset",
    "write_dataset",
]
