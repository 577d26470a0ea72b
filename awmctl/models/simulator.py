"""The task's own differentiable dynamics behind the world-model interface.

BPO through it is the analytic policy gradient; nothing is fitted. Its ``predict`` is the
one-step transition of each recorded state (teacher forcing), so it scores zero loss on data
collected from the same task.
"""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from awmctl.models.one_step import AbstractOneStepModel
from awmctl.tasks import Task


class SimulatorModel(AbstractOneStepModel):
    task: Task
    name: str = eqx.field(static=True)
    max_horizon: None = eqx.field(static=True)
    trainable: ClassVar[bool] = False
    direct_path: ClassVar[bool] = False

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

    def hyperparameters(self) -> dict[str, Any]:
        return {}

    def with_normalizers(
        self, observations: Float[Array | np.ndarray, "N T obs"]
    ) -> SimulatorModel:
        return self  # the true dynamics need no statistics

    def state_scale(self) -> Float[Array, " state"]:
        return jnp.ones((self.state_size,))

    def next_state(
        self, state: Float[Array, " state"], action: Float[Array, " act"], k: Int[Array, ""]
    ) -> Float[Array, " state"]:
        return self.task.transition(state, action, k)


__all__ = ["SimulatorModel"]
