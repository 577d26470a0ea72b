"""Small pytree helpers shared by the training loops."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


def select_tree(cond: Any, new: Any, old: Any) -> Any:
    """Leafwise ``where(cond, new, old)``; ``cond`` may be a scalar or a per-seed vector that
    indexes the leading axis of every leaf (it is reshaped to broadcast explicitly)."""
    cond = jnp.asarray(cond)

    def pick(n, o):
        return jnp.where(jnp.reshape(cond, cond.shape + (1,) * (jnp.ndim(n) - cond.ndim)), n, o)

    return jax.tree_util.tree_map(pick, new, old)


class BestSoFar(NamedTuple):
    """Per seed, the best evaluation return so far and the parameters that reached it."""

    params: Any  # leading seed axis
    returns: np.ndarray  # float64 [seeds]

    @classmethod
    def start(cls, params: Any, seeds: int) -> BestSoFar:
        return cls(params, np.full(seeds, -np.inf))

    def update(self, params: Any, returns: np.ndarray) -> BestSoFar:
        improved = np.asarray(returns) > self.returns
        return BestSoFar(select_tree(improved, params, self.params), np.where(improved, returns, self.returns))

    def checkpoint(self) -> dict[str, Any]:
        """As arrays for an Orbax checkpoint (inverse: :meth:`restore`)."""
        return {"params": self.params, "returns": jnp.asarray(self.returns, jnp.float32)}

    @classmethod
    def restore(cls, saved: dict[str, Any]) -> BestSoFar:
        return cls(saved["params"], np.asarray(saved["returns"], np.float64))
