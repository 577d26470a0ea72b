"""Policy directories written by ``optimize-policy``: every seed's final and best parameters."""

from __future__ import annotations

import os
from typing import Any

import equinox as eqx
import jax

from awmctl import store
from awmctl.artifacts.records import task_from_meta
from awmctl.errors import BadInputError
from awmctl.policies import Policy, build_policy
from awmctl.store import is_shape
from awmctl.tasks import Task, task_record

POLICY_KIND = "policy"


def save_policies(
    directory: str | os.PathLike,
    final: Any,
    best: Any,
    template: Policy,
    task: Task,
    seeds: list[int],
    **fields: Any,
) -> dict[str, Any]:
    """Write every seed's final and best policy parameters (leading seed axis) into
    ``directory``; return the ``meta.json`` describing them (with ``fields``)."""
    leaves = store.save_arrays(directory, {"final": final, "best": best})
    record = {
        "kind": template.name,
        "obs_size": task.obs_size,
        "action_size": task.action_size,
        "horizon": task.horizon,
        "hyper": template.hyperparameters(),
        "seeds": len(seeds),
    }
    return store.base_meta(
        POLICY_KIND,
        task=task_record(task),
        policy=record,
        seeds=list(seeds),
        leaves=leaves,
        **fields,
    )


def load_policy(
    directory: str | os.PathLike, which: str = "best", seed_index: int = 0
) -> tuple[Policy, Task, dict[str, Any]]:
    """Restore one seed's policy from an ``optimize-policy`` directory: ``(policy, task, meta)``."""
    meta = store.read_meta(directory, POLICY_KIND)
    task = task_from_meta(meta)
    record = meta["policy"]
    n = record["seeds"]
    if not 0 <= seed_index < n:
        raise BadInputError(
            f"{directory} holds {n} seed(s); seed index {seed_index} does not exist"
        )
    skeleton = eqx.filter_eval_shape(
        build_policy,
        record["kind"],
        record["obs_size"],
        record["action_size"],
        record["horizon"],
        record.get("hyper"),
        key=jax.random.key(0),
    )
    params, static = eqx.partition(skeleton, is_shape)
    stacked = jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct((n, *x.shape), x.dtype), params)
    arrays = store.restore_arrays(directory, {"final": stacked, "best": stacked}, meta)
    one = jax.tree_util.tree_map(lambda x: x[seed_index], arrays[which])
    return eqx.combine(one, static), task, meta


__all__ = ["POLICY_KIND", "load_policy", "save_policies"]
