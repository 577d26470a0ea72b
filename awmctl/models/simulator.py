"""The task's own differentiable dynamics behind the world-model interface.

BPO through it is the analytic policy gradient; nothing is fitted. Its ``predict`` is the
one-step transition of each recorded state (teacher forcing), so it scores zero loss on data
collected from the same task.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from awmctl.models.base import Carry, WorldModel, step_index, observation
from awmctl.tasks import Task


class SimulatorModel(WorldModel):
    task: Task
    name: str = eqx.field(static=True)
    max_horizon: None = eqx.field(static=True)

    def __init__(self, task: Task):
        self.task = task
        self.name = "simulator"
        self.max_horizon = None

    @property
    def state_size(self) -> int:
        return self.task.state_size

    @property
    def action_size(self) -> int:
        return self.task.action_size

    @property
    def trainable(self) -> bool:
        return False

    def predict(
        self,
        states: Float[Array, "T state"],
        actions: Float[Array, "H act"],
        *,
        key: Any = None,
    ) -> Float[Array, "H state"]:
        steps = jnp.arange(actions.shape[0])
        return jax.vmap(self.task.transition)(states[:-1], actions, steps)

    def start(self, obs0: Float[Array, " obs"]) -> Carry:
        return (obs0[:-1], step_index(obs0))

    def step(self, carry: Carry, action: Float[Array, " act"]) -> tuple[Carry, Float[Array, " obs"]]:
        state, k = carry
        nxt = self.task.transition(state, action, k)
        return (nxt, k + 1), observation(nxt, k + 1)
