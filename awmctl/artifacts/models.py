"""World-model directories. Equinox has no Orbax bridge, so the model's kind and hyper-parameters
are stored as JSON, a skeleton is rebuilt from them, and the arrays are restored into it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from awmctl import store
from awmctl.artifacts.records import task_from_meta
from awmctl.models import AbstractWorldModel, build_model, ensemble_record
from awmctl.store import is_shape
from awmctl.tasks import Task, task_record

MODEL_KIND = "model"


def model_record(
    model: AbstractWorldModel, horizon: int, context: int | None = None
) -> dict[str, Any]:
    """The ``model`` entry of a ``meta.json``: enough to rebuild the skeleton.

    ``horizon`` is the episode length of the training data; ``context`` the length the model
    was built for (default: the same). An ensemble adds ``ensemble`` (its members); its
    ``parameters`` count every member's.
    """
    return {
        "name": model.name,
        "state_size": model.state_size,
        "action_size": model.action_size,
        "horizon": horizon,
        "context": horizon if context is None else context,
        "max_horizon": model.max_horizon,
        "hyper": model.hyperparameters(),
        "parameters": parameter_count(model),
        **ensemble_record(model),
    }


def parameter_count(model: AbstractWorldModel) -> int:
    """Float parameters of a model, or of its skeleton (``eqx.filter_eval_shape``)."""
    arrays = (
        x
        for x in jax.tree_util.tree_leaves(model)
        if isinstance(x, jax.Array | np.ndarray | jax.ShapeDtypeStruct)
    )
    return int(sum(np.size(x) for x in arrays if jnp.issubdtype(x.dtype, jnp.inexact)))


def save_model(
    directory: str | os.PathLike,
    model: AbstractWorldModel,
    task: Task,
    context: int | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Write ``model``'s arrays into ``directory`` and return the ``meta.json`` that describes
    them (with ``fields``); the caller completes the directory with it (``Run.finish`` or
    :func:`~awmctl.artifacts.write_meta`)."""
    leaves = store.save_arrays(directory, eqx.filter(model, eqx.is_array))
    return store.base_meta(
        MODEL_KIND,
        task=task_record(task),
        model=model_record(model, task.horizon, context),
        leaves=leaves,
        **fields,
    )


def load_model(directory: str | os.PathLike) -> tuple[AbstractWorldModel, Task, dict[str, Any]]:
    """Restore a fitted model directory: ``(model, task, meta)``.

    Refuses (one line, :class:`~awmctl.errors.BadInputError`) anything but a complete model
    directory whose every array matches the recorded structure.
    """
    meta = store.read_meta(directory, MODEL_KIND)
    task = task_from_meta(meta)
    record = meta["model"]
    # Only the structure is needed: building it abstractly compiles and runs no initialiser
    # (eagerly, every weight's shape cost a compilation of its own: seconds per command).
    skeleton = eqx.filter_eval_shape(
        build_model,
        record["name"],
        record["state_size"],
        record["action_size"],
        record["context"],
        record.get("hyper", {}),
        key=jax.random.key(0),
        task=task,
        ensemble=record.get("ensemble", 1),
    )
    arrays, static = eqx.partition(skeleton, is_shape)
    restored = store.restore_arrays(Path(directory), arrays, meta)
    return eqx.combine(restored, static), task, meta


__all__ = ["MODEL_KIND", "load_model", "model_record", "save_model"]
