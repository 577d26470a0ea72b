"""Small pytree helpers shared by the training loops."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def select_tree(cond: Any, new: Any, old: Any) -> Any:
    """Leafwise ``where(cond, new, old)``; ``cond`` may be a scalar or a per-seed vector that
    indexes the leading axis of every leaf (it is reshaped to broadcast explicitly)."""
    return _select(jnp, cond, new, old)


def select_rows(cond: np.ndarray, new: Any, old: Any) -> Any:
    """:func:`select_tree` on the host, in NumPy (no program compiled per parameter shape)."""
    return _select(np, cond, new, old)


def repeated(tree: Any, n: int) -> Any:
    """``tree`` with every leaf repeated along a new leading axis of size ``n`` (a broadcast:
    no copy until a leaf is written)."""
    return jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (n, *x.shape)), tree)


def seed_slice(tree: Any, index: int) -> Any:
    """The ``index``-th seed of a pytree whose leaves all have a leading seed axis, as NumPy
    arrays on the host (indexing device arrays one by one would compile a program per shape)."""
    return jax.tree_util.tree_map(lambda x: np.asarray(x)[index], tree)


def _select(xp: Any, cond: Any, new: Any, old: Any) -> Any:
    cond = xp.asarray(cond)

    def pick(n, o):
        n, o = xp.asarray(n), xp.asarray(o)
        return xp.where(xp.reshape(cond, cond.shape + (1,) * (n.ndim - cond.ndim)), n, o)

    return jax.tree_util.tree_map(pick, new, old)


__all__ = ["repeated", "seed_slice", "select_rows", "select_tree"]
