"""A linear-quadratic task of a user's own (docs/tasks.md, "Your own task")."""

import math
from typing import ClassVar

import equinox as eqx
import jax

import awmctl


class LinearQuadratic(awmctl.Task):
    """Linear-quadratic regulator: steer x to 0 under x' = a x + b u, paying q x^2 + r u^2."""

    horizon: int = eqx.field(static=True, default=20)
    a: float = eqx.field(static=True, default=1.0)
    b: float = eqx.field(static=True, default=0.5)
    q: float = eqx.field(static=True, default=1.0)
    r: float = eqx.field(static=True, default=1.0)
    x0: float = eqx.field(static=True, default=1.0)
    x0_noise: float = eqx.field(static=True, default=0.0)  # std of a random start around x0

    name: ClassVar[str] = "linear-quadratic"
    state_size: ClassVar[int] = 1
    action_size: ClassVar[int] = 1
    dt: ClassVar[float] = 1.0
    state_bounds: ClassVar[tuple[tuple[float, float], ...]] = ((-math.inf, math.inf),)
    # what --task-param accepts (a parameter not named here: any finite number)
    param_domains: ClassVar[dict] = {
        "q": awmctl.tasks.NONNEGATIVE,
        "r": awmctl.tasks.POSITIVE,
        "x0_noise": awmctl.tasks.NONNEGATIVE,
    }

    @property
    def params(self):
        return {
            "a": self.a,
            "b": self.b,
            "q": self.q,
            "r": self.r,
            "x0": self.x0,
            "x0_noise": self.x0_noise,
        }

    def initial_state(self, key):
        return self.x0 + self.x0_noise * jax.random.normal(key, (1,))

    def transition(self, state, action, k):
        return self.a * state + self.b * action

    def reward(self, state, action, k, next_state):
        return -(self.q * state[0] ** 2 + self.r * action[0] ** 2)


def optimal_return(task: LinearQuadratic) -> float:
    """-P_0 x0^2 from the finite-horizon Riccati recursion (P_H = 0): the best return any policy
    can reach from x0."""
    p = 0.0
    for _ in range(task.horizon):
        p = task.q + task.a**2 * p - (task.a * task.b * p) ** 2 / (task.r + task.b**2 * p)
    return -p * task.x0**2
