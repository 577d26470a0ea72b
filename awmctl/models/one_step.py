"""One-step world models, ``s_{t+1} = f(s_t, a_t, t)``: the Markovian MLP and the simulator.

Both are trained (or scored) one step ahead on recorded states and feed on their own
predictions in imagination, so the gradient from ``s_t`` to ``a_k`` is a product of ``t - k``
Jacobians. Only :meth:`AbstractOneStepModel.next_state` differs between them.
"""

from __future__ import annotations

import abc
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from awmctl.models.base import AbstractWorldModel, Carry
from awmctl.tasks import observation, step_index


class AbstractOneStepModel(AbstractWorldModel):
    @abc.abstractmethod
    def next_state(
        self, state: Float[Array, " state"], action: Float[Array, " act"], k: Int[Array, ""]
    ) -> Float[Array, " state"]:
        """``s_{k+1}`` from ``s_k`` and ``a_k`` at integer step ``k``."""

    def predict(
        self,
        states: Float[Array, "T state"],
        actions: Float[Array, "H act"],
        *,
        key: Any = None,
    ) -> Float[Array, "H state"]:
        steps = jnp.arange(actions.shape[0])
        return jax.vmap(self.next_state)(states[:-1], actions, steps)

    def start(self, obs0: Float[Array, " obs"]) -> Carry:
        return (obs0[:-1], step_index(obs0))

    def step(
        self, carry: Carry, action: Float[Array, " act"]
    ) -> tuple[Carry, Float[Array, " obs"]]:
        state, k = carry
        nxt = self.next_state(state, action, k)
        return (nxt, k + 1), observation(nxt, k + 1)


__all__ = ["AbstractOneStepModel"]
