"""Saving and restoring world models: Equinox has no Orbax bridge, so we store the model's kind
and hyper-parameters as JSON, rebuild a skeleton from them, and restore the arrays into it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import equinox as eqx
import jax

from awmctl import store
from awmctl.data import task_from_meta
from awmctl.models import WorldModel, build_model
from awmctl.tasks import Task

MODEL_KIND = "model"


def model_record(model: WorldModel, horizon: int, context: int | None = None) -> dict[str, Any]:
    """The ``model`` entry of a ``meta.json``: enough to rebuild the skeleton.

    ``horizon`` is the episode length of the training data; ``context`` the length the model
    was built for (default: the same).
    """
    return {
        "name": model.name,
        "state_size": model.state_size,
        "action_size": model.action_size,
        "horizon": horizon,
        "context": horizon if context is None else context,
        "max_horizon": model.max_horizon,
        "hyper": model.hyperparameters(),
        "parameters": int(sum(x.size for x in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array)))),
    }


def skeleton(record: dict[str, Any], task: Task | None = None) -> WorldModel:
    """A model with the recorded structure (arrays to be overwritten by a restore)."""
    return build_model(
        record["name"], record["state_size"], record["action_size"], record["context"],
        record.get("hyper", {}), key=jax.random.key(0), task=task,
    )


def save_model_arrays(directory: str | os.PathLike, model: WorldModel) -> dict[str, Any]:
    """Write the model's arrays; returns the leaf specs for ``meta["leaves"]``."""
    return store.save_arrays(directory, eqx.filter(model, eqx.is_array))


def load_model(directory: str | os.PathLike) -> tuple[WorldModel, Task, dict[str, Any]]:
    """Restore a fitted model directory: ``(model, task, meta)``.

    Refuses (one line, :class:`~awmctl.errors.BadInputError`) anything but a complete model
    directory whose every array matches the recorded structure.
    """
    meta = store.read_meta(directory, MODEL_KIND)
    task = task_from_meta(meta)
    skel = skeleton(meta["model"], task)
    arrays, static = eqx.partition(skel, eqx.is_array)
    restored = store.restore_arrays(Path(directory), arrays, meta)
    return eqx.combine(restored, static), task, meta
