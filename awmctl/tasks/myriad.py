"""The Lenhart & Workman optimal-control problems of the Myriad testbed, as RL episodes.

Each problem is *data* (a :class:`MyriadSystem`: initial state, duration, bounds, parameters)
plus three small pure functions (dynamics ``f(x, u, p)``, running cost ``g(x, u, t, p)``,
optional terminal cost ``g_T(x, u, p)``). :class:`MyriadTask` turns any of them into the
paper's episode (``shared/spec/tasks.md`` §1):

* control ``u = mid + a * half`` from the action ``a`` (not clipped);
* reward ``r_k = -g(x_k, u_k, k*dt) * dt``, plus ``-g_T(x_{H-1}, u_{H-1})`` at ``k = H-1``
  (the terminal cost is evaluated on the state *before* the last transition, as the authors'
  wrapper does; the ``terminal_on="final"`` variant evaluates it on ``x_H`` instead);
* explicit Euler ``x_{k+1} = clip(x_k + dt * f(x_k, u_k), lo_x, hi_x)`` with ``dt = T / H``.

Parameter values are the constructor defaults of the paper authors' copies (spec §2), which
differ from Myriad's gin defaults for a few problems; every one can be overridden by name.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Literal

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from awmctl.tasks.base import ParamValue, Task

Params = dict[str, float]
Dynamics = Callable[[Float[Array, " n"], Float[Array, " m"], Params], Float[Array, " n"]]
RunningCost = Callable[[Float[Array, " n"], Float[Array, " m"], Float[Array, ""], Params], Float[Array, ""]]
TerminalCost = Callable[[Float[Array, " n"], Float[Array, " m"], Params], Float[Array, ""]]

INF = math.inf


@dataclasses.dataclass(frozen=True)
class MyriadSystem:
    """One optimal-control problem, as data. Hashable, so tasks built on it are static pytrees.

    ``params`` holds the named model constants; ``x0`` and ``T`` are overridable like them.
    """

    name: str  # CLI name, e.g. "cancer"
    key: str  # the authors' registry key, e.g. "CANCER"
    title: str  # one line for `awmctl tasks`
    x0: tuple[float, ...]
    T: float
    state_bounds: tuple[tuple[float, float], ...]
    control_bounds: tuple[tuple[float, float], ...]
    params: tuple[tuple[str, float], ...]
    dynamics: Dynamics
    cost: RunningCost
    terminal_cost: TerminalCost | None = None
    in_paper: bool = True
    notes: str = ""

    @property
    def state_size(self) -> int:
        return len(self.state_bounds)

    @property
    def action_size(self) -> int:
        return len(self.control_bounds)


class MyriadTask(Task):
    """A Myriad system wrapped into the paper's fixed-horizon episode (see module docstring)."""

    system: MyriadSystem = eqx.field(static=True)
    horizon: int = eqx.field(static=True)
    values: tuple[tuple[str, float], ...] = eqx.field(static=True)
    x0: tuple[float, ...] = eqx.field(static=True)
    T: float = eqx.field(static=True)
    terminal_on: Literal["before-last", "final"] = eqx.field(static=True)
    name: str = eqx.field(static=True)

    def __init__(
        self,
        system: MyriadSystem,
        horizon: int,
        overrides: dict[str, ParamValue] | None = None,
        terminal_on: Literal["before-last", "final"] = "before-last",
        name: str | None = None,
    ):
        overrides = dict(overrides or {})
        values = dict(system.params)
        self.x0 = tuple(float(v) for v in _as_tuple(overrides.pop("x0", system.x0)))
        self.T = float(overrides.pop("T", system.T))  # type: ignore[arg-type]
        for key, value in overrides.items():
            values[key] = float(value)  # type: ignore[arg-type]
        self.system = system
        self.horizon = int(horizon)
        self.values = tuple(values.items())
        self.terminal_on = terminal_on
        self.name = name or system.name

    # ------------------------------------------------------------------ sizes and description

    @property
    def state_size(self) -> int:
        return self.system.state_size

    @property
    def action_size(self) -> int:
        return self.system.action_size

    @property
    def dt(self) -> float:
        return self.T / self.horizon

    @property
    def state_bounds(self) -> tuple[tuple[float, float], ...]:
        return self.system.state_bounds

    @property
    def params(self) -> dict[str, ParamValue]:
        return {"T": self.T, "x0": self.x0, **dict(self.values), "terminal_on": self.terminal_on}

    # ------------------------------------------------------------------------------ dynamics

    def control(self, action: Float[Array, " m"]) -> Float[Array, " m"]:
        """Affine map of ``a`` in [-1, 1] onto the control bounds (``a = 0`` is mid-range)."""
        lo, hi = (jnp.asarray(b, dtype=action.dtype) for b in zip(*self.system.control_bounds))
        return (lo + hi) / 2 + action * (hi - lo) / 2

    def initial_state(self) -> Float[Array, " n"]:
        return jnp.asarray(self.x0, dtype=float)

    def transition(
        self, state: Float[Array, " n"], action: Float[Array, " m"], k: Int[Array, ""]
    ) -> Float[Array, " n"]:
        p = dict(self.values)
        u = self.control(action)
        lo, hi = (jnp.asarray(b, dtype=state.dtype) for b in zip(*self.system.state_bounds))
        return jnp.clip(state + self.dt * self.system.dynamics(state, u, p), lo, hi)

    def reward(
        self,
        state: Float[Array, " n"],
        action: Float[Array, " m"],
        k: Int[Array, ""],
        next_state: Float[Array, " n"],
    ) -> Float[Array, ""]:
        p = dict(self.values)
        u = self.control(action)
        t = jnp.asarray(k, dtype=state.dtype) * self.dt
        reward = -self.system.cost(state, u, t, p) * self.dt
        if self.system.terminal_cost is not None:
            terminal_state = state if self.terminal_on == "before-last" else next_state
            terminal = -self.system.terminal_cost(terminal_state, u, p)
            reward = reward + jnp.where(k == self.horizon - 1, terminal, jnp.zeros_like(terminal))
        return reward


def _as_tuple(value: ParamValue) -> tuple[float, ...]:
    if isinstance(value, tuple | list):
        return tuple(float(v) for v in value)
    return (float(value),)  # type: ignore[arg-type]


# ======================================================================================
# The problems. Each section cites the spec; guards keep every finite action finite.
# ======================================================================================


# --- CANCER: Gompertzian tumour growth with log-kill chemotherapy (spec §2.1) ----------
def _cancer_dynamics(x, u, p):
    # ln(1/x) is singular at 0: clamp to the state's lower bound 1e-3 so that a model-predicted
    # (unclipped) state can never produce NaN/Inf; inside the bounds this changes nothing.
    xs = jnp.maximum(x, 1e-3)
    return p["r"] * x * jnp.log(1.0 / xs) - p["delta"] * u * x


def _cancer_cost(x, u, t, p):
    return p["a"] * x[0] ** 2 + u[0] ** 2


CANCER = MyriadSystem(
    name="cancer",
    key="CANCER",
    title="Cancer treatment: chemotherapy against Gompertzian tumour growth",
    x0=(0.975,),
    T=20.0,
    state_bounds=((1e-3, 1.0),),
    control_bounds=((0.0, 2.0),),
    params=(("r", 0.3), ("a", 3.0), ("delta", 0.45)),
    dynamics=_cancer_dynamics,
    cost=_cancer_cost,
)


SYSTEMS: tuple[MyriadSystem, ...] = (CANCER,)


# ======================================================================================
# Registry entries
# ======================================================================================

#: Default horizon of every Myriad task (the authors' `configs/envs/myriad_default.py`).
DEFAULT_HORIZON = 100

#: The spec's explicitly named fixes of the authors' oddities: (name, base, overrides, note).
VARIANTS: tuple[tuple[str, str, dict[str, ParamValue], str], ...] = ()


def task_infos() -> list:
    """Registry entries for every system and named variant (imported by ``catalogue``)."""
    from awmctl.tasks.registry import TaskInfo

    by_name = {s.name: s for s in SYSTEMS}
    infos = []

    def builder(system: MyriadSystem, fixed: dict[str, ParamValue], name: str):
        def build(horizon: int, params: dict[str, ParamValue]) -> Task:
            params = {**fixed, **params}
            terminal_on = str(params.pop("terminal_on", "before-last"))
            if terminal_on not in ("before-last", "final"):
                raise ValueError(f"terminal_on must be 'before-last' or 'final', got {terminal_on!r}")
            return MyriadTask(system, horizon, params, terminal_on=terminal_on, name=name)  # type: ignore[arg-type]

        return build

    def names(system: MyriadSystem) -> tuple[str, ...]:
        extra = ("terminal_on",) if system.terminal_cost is not None else ()
        return ("T", "x0", *(k for k, _ in system.params), *extra)

    for system in SYSTEMS:
        infos.append(
            TaskInfo(
                name=system.name,
                build=builder(system, {}, system.name),
                default_horizon=DEFAULT_HORIZON,
                title=system.title,
                param_names=names(system),
                in_paper=system.in_paper,
                notes=system.notes,
            )
        )
    for name, base, overrides, note in VARIANTS:
        system = by_name[base]
        infos.append(
            TaskInfo(
                name=name,
                build=builder(system, overrides, name),
                default_horizon=DEFAULT_HORIZON,
                title=f"{system.title} [variant: {note}]",
                param_names=names(system),
                in_paper=False,
                variant_of=base,
                notes=note,
            )
        )
    return infos
