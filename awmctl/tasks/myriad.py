"""The Lenhart & Workman optimal-control problems of the Myriad testbed, as RL episodes.

Each problem is *data* (a :class:`MyriadSystem`: initial state, duration, bounds, parameters)
plus three small pure functions (dynamics ``f(x, u, p)``, running cost ``g(x, u, t, p)``,
optional terminal cost ``g_T(x, u, p)``). :class:`MyriadTask` turns any of them into the
paper's episode (``docs/tasks.md``):

* control ``u = mid + a * half`` from the action ``a`` (not clipped);
* reward ``r_k = -g(x_k, u_k, k*dt) * dt``, plus ``-g_T(x_{H-1}, u_{H-1})`` at ``k = H-1``
  (the terminal cost is evaluated on the state *before* the last transition, as the authors'
  wrapper does; the ``terminal_on="final"`` variant evaluates it on ``x_H`` instead);
* explicit Euler ``x_{k+1} = clip(x_k + dt * f(x_k, u_k), lo_x, hi_x)`` with ``dt = T / H``.

Parameter values are the constructor defaults of the paper authors' copies, which
differ from Myriad's gin defaults for a few problems; every one can be overridden by name.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Literal

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from awmctl.tasks.base import ParamValue, Task
from awmctl.tasks.domains import NONNEGATIVE, POSITIVE, Domain, vector
from awmctl.tasks.domains import names as names_of
from awmctl.tasks.info import TaskInfo

Params = dict[str, float]
Dynamics = Callable[[Float[Array, " n"], Float[Array, " m"], Params], Float[Array, " n"]]
RunningCost = Callable[
    [Float[Array, " n"], Float[Array, " m"], Float[Array, ""], Params], Float[Array, ""]
]
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
    #: why a results table must not rank this task (degenerate or nearly flat as the paper runs
    #: it); "" for a task whose scores compare methods
    flag: str = ""

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
        params: dict[str, ParamValue] = {"T": self.T, "x0": self.x0, **dict(self.values)}
        if self.system.terminal_cost is not None:
            params["terminal_on"] = self.terminal_on
        return params

    # ------------------------------------------------------------------------------ dynamics

    def control(self, action: Float[Array, " m"]) -> Float[Array, " m"]:
        """Affine map of ``a`` in [-1, 1] onto the control bounds (``a = 0`` is mid-range)."""
        lo, hi = (jnp.asarray(b, dtype=action.dtype) for b in zip(*self.system.control_bounds))
        return (lo + hi) / 2 + action * (hi - lo) / 2

    def initial_state(self, key: PRNGKeyArray) -> Float[Array, " n"]:
        del key  # deterministic reset
        return jnp.asarray(self.x0, dtype=float)

    def transition(
        self, state: Float[Array, " n"], action: Float[Array, " m"], k: Int[Array, ""]
    ) -> Float[Array, " n"]:
        lo, hi = (jnp.asarray(b, dtype=state.dtype) for b in zip(*self.system.state_bounds))
        return jnp.clip(self._euler(state, action), lo, hi)

    def noisy_transition(
        self,
        state: Float[Array, " n"],
        action: Float[Array, " m"],
        k: Int[Array, ""],
        noise: Float[Array, " n"],
    ) -> Float[Array, " n"]:
        # The authors' noisy variant (train_myriad_noise.py): noise after the Euler step, then the
        # clip.
        lo, hi = (jnp.asarray(b, dtype=state.dtype) for b in zip(*self.system.state_bounds))
        return jnp.clip(self._euler(state, action) + noise, lo, hi)

    def _euler(self, state: Float[Array, " n"], action: Float[Array, " m"]) -> Float[Array, " n"]:
        return state + self.dt * self.system.dynamics(
            state, self.control(action), dict(self.values)
        )

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


# --- CANCER: Gompertzian tumour growth with log-kill chemotherapy ----------
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


# --- BEARPOPULATIONS: black bears in park / forest / urban area ---------------
def _bear_populations_dynamics(x, u, p):
    r, K, m_p, m_f = p["r"], p["K"], p["m_p"], p["m_f"]
    k, k2 = r / K, r / K**2
    x1, x2 = x[0], x[1]  # the urban density x3 does not feed back into the dynamics
    u_p, u_f = u[0], u[1]
    d1 = r * x1 - k * x1**2 + k * m_f * (1.0 - x1 / K) * x2**2 - u_p * x1
    d2 = r * x2 - k * x2**2 + k * m_p * (1.0 - x2 / K) * x1**2 - u_f * x2
    d3 = (
        k * (1.0 - m_p) * x1**2
        + k * (1.0 - m_f) * x2**2
        + k2 * m_f * x1 * x2**2
        + k2 * m_p * x1**2 * x2
    )
    return jnp.stack([d1, d2, d3])


def _bear_populations_cost(x, u, t, p):
    return x[2] + p["c_p"] * u[0] ** 2 + p["c_f"] * u[1] ** 2


BEARPOPULATIONS = MyriadSystem(
    name="bear-populations",
    key="BEARPOPULATIONS",
    title="Bear populations: harvesting bears in a park and a forest to keep them out of town",
    x0=(0.4, 0.2, 0.0),
    T=25.0,
    state_bounds=((0.0, 2.0), (0.0, 2.0), (0.0, 2.0)),
    control_bounds=((0.0, 0.2), (0.0, 0.2)),
    params=(("r", 0.1), ("K", 0.75), ("m_p", 0.5), ("m_f", 0.5), ("c_p", 10000.0), ("c_f", 10.0)),
    dynamics=_bear_populations_dynamics,
    cost=_bear_populations_cost,
)


# --- BIOREACTOR: nutrient-fed bacteria, contaminant eliminated ---------------
def _bioreactor_dynamics(x, u, p):
    # The control bound M = 1 is fixed in `control_bounds`; it is not an overridable parameter.
    return jnp.stack([p["G"] * u[0] * x[0] - p["D"] * x[0] ** 2])


def _bioreactor_cost(x, u, t, p):
    return -p["K"] * x[0] + u[0]


BIOREACTOR = MyriadSystem(
    name="bioreactor",
    key="BIOREACTOR",
    title="Bioreactor: feed nutrient to grow bacteria that clean up a contaminant",
    x0=(0.5,),
    T=2.0,
    state_bounds=((0.0, 1.0),),
    control_bounds=((0.0, 1.0),),
    params=(("K", 2.0), ("G", 1.0), ("D", 1.0)),
    dynamics=_bioreactor_dynamics,
    cost=_bioreactor_cost,
    notes="Optimum is a = -1 throughout (u = 0, do nothing): only tests discovering the bound.",
    flag="trivial optimum (a = -1 throughout)",
)


# --- HIVTREATMENT: chemotherapy reducing HIV infectivity ---------------------
def _hiv_treatment_dynamics(x, u, p):
    x1, x2, x3 = x[0], x[1], x[2]
    # Guard: s/(1 + x3) is singular at x3 = -1. The simulator clips x3 >= 0, but a model-predicted
    # state need not be, so the denominator uses max(x3, 0) (identical inside the bounds).
    source = p["s"] / (1.0 + jnp.maximum(x3, 0.0))
    infection = u[0] * p["k"] * x3 * x1
    d1 = source - p["m1"] * x1 + p["r"] * x1 * (1.0 - (x1 + x2) / p["T_max"]) - infection
    d2 = infection - p["m2"] * x2
    d3 = p["N"] * p["m2"] * x2 - p["m3"] * x3
    return jnp.stack([d1, d2, d3])


def _hiv_treatment_cost(x, u, t, p):
    return -p["A"] * x[0] + (1.0 - u[0]) ** 2


HIVTREATMENT = MyriadSystem(
    name="hiv-treatment",
    key="HIVTREATMENT",
    title="HIV treatment: chemotherapy to keep uninfected CD4+ T cells high",
    x0=(800.0, 0.04, 1.5),
    T=20.0,
    state_bounds=((0.0, 1600.0), (0.0, 100.0), (0.0, 100.0)),
    control_bounds=((0.0, 1.0),),
    params=(
        ("s", 10.0),
        ("m1", 0.02),
        ("m2", 0.5),
        ("m3", 4.4),
        ("r", 0.03),
        ("T_max", 1500.0),
        ("k", 2.4e-5),
        ("N", 300.0),
        ("A", 0.05),
    ),
    dynamics=_hiv_treatment_dynamics,
    cost=_hiv_treatment_cost,
)


# --- MOULDFUNGICIDE: fungicide against mould relaxing to level M -------------
def _mould_fungicide_dynamics(x, u, p):
    return jnp.stack([p["r"] * (p["M"] - x[0]) - u[0] * x[0]])


def _mould_fungicide_cost(x, u, t, p):
    return p["A"] * x[0] ** 2 + u[0] ** 2


MOULDFUNGICIDE = MyriadSystem(
    name="mould-fungicide",
    key="MOULDFUNGICIDE",
    title="Mould fungicide: spray fungicide to keep a mould population down",
    x0=(1.0,),
    T=5.0,
    state_bounds=((0.0, 5.0),),
    control_bounds=((0.0, 5.0),),
    params=(("r", 0.3), ("M", 10.0), ("A", 10.0)),
    dynamics=_mould_fungicide_dynamics,
    cost=_mould_fungicide_cost,
)


# --- BACTERIA: grow bacteria with a nutrient that has a toxic byproduct ------
def _bacteria_dynamics(x, u, p):
    # Guard: e^{-x} overflows for very negative x (only reachable without the clip to [0, 10], e.g.
    # from a model-predicted state), so the exponent uses max(x, 0) (identical inside the bounds).
    byproduct = p["B"] * u[0] ** 2 * jnp.exp(-jnp.maximum(x[0], 0.0))
    return jnp.stack([p["r"] * x[0] + p["A"] * u[0] * x[0] - byproduct])


def _bacteria_cost(x, u, t, p):
    return u[0] ** 2


def _bacteria_terminal(x, u, p):
    return -p["C"] * x[0]


BACTERIA = MyriadSystem(
    name="bacteria",
    key="BACTERIA",
    title="Bacteria: maximise final bacteria count, paying for nutrient (terminal cost)",
    x0=(1.0,),
    T=1.0,
    state_bounds=((0.0, 10.0),),
    control_bounds=((0.0, 2.0),),
    params=(("r", 1.0), ("A", 1.0), ("B", 12.0), ("C", 1.0)),
    dynamics=_bacteria_dynamics,
    cost=_bacteria_cost,
    terminal_cost=_bacteria_terminal,
)


# --- PREDATORPREY: Lotka-Volterra pest control with pesticide ----------------
def _predator_prey_dynamics(x, u, p):
    # The pesticide budget B = 5 (the book's z(T) = B) is ignored by the authors' wrapper and the
    # control bound M = 1 is fixed in `control_bounds`; neither is a parameter here.
    x1, x2 = x[0], x[1]
    d1 = (1.0 - x2) * x1 - p["d1"] * x1 * u[0]
    d2 = (x1 - 1.0) * x2 - p["d2"] * x2 * u[0]
    return jnp.stack([d1, d2, u[0]])


def _predator_prey_cost(x, u, t, p):
    return p["A"] / 2.0 * u[0] ** 2


def _predator_prey_terminal(x, u, p):
    return x[0]


PREDATORPREY = MyriadSystem(
    name="predator-prey",
    key="PREDATORPREY",
    title="Predator-prey: pesticide against a pest with a natural predator (terminal cost)",
    x0=(10.0, 1.0, 0.0),
    T=100.0,
    state_bounds=((0.0, 11.0), (0.0, 11.0), (0.0, 5.0)),
    control_bounds=((0.0, 1.0),),
    params=(("d1", 0.1), ("d2", 0.1), ("A", 1.0)),
    dynamics=_predator_prey_dynamics,
    cost=_predator_prey_cost,
    terminal_cost=_predator_prey_terminal,
    notes=(
        "Degenerate with the authors' T = 100: the prey is always clipped to 0 within two steps, "
        "so a = -1 throughout is optimal with return 0."
    ),
    flag="degenerate (T = 100: prey clipped to 0; a = -1 optimal, return 0)",
)


# --- GLUCOSE: insulin injections to bring blood glucose to level l -----------
def _glucose_dynamics(x, u, p):
    d1 = -p["a"] * x[0] - p["b"] * x[1]
    d2 = -p["c"] * x[1] + u[0]
    return jnp.stack([d1, d2])


def _glucose_cost(x, u, t, p):
    # The 1e5 factor is Myriad's scaling "so we can see it".
    return 100000.0 * (p["A"] * (x[0] - p["l"]) ** 2 + u[0] ** 2)


GLUCOSE = MyriadSystem(
    name="glucose",
    key="GLUCOSE",
    title="Glucose: insulin injections to steer blood glucose towards a target level",
    x0=(0.75, 0.0),
    T=0.2,
    state_bounds=((0.0, 1.0), (0.0, 1.0)),
    control_bounds=((0.0, 0.01),),
    params=(("a", 1.0), ("b", 1.0), ("c", 1.0), ("A", 2.0), ("l", 0.4)),
    dynamics=_glucose_dynamics,
    cost=_glucose_cost,
    notes=(
        "Nearly uncontrollable: returns are about -3262 (H = 20) for every policy and optimum "
        "minus random is about 0.4; use normalised scores and float64."
    ),
    flag="nearly flat (optimum - random about 0.4 of -3262)",
)


# --- TIMBERHARVEST: reinvest or sell timber revenue --------------------------
def _timber_harvest_dynamics(x, u, p):
    return jnp.stack([p["k"] * x[0] * u[0]])


def _timber_harvest_cost(x, u, t, p):
    return -jnp.exp(-p["r"] * t) * x[0] * (1.0 - u[0])


TIMBERHARVEST = MyriadSystem(
    name="timber-harvest",
    key="TIMBERHARVEST",
    title="Timber harvest: reinvest revenue into production or sell it (flagged by the authors)",
    x0=(100.0,),
    T=5.0,
    state_bounds=((0.0, 20000.0),),
    control_bounds=((0.0, 1.0),),
    params=(("r", 0.0), ("k", 1.0)),
    dynamics=_timber_harvest_dynamics,
    cost=_timber_harvest_cost,
    in_paper=False,
    notes=(
        "Flagged by the authors as 'requires timestep': the cost depends on t = k*dt "
        "(irrelevant with the default discount r = 0)."
    ),
)


# --- HARVEST: harvest a population whose individual mass grows over time ----
def _harvest_dynamics(x, u, p):
    # The control bound M = 1 is fixed in `control_bounds`; it is not an overridable parameter.
    return jnp.stack([-(p["m"] + u[0]) * x[0]])


def _harvest_cost(x, u, t, p):
    mass = p["k"] * t / (t + 1.0)
    return -p["A"] * mass * x[0] * u[0] + u[0] ** 2


HARVEST = MyriadSystem(
    name="harvest",
    key="HARVEST",
    title="Harvest: harvest a population whose individual mass grows over time (flagged)",
    x0=(0.4,),
    T=10.0,
    state_bounds=((-INF, INF),),
    control_bounds=((0.0, 1.0),),
    params=(("A", 5.0), ("k", 10.0), ("m", 0.2)),
    dynamics=_harvest_dynamics,
    cost=_harvest_cost,
    in_paper=False,
    notes=(
        "Flagged by the authors as 'requires timestep': the cost depends on physical time "
        "t = k*dt, which a policy only sees through the appended step index."
    ),
)


# --- INVASIVEPLANT: annual removal of invasive-plant foci (authors' version) -
def _invasive_plant_dynamics(x, u, p):
    # The authors' copy returns the increment F(x, u) - x of the annual map
    # F_j = (x_j + k x_j/(eps + x_j)) (1 - u_j), which the wrapper then Euler-steps with dt = T/H.
    # Guard: x/(eps + x) is singular at x = -eps. Inside the dynamics x >= 0 when dt <= 1 and
    # u in [0, 1], but not for dt > 1, wild actions or model-predicted states, so the ratio
    # uses max(x, 0) (identical for x >= 0).
    xs = jnp.maximum(x, 0.0)
    grown = x + p["k"] * xs / (p["eps"] + xs)
    return grown * (1.0 - u) - x


def _invasive_plant_cost(x, u, t, p):
    return p["B"] * jnp.sum(u**2)


def _invasive_plant_terminal(x, u, p):
    return jnp.sum(x)


INVASIVEPLANT = MyriadSystem(
    name="invasive-plant",
    key="INVASIVEPLANT",
    title="Invasive plant: remove a fraction of five population foci each year (flagged)",
    x0=(0.5, 1.0, 1.5, 2.0, 10.0),
    T=10.0,
    state_bounds=((-INF, INF),) * 5,
    control_bounds=((0.0, 1.0),) * 5,
    params=(("B", 1.0), ("k", 1.0), ("eps", 0.01)),
    dynamics=_invasive_plant_dynamics,
    cost=_invasive_plant_cost,
    terminal_cost=_invasive_plant_terminal,
    in_paper=False,
    notes=(
        "Discrete-time problem Euler-stepped by the authors' wrapper: equals the true annual map "
        "only at H = 10 (dt = 1)."
    ),
)


#: Every system, in the order of the spec's table (§0).
SYSTEMS: tuple[MyriadSystem, ...] = (
    CANCER,
    BEARPOPULATIONS,
    BIOREACTOR,
    HIVTREATMENT,
    MOULDFUNGICIDE,
    BACTERIA,
    PREDATORPREY,
    GLUCOSE,
    TIMBERHARVEST,
    HARVEST,
    INVASIVEPLANT,
)


# ======================================================================================
# Registry entries
# ======================================================================================

#: Default horizon of every Myriad task (the authors' `configs/envs/myriad_default.py`).
DEFAULT_HORIZON = 100

#: The spec's explicitly named fixes of the authors' oddities: (name, base, overrides, note).
VARIANTS: tuple[tuple[str, str, dict[str, ParamValue], str], ...] = (
    (
        "predator-prey-t10",
        "predator-prey",
        {"T": 10.0},
        "Myriad's T = 10 instead of the authors' T = 100",
    ),
)


def _builder(system: MyriadSystem, fixed: dict[str, ParamValue], name: str):
    """The registry's constructor of task ``name``: ``system`` with ``fixed`` parameters (a
    variant's) under the user's."""

    def build(horizon: int, params: dict[str, ParamValue]) -> Task:
        params = {**fixed, **params}
        terminal_on = str(params.pop("terminal_on", "before-last"))
        if terminal_on not in ("before-last", "final"):
            raise ValueError(f"terminal_on must be 'before-last' or 'final', got {terminal_on!r}")
        return MyriadTask(system, horizon, params, terminal_on=terminal_on, name=name)  # type: ignore[arg-type]

    return build


def _domains(system: MyriadSystem) -> dict[str, Domain]:
    """The duration is positive, the start lies within the state bounds, and every coefficient
    is a rate, capacity or cost: non-negative."""
    out = {
        "T": dataclasses.replace(POSITIVE, meaning="the duration"),
        "x0": dataclasses.replace(
            vector(system.state_size, system.state_bounds), meaning="the initial state"
        ),
        **{k: NONNEGATIVE for k, _ in system.params},
    }
    if system.terminal_cost is not None:
        out["terminal_on"] = names_of("before-last", "final")
    return out


def _param_names(system: MyriadSystem) -> tuple[str, ...]:
    extra = ("terminal_on",) if system.terminal_cost is not None else ()
    return ("T", "x0", *(k for k, _ in system.params), *extra)


def _task_infos() -> tuple[TaskInfo, ...]:
    """Registry entries for every system and named variant."""
    by_name = {s.name: s for s in SYSTEMS}
    infos = []
    for system in SYSTEMS:
        infos.append(
            TaskInfo(
                name=system.name,
                build=_builder(system, {}, system.name),
                default_horizon=DEFAULT_HORIZON,
                title=system.title,
                param_names=_param_names(system),
                domains=_domains(system),
                in_paper=system.in_paper,
                notes=system.notes,
                flag=system.flag,
            )
        )
    for name, base, overrides, note in VARIANTS:
        system = by_name[base]
        infos.append(
            TaskInfo(
                name=name,
                build=_builder(system, overrides, name),
                default_horizon=DEFAULT_HORIZON,
                title=f"{system.title} [variant: {note}]",
                param_names=_param_names(system),
                domains=_domains(system),
                in_paper=False,
                variant_of=base,
                notes=note,
            )
        )
    return tuple(infos)


#: The registry's entries for the Myriad problems.
TASKS = _task_infos()
