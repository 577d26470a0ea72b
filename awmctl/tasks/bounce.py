"""The paper's one-bounce block toy (``docs/tasks.md``).

A block on a line, launched toward a wall at ``x_w`` (default -1) with linear drag, must end the
episode at the goal ``x_g`` (task parameter ``goal``, default 0.5). State ``(x, v, x_w, x_g)``
(the wall and goal entries never change); the observation appends the step index (size 5).

* reset: ``(0, 0, x_w, x_g)``;
* step ``k = 0``: the state is *set* to ``(0, v0, x_w, x_g)`` with
  ``v0 = launch_gain * (a - launch_offset) = 10 * (a - 2)``, so ``a`` in [-1, 1] launches at
  ``v0`` in [-30, -10] (always toward the wall); reward 0;
* steps ``k >= 1`` (action ignored), with the candidate displacement ``dx = v * dt`` computed from
  the velocity *before* the update:

  - collision if ``x + dx <= x_w``: ``v <- -v`` (no drag that step) and
    ``x <- 2 * x_w - x - dx`` (mirror image across the wall);
  - otherwise ``v <- (1 - c * dt) * v`` and ``x <- x + dx`` (old velocity);

* reward 0 except at ``k = L - 1``: ``-(x_{L-1} - x_g)^2`` on the state *before* the last update.

The collision test uses the task's wall position and the reward the task's goal (the known
constants, not the state's copies; identical for true-simulator states, and immune to a world
model's error on those two entries). Only one bounce can ever happen (one wall, the block moves
away from it afterwards, slowing down).

Since the collision step skips the drag, the final position jumps by ``c * dt * |v| * dt`` where
the step of the bounce changes as ``a`` varies (small discontinuities), and is smooth in ``a``
between those points.
"""

from __future__ import annotations

import math
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from awmctl.tasks.base import ParamValue, Task
from awmctl.tasks.domains import NONNEGATIVE, POSITIVE, Domain
from awmctl.tasks.info import TaskInfo

DEFAULTS: tuple[tuple[str, float], ...] = (
    ("goal", 0.5),
    ("dt", 0.01),
    ("friction", 10.0),
    ("wall", -1.0),
    ("launch_gain", 10.0),
    ("launch_offset", 2.0),
)
DEFAULT_HORIZON = 100
PARAM_NAMES: tuple[str, ...] = tuple(k for k, _ in DEFAULTS)
#: the step is positive and friction non-negative; the goal, the wall and the launch are any
#: finite numbers
DOMAINS: dict[str, Domain] = {"dt": POSITIVE, "friction": NONNEGATIVE}


class BounceTask(Task):
    """The one-bounce block (see module docstring)."""

    # Unbounded 4-dimensional state and one action (only the first one matters).
    state_size: ClassVar[int] = 4
    action_size: ClassVar[int] = 1
    state_bounds: ClassVar[tuple[tuple[float, float], ...]] = ((-math.inf, math.inf),) * 4

    name: str = eqx.field(static=True)
    horizon: int = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    goal: float = eqx.field(static=True)
    friction: float = eqx.field(static=True)
    wall: float = eqx.field(static=True)
    launch_gain: float = eqx.field(static=True)
    launch_offset: float = eqx.field(static=True)

    def __init__(
        self,
        horizon: int = DEFAULT_HORIZON,
        goal: float = 0.5,
        dt: float = 0.01,
        friction: float = 10.0,
        wall: float = -1.0,
        launch_gain: float = 10.0,
        launch_offset: float = 2.0,
        name: str = "bounce",
    ):
        horizon = int(horizon)
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        values = {
            "goal": goal,
            "dt": dt,
            "friction": friction,
            "wall": wall,
            "launch_gain": launch_gain,
            "launch_offset": launch_offset,
        }
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{key} must be a number, got {value!r}")
            if not math.isfinite(float(value)):
                raise ValueError(f"{key} must be finite, got {value!r}")
        if not float(dt) > 0.0:
            raise ValueError(f"dt must be > 0, got {dt}")
        if not float(friction) >= 0.0:
            raise ValueError(f"friction must be >= 0, got {friction}")
        if not float(wall) < 0.0:
            raise ValueError(f"wall must be < 0 (the block starts at x = 0, right of it): {wall}")
        self.name = name
        self.horizon = horizon
        self.dt = float(dt)
        self.goal = float(goal)
        self.friction = float(friction)
        self.wall = float(wall)
        self.launch_gain = float(launch_gain)
        self.launch_offset = float(launch_offset)

    # ------------------------------------------------------------------ sizes and description

    @property
    def params(self) -> dict[str, ParamValue]:
        return {
            "goal": self.goal,
            "dt": self.dt,
            "friction": self.friction,
            "wall": self.wall,
            "launch_gain": self.launch_gain,
            "launch_offset": self.launch_offset,
        }

    # ------------------------------------------------------------------------------ dynamics

    def initial_state(self, key: PRNGKeyArray) -> Float[Array, " 4"]:
        del key  # deterministic reset
        return jnp.asarray([0.0, 0.0, self.wall, self.goal], dtype=float)

    def transition(
        self, state: Float[Array, " 4"], action: Float[Array, " 1"], k: Int[Array, ""]
    ) -> Float[Array, " 4"]:
        a = action[0].astype(state.dtype)
        x, v, x_w, x_g = state[0], state[1], state[2], state[3]
        dx = v * self.dt
        hit = x + dx <= self.wall
        moved = jnp.stack(
            [
                jnp.where(hit, 2.0 * self.wall - x - dx, x + dx),
                jnp.where(hit, -v, (1.0 - self.friction * self.dt) * v),
                x_w,
                x_g,
            ]
        )
        zero = jnp.zeros_like(a)
        launched = jnp.stack(
            [
                zero,
                self.launch_gain * (a - self.launch_offset),
                jnp.full_like(a, self.wall),
                jnp.full_like(a, self.goal),
            ]
        )
        return jnp.where(k == 0, launched, moved)

    def reward(
        self,
        state: Float[Array, " 4"],
        action: Float[Array, " 1"],
        k: Int[Array, ""],
        next_state: Float[Array, " 4"],
    ) -> Float[Array, ""]:
        err = state[0] - self.goal
        r = -(err * err)
        return jnp.where(k == self.horizon - 1, r, jnp.zeros_like(r))


# ======================================================================================
# Registry entry
# ======================================================================================


def build(horizon: int, params: dict[str, ParamValue]) -> Task:
    """Build from CLI-style parameters (floats); raises ValueError if one is bad."""
    unknown = sorted(set(params) - set(PARAM_NAMES))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(PARAM_NAMES)}"
        )
    values = {**dict(DEFAULTS), **params}
    for key, value in values.items():
        if isinstance(value, tuple | list | str):
            raise ValueError(f"{key} must be one number, got {value!r}")
    return BounceTask(horizon, **values)  # type: ignore[arg-type]


#: The registry's entry for the bounce task.
TASKS = (
    TaskInfo(
        name="bounce",
        build=build,
        default_horizon=DEFAULT_HORIZON,
        title="One-bounce block: launch toward a wall so the block ends at the goal",
        param_names=PARAM_NAMES,
        domains=DOMAINS,
        in_paper=True,
        notes=(
            "v0 = 10*(a-2); collision reverses v (no drag that step) and mirrors x; "
            "reward -(x_{L-1} - goal)^2 at the last step only"
        ),
    ),
)

__all__ = ["TASKS", "BounceTask"]
