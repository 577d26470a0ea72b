"""Small pytree helpers shared by the training loops."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def select_tree(cond: Any, new: Any, old: Any) -> Any:
    """Leafwise ``where(cond, new, old)``; ``cond`` may be a scalar or a per-seed vector that
    indexes the leading axis of every leaf (it is reshaped to broadcast explicitly)."""
    cond = jnp.asarray(cond)

    def pick(n, o):
        return jnp.where(jnp.reshape(cond, cond.shape + (1,) * (jnp.ndim(n) - cond.ndim)), n, o)

    return jax.tree_util.tree_map(pick, new, old)


def seed_slice(tree: Any, index: int) -> Any:
    """The ``index``-th seed of a pytree whose leaves all have a leading seed axis."""
    return jax.tree_util.tree_map(lambda x: x[index], tree)


__all__ = ["seed_slice", "select_tree"]
