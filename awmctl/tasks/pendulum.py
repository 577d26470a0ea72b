"""The paper's double-pendulum "initial angle" task (``docs/tasks.md``).

A planar double pendulum (point masses ``M1``, ``M2`` on massless rods ``L1``, ``L2``, angles from
the downward vertical, not wrapped). The agent controls a single thing: the first pendulum's
initial angle, set by the action at step 0. The episode (``L = horizon``):

* goal ``g`` in [-1, 1]^2 (task parameter ``goal``); initial angles are ``angle_scale * g``
  (the spec's recommended convention for oddity 1: the *same* scale is applied to the goal in
  the step-0 reset and in the goal-state computation);
* ``goal_state`` = the state reached from ``(angle_scale*g0, 0, angle_scale*g1, 0)`` after
  ``L - 2`` intervals of ``dt``;
* reset: the state is ``goal_state`` itself (the authors' placeholder; step 0 overwrites it);
* step ``k = 0``: the state is *set* to ``(angle_scale*a, 0, angle_scale*g1, 0)``, reward 0;
* steps ``k >= 1``: the action is ignored, the state is integrated over one ``dt`` with JAX's
  adaptive Dormand-Prince ``odeint`` (default tolerances rtol = atol = 1.4e-8) over ``[0, dt]``
  (the system is autonomous, so the interval's start time does not matter);
* reward 0 except at ``k = L - 1``: ``-mean((s_{L-1} - goal_state)^2)`` over all four components,
  on the state *before* the last integration. The optimum (return 0) is ``a = g0``.

``angle_scale`` defaults to 180, the authors' code convention ("180" used as *radians*, spec
oddity 2); the ``double-pendulum-rad`` variant uses pi ("honest" pendulum).

Horizons below 2: ``goal_state`` is computed over ``max(L - 2, 0)`` intervals, so for ``L = 1``
it is the unintegrated start state ``(angle_scale*g0, 0, angle_scale*g1, 0)``; the only reward,
at ``k = 0``, is then evaluated on the reset state (= ``goal_state``) and is always 0 (a
degenerate task, allowed for completeness). For ``L = 2`` the last reward compares the freshly
set state with the goal start state: ``-(angle_scale*(a - g0))^2 / 4``.

Numerics: ``goal_state`` is computed once at construction in float64 (independently of the x64
flag in force) and stored as static Python floats; rollouts run in the default float dtype.
``odeint`` differentiates by a custom VJP (adjoint method), so this task supports reverse-mode
differentiation (``jax.grad``/``jax.vjp``) but not forward mode (``jax.jvp``/``jax.jacfwd``).
"""

from __future__ import annotations

import functools
import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.experimental.ode import odeint
from jaxtyping import Array, Float, Int, PRNGKeyArray

from awmctl.tasks.base import ParamValue, Task
from awmctl.tasks.domains import NONNEGATIVE, POSITIVE, Domain, vector
from awmctl.tasks.info import TaskInfo

#: Physics constants: gravity, rod lengths, masses.
DEFAULT_PHYSICS: tuple[tuple[str, float], ...] = (
    ("g", 9.8),
    ("L1", 1.0),
    ("L2", 1.0),
    ("M1", 1.0),
    ("M2", 1.0),
)
DEFAULT_GOAL: tuple[float, float] = (0.3, -0.5)
DEFAULT_ANGLE_SCALE = 180.0
DEFAULT_DT = 0.05
#: ``configs/envs/double_pend_default.py``: length = 10.
DEFAULT_HORIZON = 10

PARAM_NAMES: tuple[str, ...] = ("goal", "angle_scale", "dt", *(k for k, _ in DEFAULT_PHYSICS))
#: the goal lies in [-1, 1]^2 (scaled angles); lengths, masses, the step and the angle scale are
#: positive; gravity may be switched off
DOMAINS: dict[str, Domain] = {
    "goal": vector(2, low=-1.0, high=1.0),
    "angle_scale": POSITIVE,
    "dt": POSITIVE,
    "g": NONNEGATIVE,
    "L1": POSITIVE,
    "L2": POSITIVE,
    "M1": POSITIVE,
    "M2": POSITIVE,
}


def derivatives(
    state: Float[Array, " 4"], g: float, L1: float, L2: float, M1: float, M2: float
) -> Float[Array, " 4"]:
    """Time derivative of ``(theta1, omega1, theta2, omega2)``."""
    th1, w1, th2, w2 = state[0], state[1], state[2], state[3]
    delta = th2 - th1
    sin_d, cos_d = jnp.sin(delta), jnp.cos(delta)
    den1 = (M1 + M2) * L1 - M2 * L1 * cos_d * cos_d
    dw1 = (
        M2 * L1 * w1 * w1 * sin_d * cos_d
        + M2 * g * jnp.sin(th2) * cos_d
        + M2 * L2 * w2 * w2 * sin_d
        - (M1 + M2) * g * jnp.sin(th1)
    ) / den1
    den2 = (L2 / L1) * den1
    dw2 = (
        -M2 * L2 * w2 * w2 * sin_d * cos_d
        + (M1 + M2) * (g * jnp.sin(th1) * cos_d - L1 * w1 * w1 * sin_d - g * jnp.sin(th2))
    ) / den2
    return jnp.stack([w1, dw1, w2, dw2])


def integrate_interval(
    state: Float[Array, " 4"], dt: float, physics: tuple[tuple[str, float], ...]
) -> Float[Array, " 4"]:
    """One interval ``[0, dt]`` of the adaptive Dormand-Prince solver (default tolerances)."""
    ts = jnp.asarray([0.0, dt], dtype=state.dtype)
    return odeint(_vector_field(physics), state, ts)[-1]


@functools.lru_cache(maxsize=64)
def _vector_field(physics: tuple[tuple[str, float], ...]):
    """``f(y, t)`` for ``odeint``; one object per constants, so JAX's solver caches hit."""
    p = dict(physics)

    def f(y, t):
        del t  # autonomous
        return derivatives(y, p["g"], p["L1"], p["L2"], p["M1"], p["M2"])

    return f


@functools.lru_cache(maxsize=64)
def _goal_state(
    start: tuple[float, float, float, float],
    intervals: int,
    dt: float,
    physics: tuple[tuple[str, float], ...],
) -> tuple[float, ...]:
    """State after ``intervals`` intervals of ``dt`` from ``start``, in float64, as floats."""
    if intervals <= 0:
        return tuple(float(v) for v in start)
    with jax.enable_x64(True):
        y = _integrate_many(
            jnp.asarray(start, dtype=jnp.float64),
            jnp.asarray(intervals, dtype=jnp.int64),
            jnp.asarray(dt, dtype=jnp.float64),
            physics,
        )
        return tuple(float(v) for v in y)


@functools.partial(jax.jit, static_argnums=3)
def _integrate_many(y0, intervals, dt, physics):
    # Same solver call as ``integrate_interval`` (odeint over [0, dt]), repeated; the count and
    # dt are traced so that one compilation serves every horizon and step size.
    f = _vector_field(physics)

    def body(_, y):
        return odeint(f, y, jnp.stack([jnp.zeros_like(dt), dt]))[-1]

    return jax.lax.fori_loop(0, intervals, body, y0)


class DoublePendulumTask(Task):
    """The double-pendulum initial-angle task (see module docstring)."""

    # Unbounded 4-dimensional state and one action (only the first one matters).
    state_size: ClassVar[int] = 4
    action_size: ClassVar[int] = 1
    state_bounds: ClassVar[tuple[tuple[float, float], ...]] = ((-math.inf, math.inf),) * 4

    name: str = eqx.field(static=True)
    horizon: int = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    goal: tuple[float, float] = eqx.field(static=True)
    angle_scale: float = eqx.field(static=True)
    physics: tuple[tuple[str, float], ...] = eqx.field(static=True)
    goal_state: tuple[float, ...] = eqx.field(static=True)

    def __init__(
        self,
        horizon: int = DEFAULT_HORIZON,
        goal: tuple[float, ...] = DEFAULT_GOAL,
        angle_scale: float = DEFAULT_ANGLE_SCALE,
        dt: float = DEFAULT_DT,
        physics: dict[str, float] | None = None,
        name: str = "double-pendulum",
    ):
        horizon = int(horizon)
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        goal_t = tuple(_number(v, "goal entry") for v in goal)
        if len(goal_t) != 2:
            raise ValueError(
                f"goal must have 2 entries (g0, g1), e.g. goal=0.3,-0.5; got {len(goal_t)}"
            )
        angle_scale = _number(angle_scale, "angle_scale")
        if not angle_scale > 0.0:
            raise ValueError(f"angle_scale must be > 0, got {angle_scale}")
        dt = _number(dt, "dt")
        if not dt > 0.0:
            raise ValueError(f"dt must be > 0, got {dt}")
        values = dict(DEFAULT_PHYSICS)
        for key, value in (physics or {}).items():
            if key not in values:
                raise ValueError(f"unknown physics constant {key!r}; known: {', '.join(values)}")
            values[key] = _number(value, key)
        for key in ("L1", "L2", "M1", "M2"):
            if not values[key] > 0.0:
                raise ValueError(f"{key} must be > 0, got {values[key]}")
        self.name = name
        self.horizon = horizon
        self.dt = dt
        self.goal = (goal_t[0], goal_t[1])
        self.angle_scale = angle_scale
        self.physics = tuple(values.items())
        start = (angle_scale * goal_t[0], 0.0, angle_scale * goal_t[1], 0.0)
        self.goal_state = _goal_state(start, max(horizon - 2, 0), dt, self.physics)

    # ------------------------------------------------------------------ sizes and description

    @property
    def params(self) -> dict[str, ParamValue]:
        return {
            "goal": self.goal,
            "angle_scale": self.angle_scale,
            "dt": self.dt,
            **dict(self.physics),
        }

    # ------------------------------------------------------------------------------ dynamics

    def initial_state(self, key: PRNGKeyArray) -> Float[Array, " 4"]:
        del key  # deterministic reset (the placeholder that step 0 overwrites)
        return jnp.asarray(self.goal_state, dtype=float)

    def transition(
        self, state: Float[Array, " 4"], action: Float[Array, " 1"], k: Int[Array, ""]
    ) -> Float[Array, " 4"]:
        a = action[0].astype(state.dtype)

        def set_initial(s: Float[Array, " 4"]) -> Float[Array, " 4"]:
            zero = jnp.zeros_like(a)
            theta2 = jnp.full_like(a, self.angle_scale * self.goal[1])
            return jnp.stack([self.angle_scale * a, zero, theta2, zero])

        def integrate(s: Float[Array, " 4"]) -> Float[Array, " 4"]:
            return integrate_interval(s, self.dt, self.physics)

        return jax.lax.cond(k == 0, set_initial, integrate, state)

    def reward(
        self,
        state: Float[Array, " 4"],
        action: Float[Array, " 1"],
        k: Int[Array, ""],
        next_state: Float[Array, " 4"],
    ) -> Float[Array, ""]:
        diff = state - jnp.asarray(self.goal_state, dtype=state.dtype)
        r = -jnp.mean(diff * diff)
        return jnp.where(k == self.horizon - 1, r, jnp.zeros_like(r))


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} must be a number, got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{what} must be finite, got {out}")
    return out


def _goal_param(value: ParamValue) -> tuple[float, ...]:
    if isinstance(value, tuple | list):
        return tuple(value)  # entries validated by the task
    raise ValueError(f"goal must have 2 entries (g0, g1), e.g. goal=0.3,-0.5; got {value!r}")


# ======================================================================================
# Registry entries
# ======================================================================================

#: The spec's explicitly named fix: (name, fixed parameters, note).
VARIANTS: tuple[tuple[str, dict[str, ParamValue], str], ...] = (
    (
        "double-pendulum-rad",
        {"angle_scale": math.pi},
        "honest pendulum, in radians: initial angles pi*a, pi*g, not the authors' 180*a, 180*g",
    ),
)

_TITLE = "Double pendulum: choose the first initial angle to hit a goal state after L-2 steps"


def build(horizon: int, params: dict[str, ParamValue], name: str = "double-pendulum") -> Task:
    """Build from CLI-style parameters (floats / tuples of floats); raises ValueError if bad."""
    params = dict(params)
    unknown = sorted(set(params) - set(PARAM_NAMES))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(PARAM_NAMES)}"
        )
    goal = _goal_param(params.pop("goal")) if "goal" in params else DEFAULT_GOAL
    angle_scale = params.pop("angle_scale", DEFAULT_ANGLE_SCALE)
    dt = params.pop("dt", DEFAULT_DT)
    return DoublePendulumTask(
        horizon,
        goal=goal,
        angle_scale=angle_scale,  # type: ignore[arg-type]
        dt=dt,  # type: ignore[arg-type]
        physics=params,  # type: ignore[arg-type]
        name=name,
    )


def _task_infos() -> tuple[TaskInfo, ...]:
    """Registry entries for the task and its named variant."""

    def builder(fixed: dict[str, ParamValue], name: str):
        def _build(horizon: int, params: dict[str, ParamValue]) -> Task:
            return build(horizon, {**fixed, **params}, name=name)

        return _build

    infos = [
        TaskInfo(
            name="double-pendulum",
            build=builder({}, "double-pendulum"),
            default_horizon=DEFAULT_HORIZON,
            title=_TITLE,
            param_names=PARAM_NAMES,
            domains=DOMAINS,
            in_paper=True,
            notes=(
                "authors' convention: angles 180*a and 180*g used as radians; goal in [-1,1]^2; "
                "reward only at the last step on the state before the last integration"
            ),
        )
    ]
    for name, fixed, note in VARIANTS:
        infos.append(
            TaskInfo(
                name=name,
                build=builder(fixed, name),
                default_horizon=DEFAULT_HORIZON,
                title=f"{_TITLE} [variant: {note}]",
                param_names=PARAM_NAMES,
                domains=DOMAINS,
                in_paper=False,
                variant_of="double-pendulum",
                notes=note,
            )
        )
    return tuple(infos)


#: The registry's entries for the double pendulum.
TASKS = _task_infos()

__all__ = ["TASKS", "DoublePendulumTask", "derivatives", "integrate_interval"]
