"""The eleven Myriad tasks against the spec (``docs/tasks.md``).

Every expected value is computed here, independently of ``awmctl.tasks.myriad``: the dynamics,
costs, bounds and parameter values are written out again below from the spec in plain NumPy
(float64), and the episode rules of §1 (control map, Euler with dt = T/H, clip, left-endpoint
running cost, terminal cost on x_{H-1}) are re-implemented as a Python loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from awmctl.tasks import make_task, open_loop_return, rollout, task_info, task_names

# ============================================================================================
# The spec, written again (§2). Each formula takes the parameter dict P; `Spec.params` holds the
# authors' constructor defaults.
# ============================================================================================


def _cancer_f(x, u, P):
    return np.array([P["r"] * x[0] * math.log(1.0 / x[0]) - P["delta"] * u[0] * x[0]])


def _cancer_g(x, u, t, P):
    return P["a"] * x[0] ** 2 + u[0] ** 2


def _bear_f(x, u, P):
    r, K, mp, mf = P["r"], P["K"], P["m_p"], P["m_f"]
    k, k2 = r / K, r / K**2
    x1, x2 = x[0], x[1]
    return np.array(
        [
            r * x1 - k * x1**2 + k * mf * (1 - x1 / K) * x2**2 - u[0] * x1,
            r * x2 - k * x2**2 + k * mp * (1 - x2 / K) * x1**2 - u[1] * x2,
            k * (1 - mp) * x1**2
            + k * (1 - mf) * x2**2
            + k2 * mf * x1 * x2**2
            + k2 * mp * x1**2 * x2,
        ]
    )


def _bear_g(x, u, t, P):
    return x[2] + P["c_p"] * u[0] ** 2 + P["c_f"] * u[1] ** 2


def _bioreactor_f(x, u, P):
    return np.array([P["G"] * u[0] * x[0] - P["D"] * x[0] ** 2])


def _bioreactor_g(x, u, t, P):
    return -P["K"] * x[0] + u[0]


def _hiv_f(x, u, P):
    x1, x2, x3 = x
    infection = u[0] * P["k"] * x3 * x1
    return np.array(
        [
            P["s"] / (1 + x3)
            - P["m1"] * x1
            + P["r"] * x1 * (1 - (x1 + x2) / P["T_max"])
            - infection,
            infection - P["m2"] * x2,
            P["N"] * P["m2"] * x2 - P["m3"] * x3,
        ]
    )


def _hiv_g(x, u, t, P):
    return -P["A"] * x[0] + (1 - u[0]) ** 2


def _mould_f(x, u, P):
    return np.array([P["r"] * (P["M"] - x[0]) - u[0] * x[0]])


def _mould_g(x, u, t, P):
    return P["A"] * x[0] ** 2 + u[0] ** 2


def _bacteria_f(x, u, P):
    return np.array([P["r"] * x[0] + P["A"] * u[0] * x[0] - P["B"] * u[0] ** 2 * math.exp(-x[0])])


def _bacteria_g(x, u, t, P):
    return u[0] ** 2


def _bacteria_gT(x, u, P):
    return -P["C"] * x[0]


def _pp_f(x, u, P):
    return np.array(
        [(1 - x[1]) * x[0] - P["d1"] * x[0] * u[0], (x[0] - 1) * x[1] - P["d2"] * x[1] * u[0], u[0]]
    )


def _pp_g(x, u, t, P):
    return P["A"] / 2 * u[0] ** 2


def _pp_gT(x, u, P):
    return x[0]


def _glucose_f(x, u, P):
    return np.array([-P["a"] * x[0] - P["b"] * x[1], -P["c"] * x[1] + u[0]])


def _glucose_g(x, u, t, P):
    return 100_000.0 * (P["A"] * (x[0] - P["l"]) ** 2 + u[0] ** 2)


def _timber_f(x, u, P):
    return np.array([P["k"] * x[0] * u[0]])


def _timber_g(x, u, t, P):
    return -math.exp(-P["r"] * t) * x[0] * (1 - u[0])


def _harvest_f(x, u, P):
    return np.array([-(P["m"] + u[0]) * x[0]])


def _harvest_g(x, u, t, P):
    return -P["A"] * (P["k"] * t / (t + 1)) * x[0] * u[0] + u[0] ** 2


def _invasive_F(x, u, P):
    """The true annual map (next state) of the discrete-time problem."""
    return (x + P["k"] * x / (P["eps"] + x)) * (1 - u)


def _invasive_f(x, u, P):
    return _invasive_F(x, u, P) - x  # authors' version: the increment


def _invasive_g(x, u, t, P):
    return P["B"] * float(np.sum(u**2))


def _invasive_gT(x, u, P):
    return float(np.sum(x))


INF = math.inf


class Spec(NamedTuple):
    key: str
    x0: list
    T: float
    state_bounds: list
    control_bounds: list
    params: dict  # the authors' constructor defaults
    f: Callable
    g: Callable
    gT: Callable | None
    in_paper: bool


SPEC = {
    "cancer": Spec(
        "CANCER", [0.975], 20.0, [(1e-3, 1)], [(0, 2)], {"r": 0.3, "a": 3.0, "delta": 0.45},
        _cancer_f, _cancer_g, None, True,
    ),
    "bear-populations": Spec(
        "BEARPOPULATIONS", [0.4, 0.2, 0.0], 25.0, [(0, 2)] * 3, [(0, 0.2)] * 2,
        {"r": 0.1, "K": 0.75, "m_p": 0.5, "m_f": 0.5, "c_p": 10000.0, "c_f": 10.0},
        _bear_f, _bear_g, None, True,
    ),
    "bioreactor": Spec(
        "BIOREACTOR", [0.5], 2.0, [(0, 1)], [(0, 1)], {"K": 2.0, "G": 1.0, "D": 1.0},
        _bioreactor_f, _bioreactor_g, None, True,
    ),
    "hiv-treatment": Spec(
        "HIVTREATMENT", [800.0, 0.04, 1.5], 20.0, [(0, 1600), (0, 100), (0, 100)], [(0, 1)],
        {"s": 10.0, "m1": 0.02, "m2": 0.5, "m3": 4.4, "r": 0.03, "T_max": 1500.0, "k": 2.4e-5,
         "N": 300.0, "A": 0.05},
        _hiv_f, _hiv_g, None, True,
    ),
    "mould-fungicide": Spec(
        "MOULDFUNGICIDE", [1.0], 5.0, [(0, 5)], [(0, 5)], {"r": 0.3, "M": 10.0, "A": 10.0},
        _mould_f, _mould_g, None, True,
    ),
    "bacteria": Spec(
        "BACTERIA", [1.0], 1.0, [(0, 10)], [(0, 2)], {"r": 1.0, "A": 1.0, "B": 12.0, "C": 1.0},
        _bacteria_f, _bacteria_g, _bacteria_gT, True,
    ),
    "predator-prey": Spec(
        "PREDATORPREY", [10.0, 1.0, 0.0], 100.0, [(0, 11), (0, 11), (0, 5)], [(0, 1)],
        {"d1": 0.1, "d2": 0.1, "A": 1.0},
        _pp_f, _pp_g, _pp_gT, True,
    ),
    "glucose": Spec(
        "GLUCOSE", [0.75, 0.0], 0.2, [(0, 1)] * 2, [(0, 0.01)],
        {"a": 1.0, "b": 1.0, "c": 1.0, "A": 2.0, "l": 0.4},
        _glucose_f, _glucose_g, None, True,
    ),
    "timber-harvest": Spec(
        "TIMBERHARVEST", [100.0], 5.0, [(0, 20000)], [(0, 1)], {"r": 0.0, "k": 1.0},
        _timber_f, _timber_g, None, False,
    ),
    "harvest": Spec(
        "HARVEST", [0.4], 10.0, [(-INF, INF)], [(0, 1)], {"A": 5.0, "k": 10.0, "m": 0.2},
        _harvest_f, _harvest_g, None, False,
    ),
    "invasive-plant": Spec(
        "INVASIVEPLANT", [0.5, 1.0, 1.5, 2.0, 10.0], 10.0, [(-INF, INF)] * 5, [(0, 1)] * 5,
        {"B": 1.0, "k": 1.0, "eps": 0.01},
        _invasive_f, _invasive_g, _invasive_gT, False,
    ),
}  # fmt: skip
NAMES = list(SPEC)  # the spec's table order

# A non-trivial point (state, action) inside the bounds for each task.
POINTS = {
    "cancer": ([0.6], [0.3]),
    "bear-populations": ([0.5, 0.3, 0.2], [0.4, -0.2]),
    "bioreactor": ([0.3], [0.3]),
    "hiv-treatment": ([900.0, 5.0, 20.0], [0.2]),
    "mould-fungicide": ([2.0], [-0.4]),
    "bacteria": ([1.5], [-0.3]),
    "predator-prey": ([3.0, 2.0, 1.0], [0.2]),
    "glucose": ([0.6, 0.1], [0.5]),
    "timber-harvest": ([150.0], [0.2]),
    "harvest": ([0.3], [0.4]),
    "invasive-plant": ([0.3, 0.8, 1.2, 2.5, 7.0], [-0.5, -0.1, 0.2, 0.6, 0.9]),
}

# A point whose Euler step at H = 20 leaves the state bounds (so the clip is exercised).
CLIP_POINTS = {
    "cancer": ([0.5], [2.0]),  # u = 3: 0.5*(1 + 0.3 ln 2 - 1.35) < 0 -> 1e-3
    "bear-populations": ([1.95, 1.95, 1.95], [-1.0, -1.0]),  # x3 overshoots 2
    "bioreactor": ([0.95], [10.0]),  # u = 5.5 -> x > 1
    "hiv-treatment": ([800.0, 0.01, 2.0], [0.0]),  # x3 = 2 - 8.8 + 1.5 < 0
    "mould-fungicide": ([4.9], [-1.0]),  # 4.9 + 0.25*0.3*5.1 > 5
    "bacteria": ([0.2], [1.0]),  # byproduct kills: < 0
    "predator-prey": ([10.0, 1.0, 0.0], [0.0]),  # predator 1 + 5*(9 - 0.05) > 11
    "glucose": ([0.001, 0.5], [-1.0]),  # glucose 0.001 - 0.01*0.501 < 0
    "timber-harvest": ([19900.0], [1.0]),  # 19900*1.25 > 20000
    "harvest": ([-2.0], [2.0]),  # unbounded: nothing to clip
    "invasive-plant": ([0.0, 0.005, 3.0, 50.0, 0.2], [1.0, -1.0, 0.5, -0.5, 0.0]),  # unbounded
}


def _control(name, a):
    cb = np.array(SPEC[name].control_bounds, dtype=float)
    lo, hi = cb[:, 0], cb[:, 1]
    return (lo + hi) / 2 + np.asarray(a, dtype=float) * (hi - lo) / 2


def _clip(name, x):
    sb = np.array(SPEC[name].state_bounds, dtype=float)
    return np.clip(x, sb[:, 0], sb[:, 1])


def ref_step(name, x, a, k, H, T=None, terminal_on="before-last", params=None):
    """One step of the episode wrapper: returns (x_{k+1}, r_k)."""
    spec = SPEC[name]
    P = {**spec.params, **(params or {})}
    T = spec.T if T is None else T
    dt = T / H
    x = np.asarray(x, dtype=float)
    u = _control(name, a)
    x_next = _clip(name, x + dt * spec.f(x, u, P))
    r = -spec.g(x, u, k * dt, P) * dt
    if spec.gT is not None and k == H - 1:
        r += -spec.gT(x if terminal_on == "before-last" else x_next, u, P)
    return x_next, r


def ref_episode(name, actions, T=None, terminal_on="before-last"):
    """A whole episode as a plain loop: (return, rewards, states x_0..x_H)."""
    x = np.asarray(SPEC[name].x0, dtype=float)
    H = len(actions)
    states, rewards = [x], []
    for k in range(H):
        x, r = ref_step(name, x, actions[k], k, H, T, terminal_on)
        states.append(x)
        rewards.append(r)
    return sum(rewards), np.array(rewards), np.array(states)


def _const_actions(name, H, a):
    return np.full((H, len(SPEC[name].control_bounds)), a)


def _random_actions(name, H, seed, center=0.0, width=0.9):
    rng = np.random.default_rng(seed)
    return center + width * rng.uniform(-1, 1, size=(H, len(SPEC[name].control_bounds)))


# ============================================================================================
# Registry, sizes, parameters
# ============================================================================================


def test_registry_lists_all_eleven_in_table_order_and_the_variant():
    names = task_names()
    myriad = [n for n in names if n in SPEC]
    assert myriad == NAMES
    assert "predator-prey-t10" in names
    assert task_info("predator-prey-t10").variant_of == "predator-prey"


@pytest.mark.parametrize("name", NAMES)
def test_sizes_bounds_and_flags(name):
    key, x0, T, sb, cb, params, _, _, gT, in_paper = SPEC[name]
    task = make_task(name, 20)
    assert task.system.key == key
    assert task.state_size == len(sb) and task.action_size == len(cb)
    assert task.obs_size == len(sb) + 1
    assert task.T == T and task.dt == pytest.approx(T / 20)
    assert task.x0 == tuple(x0)
    assert task.state_bounds == tuple((float(lo), float(hi)) for lo, hi in sb)
    assert task.system.control_bounds == tuple((float(lo), float(hi)) for lo, hi in cb)
    assert task_info(name).in_paper is in_paper
    assert (task.system.terminal_cost is not None) == (gT is not None)
    # every parameter by its short name, at the authors' default
    assert {k: task.params[k] for k in params} == params
    extra = ("terminal_on",) if gT is not None else ()
    assert set(task_info(name).param_names) == {"T", "x0", *params, *extra}
    assert np.array_equal(
        np.asarray(task.initial_state(jax.random.key(0))), np.array(x0, dtype=np.float32)
    )


@pytest.mark.parametrize(
    ("name", "param", "value"),
    [
        ("mould-fungicide", "A", 10.0),  # not Myriad's gin 1.0
        ("bacteria", "B", 12.0),  # not Myriad's gin 1.0
        ("glucose", "l", 0.4),  # not Myriad's 0.5
        ("predator-prey", "T", 100.0),  # not Myriad's 10
        ("bear-populations", "c_p", 10000.0),
        ("hiv-treatment", "m3", 4.4),
        ("invasive-plant", "eps", 0.01),
    ],
)
def test_authors_constructor_defaults(name, param, value):
    assert make_task(name, 20).params[param] == value


@pytest.mark.parametrize(
    "name",
    ["predator-prey", "bioreactor", "glucose", "timber-harvest", "harvest", "invasive-plant"],
)
def test_flagged_tasks_carry_a_note(name):
    assert task_info(name).notes.strip()


# ============================================================================================
# f, g, g_T at a point; one transition + reward
# ============================================================================================


def _perturbed(name):
    """Every parameter moved off its default, to distinct values (so swapped names show up)."""
    return {
        k: (v * (1 + 0.1 * (i + 1)) if v != 0 else 0.05 * (i + 1))
        for i, (k, v) in enumerate(SPEC[name].params.items())
    }


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("perturbed", [False, True], ids=["defaults", "perturbed"])
def test_dynamics_and_costs_at_a_point(name, perturbed):
    spec = SPEC[name]
    overrides = _perturbed(name) if perturbed else {}
    P = {**spec.params, **overrides}
    f, g, gT = (lambda x, u: spec.f(x, u, P)), (lambda x, u, t: spec.g(x, u, t, P)), spec.gT
    x_np, a = POINTS[name]
    x_np = np.array(x_np)
    u_np = _control(name, a)
    with jax.enable_x64(True):
        task = make_task(name, 20, overrides)
        p = dict(task.values)
        assert p == P
        x, u = jnp.asarray(x_np), jnp.asarray(u_np)
        np.testing.assert_allclose(
            np.asarray(task.control(jnp.asarray(a, dtype=float))), u_np, rtol=1e-12
        )
        fx = task.system.dynamics(x, u, p)
        assert fx.shape == x.shape and fx.dtype == x.dtype
        np.testing.assert_allclose(np.asarray(fx), f(x_np, u_np), rtol=1e-10, atol=1e-12)
        for t in (0.0, 0.7):
            gx = task.system.cost(x, u, jnp.asarray(t), p)
            assert gx.shape == ()
            np.testing.assert_allclose(float(gx), g(x_np, u_np, t), rtol=1e-10, atol=1e-12)
        if gT is not None:
            gTx = task.system.terminal_cost(x, u, p)
            assert gTx.shape == ()
            np.testing.assert_allclose(float(gTx), gT(x_np, u_np, P), rtol=1e-10, atol=1e-12)
        if perturbed:  # and the overrides reach the episode: one step at k = H-1
            want_x, want_r = ref_step(name, x_np, a, 19, 20, params=overrides)
            got_x, got_r = task.step(x, jnp.asarray(a, dtype=float), jnp.asarray(19))
            np.testing.assert_allclose(np.asarray(got_x), want_x, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(float(got_r), want_r, rtol=1e-10, atol=1e-12)


def test_time_dependent_costs_use_physical_time():
    # TIMBERHARVEST with a discount r = 0.5 at t = 2: -e^{-1} * 150 * (1 - 0.6) = -22.0728...
    with jax.enable_x64(True):
        task = make_task("timber-harvest", 20, {"r": 0.5})
        g = task.system.cost(
            jnp.array([150.0]), jnp.array([0.6]), jnp.asarray(2.0), dict(task.values)
        )
        assert float(g) == pytest.approx(-math.exp(-1.0) * 150 * 0.4, rel=1e-12)
        assert float(g) == pytest.approx(-22.07277, rel=1e-6)
        # reward at k = 8 (t = 8 * 0.25 = 2) of the same point: -g * dt, a = 0.2 -> u = 0.6
        r = task.reward(jnp.array([150.0]), jnp.array([0.2]), jnp.asarray(8), jnp.array([0.0]))
        assert float(r) == pytest.approx(math.exp(-1.0) * 150 * 0.4 * 0.25, rel=1e-12)
        # HARVEST at k = 3, H = 20: t = 1.5, mass = 10*1.5/2.5 = 6, u = 0.5 (a = 0), x = 0.4:
        # g = -5*6*0.4*0.5 + 0.25 = -5.75, r = 5.75 * 0.5 = 2.875
        task = make_task("harvest", 20)
        r = task.reward(jnp.array([0.4]), jnp.array([0.0]), jnp.asarray(3), jnp.array([0.0]))
        assert float(r) == pytest.approx(2.875, rel=1e-12)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("which", ["point", "clip"])
def test_one_transition_and_reward(name, which):
    H = 20
    x_np, a = (POINTS if which == "point" else CLIP_POINTS)[name]
    x_np = np.array(x_np)
    spec = SPEC[name]
    if which == "clip" and np.all(np.isfinite(np.array(spec.state_bounds))):
        dt = spec.T / H
        raw = x_np + dt * spec.f(x_np, _control(name, a), spec.params)
        assert not np.array_equal(raw, _clip(name, raw)), "clip point must actually clip"
    with jax.enable_x64(True):
        task = make_task(name, H)
        for k in (0, 7, H - 1):
            want_x, want_r = ref_step(name, x_np, a, k, H)
            x, act = jnp.asarray(x_np), jnp.asarray(a, dtype=float)
            got_x = task.transition(x, act, jnp.asarray(k))
            got_r = task.reward(x, act, jnp.asarray(k), got_x)
            np.testing.assert_allclose(np.asarray(got_x), want_x, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(float(got_r), want_r, rtol=1e-10, atol=1e-12)


def test_one_step_hand_numbers():
    # BIOREACTOR, H = 20 (dt = 0.1), x = 0.3, a = 0.3 -> u = 0.65:
    #   f = 0.65*0.3 - 0.09 = 0.105 -> x' = 0.3105; g = -0.6 + 0.65 = 0.05 -> r = -0.005
    # MOULDFUNGICIDE, H = 20 (dt = 0.25), x = 4.9, a = -1 -> u = 0:
    #   f = 0.3*5.1 = 1.53 -> 4.9 + 0.3825 = 5.2825 -> clipped to 5; r = -(10*24.01)*0.25 = -60.025
    with jax.enable_x64(True):
        t = make_task("bioreactor", 20)
        x1, r = t.step(jnp.array([0.3]), jnp.array([0.3]), jnp.asarray(0))
        assert float(x1[0]) == pytest.approx(0.3105, rel=1e-12)
        assert float(r) == pytest.approx(-0.005, rel=1e-9)
        t = make_task("mould-fungicide", 20)
        x1, r = t.step(jnp.array([4.9]), jnp.array([-1.0]), jnp.asarray(0))
        assert float(x1[0]) == 5.0
        assert float(r) == pytest.approx(-60.025, rel=1e-12)


# ============================================================================================
# Whole episodes against the plain loop
# ============================================================================================


def _states_and_rewards(task, actions):
    """x_1..x_H and r_0..r_{H-1} of an open-loop plan (a bare scan of ``task.step``)."""

    def body(x, inputs):
        k, a = inputs
        x_next, r = task.step(x, a, k)
        return x_next, (x_next, r)

    _, (states, rewards) = jax.lax.scan(
        body, task.initial_state(jax.random.key(0)), (jnp.arange(task.horizon), actions)
    )
    return states, rewards


@pytest.mark.parametrize("name", NAMES)
def test_episode_matches_plain_loop(name):
    # Two plans (a = 0.3 throughout, and a random one), run as one vmapped batch of bare scans of
    # `task.step`; `rollout` and `open_loop_return` are checked against this same scan in the
    # jit/vmap test and against the plain loop in the gradient test.
    H = 20
    plans = [_const_actions(name, H, 0.3), _random_actions(name, H, seed=1)]
    with jax.enable_x64(True):
        task = make_task(name, H)
        states, rewards = jax.vmap(lambda a: _states_and_rewards(task, a))(
            jnp.asarray(np.stack(plans))
        )
        assert states.shape == (2, H, task.state_size) and states.dtype == jnp.float64
        for i, actions in enumerate(plans):
            want_ret, want_rewards, want_states = ref_episode(name, actions)
            np.testing.assert_allclose(np.asarray(states[i]), want_states[1:], rtol=1e-5, atol=1e-9)
            np.testing.assert_allclose(
                np.asarray(states[i, -1]), want_states[-1], rtol=1e-5, atol=1e-9
            )
            np.testing.assert_allclose(np.asarray(rewards[i]), want_rewards, rtol=1e-5, atol=1e-9)
            np.testing.assert_allclose(float(jnp.sum(rewards[i])), want_ret, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("name", ["bacteria", "predator-prey", "invasive-plant"])
def test_terminal_on_final_matches_plain_loop(name):
    H = 20
    actions = _random_actions(
        name, H, seed=2, center=-0.8 if name == "bacteria" else 0.0, width=0.2
    )
    with jax.enable_x64(True):
        task = make_task(name, H, {"terminal_on": "final"})
        want, _, _ = ref_episode(name, actions, terminal_on="final")
        np.testing.assert_allclose(
            float(open_loop_return(task, jnp.asarray(actions))), want, rtol=1e-5
        )


# ============================================================================================
# Spec facts (§2)
# ============================================================================================


def _const_returns(name, H, values, params=None):
    """Returns of the constant plans a = v (all dimensions), one per v in ``values``."""
    task = make_task(name, H, params)
    acts = jnp.stack([jnp.full((H, task.action_size), v, dtype=float) for v in values])
    return [float(r) for r in jax.vmap(lambda a: open_loop_return(task, a))(acts)]


@pytest.mark.parametrize("H", [20, 100])
def test_bioreactor_mid_control_is_an_equilibrium_with_return_one(H):
    # a = 0 -> u = 0.5 = D x / G at x = 0.5: x stays 0.5, g = -2*0.5 + 0.5 = -0.5, return 0.5*T = 1.
    with jax.enable_x64(True):
        mid, nothing = _const_returns("bioreactor", H, [0.0, -1.0])
        assert mid == pytest.approx(1.0, abs=1e-6)
        # and "do nothing" (a = -1) beats it (spec: optimum a = -1)
        assert nothing > 1.3


@pytest.mark.parametrize("H", [20, 100])
def test_bacteria_aggressive_policies_kill_the_population(H):
    # Holds (to rounding: -1.0000000000000002 in float64): the population is clipped to 0 well
    # before step H-1, the terminal term C*x_{H-1} is then 0 and the return is -u^2 * T.
    with jax.enable_x64(True):
        mid, high, low = _const_returns("bacteria", H, [0.0, 1.0, -1.0])
        assert mid == pytest.approx(-1.0, abs=1e-9)
        assert high == pytest.approx(-4.0, abs=1e-9)
        for a in (0.0, 1.0):
            _, _, states = ref_episode("bacteria", _const_actions("bacteria", H, a))
            assert states[H - 1, 0] == 0.0  # extinct (and absorbing) by x_{H-1}
        # with u = 0 (a = -1) it grows instead: the return is C*x_{H-1} = (1 + dt)^(H-1) > 2
        assert low == pytest.approx((1 + 1 / H) ** (H - 1), rel=1e-9)


def test_terminal_on_final_differs_from_default_on_bacteria():
    H = 20
    with jax.enable_x64(True):
        (default,) = _const_returns("bacteria", H, [-0.9])
        (final,) = _const_returns("bacteria", H, [-0.9], {"terminal_on": "final"})
        # u = 0.1: the population grows, so x_H > x_{H-1} and the 'final' return is larger.
        _, _, states = ref_episode("bacteria", _const_actions("bacteria", H, -0.9))
        assert final - default == pytest.approx(states[H, 0] - states[H - 1, 0], rel=1e-9)
        assert final - default > 1e-3


@pytest.mark.parametrize("H", [20, 100])
def test_predator_prey_is_degenerate(H):
    with jax.enable_x64(True):
        task = make_task("predator-prey", H)
        # a = -1 (u = 0) -> 0; a = 0 (u = 0.5) -> -(1/2)*0.25*T = -12.5; then 64 random plans:
        # prey always extinct at x_{H-1}, return = -sum (1/2) u^2 dt, mean ~ -100/6 = -16.7
        rng = np.random.default_rng(0)
        acts = np.concatenate(
            [np.full((1, H, 1), -1.0), np.zeros((1, H, 1)), rng.uniform(-1, 1, (64, H, 1))]
        )
        rets = np.asarray(jax.vmap(lambda a: open_loop_return(task, a))(jnp.asarray(acts)))
        assert rets[0] == pytest.approx(0.0, abs=1e-12)
        assert rets[1] == pytest.approx(-12.5, abs=1e-9)
        u = (1 + acts[..., 0]) / 2
        np.testing.assert_allclose(
            rets, -np.sum(0.5 * u**2 * task.dt, axis=1), rtol=1e-9, atol=1e-12
        )
        assert float(np.mean(rets[2:])) == pytest.approx(-100 / 6, abs=1.0)


def test_predator_prey_t10_variant():
    task = make_task("predator-prey-t10", 100)
    assert task.T == 10.0 and task.dt == pytest.approx(0.1)
    assert task.name == "predator-prey-t10"
    assert task_info("predator-prey-t10").in_paper is False
    with jax.enable_x64(True):
        # spec: T = 10 does not fix the degeneracy at H = 100: a = -1 still returns 0 (prey clipped)
        nothing, mid = _const_returns("predator-prey-t10", 100, [-1.0, 0.0])
        assert nothing == pytest.approx(0.0, abs=1e-12)
        assert mid == pytest.approx(-1.25, abs=1e-9)
        _, _, states = ref_episode(
            "predator-prey", _const_actions("predator-prey", 100, -1.0), T=10.0
        )
        assert states[-1, 0] == 0.0


def test_timber_bang_bang_optimum_matches_spec():
    # Reinvest (u = 1) for 16 steps, then sell (u = 0) for the last 1/k = 1 time unit (4 steps):
    # 100 * 1.25^16 = 3552.71..., then 4 * 0.25 * 3552.71 = 3552.71 (spec: ~3553 at H = 20).
    with jax.enable_x64(True):
        for H, n_sell, want in [(20, 4, 100 * 1.25**16), (100, 20, 100 * 1.05**80)]:
            task = make_task("timber-harvest", H)
            acts = jnp.concatenate([jnp.ones((H - n_sell, 1)), -jnp.ones((n_sell, 1))])
            assert float(open_loop_return(task, acts)) == pytest.approx(want, rel=1e-10)
        assert 100 * 1.25**16 == pytest.approx(3552.7, abs=0.1)
        assert 100 * 1.05**80 == pytest.approx(4956.1, abs=0.1)


def test_glucose_returns_and_bear_scale():
    with jax.enable_x64(True):
        # spec: ~ -3262 (H = 20) / ~ -3206 (H = 100) for every policy
        for H, want in [(20, -3262), (100, -3206)]:
            for r in _const_returns("glucose", H, [-1.0, 0.0, 1.0]):
                assert r == pytest.approx(want, abs=2.0)
        # spec: bear a = 0 -> u_p = 0.1 costs ~100 per unit time -> about -2500 over T = 25
        assert _const_returns("bear-populations", 20, [0.0])[0] == pytest.approx(-2500, rel=0.01)


def test_invasive_plant_equals_the_annual_map_at_h10_only():
    x = np.array([0.3, 0.8, 1.2, 2.5, 7.0])
    u = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
    a = 2 * u - 1
    with jax.enable_x64(True):
        step10 = make_task("invasive-plant", 10).transition(
            jnp.asarray(x), jnp.asarray(a), jnp.asarray(0)
        )
        P = SPEC["invasive-plant"].params
        np.testing.assert_allclose(np.asarray(step10), _invasive_F(x, u, P), rtol=1e-12)
        step20 = make_task("invasive-plant", 20).transition(
            jnp.asarray(x), jnp.asarray(a), jnp.asarray(0)
        )
        np.testing.assert_allclose(np.asarray(step20), (x + _invasive_F(x, u, P)) / 2, rtol=1e-12)
        assert not np.allclose(np.asarray(step20), _invasive_F(x, u, P))


# ============================================================================================
# Gradients, jit, vmap
# ============================================================================================

# Centre of the random plans used for gradient checks (away from clip kinks; BACTERIA at a ~ -0.8
# so that the population survives and the terminal term carries gradient).
GRAD_CENTRE = {"bacteria": -0.8}


@pytest.mark.parametrize("name", NAMES)
def test_open_loop_return_and_its_gradient(name):
    """open_loop_return equals the plain loop; its gradient is finite and matches central FD."""
    H = 20
    eps = 1e-6
    actions = _random_actions(name, H, seed=3, center=GRAD_CENTRE.get(name, 0.0), width=0.3)
    with jax.enable_x64(True):
        task = make_task(name, H)
        value_and_grad = jax.jit(jax.value_and_grad(lambda a: open_loop_return(task, a)))

        def ret(a):
            return float(value_and_grad(jnp.asarray(a))[0])

        value, grad = value_and_grad(jnp.asarray(actions))
        want, _, _ = ref_episode(name, actions)
        np.testing.assert_allclose(float(value), want, rtol=1e-5, atol=1e-9)
        grad = np.asarray(grad)
        assert grad.shape == actions.shape
        assert np.all(np.isfinite(grad))
        assert np.any(grad != 0)
        R = abs(float(value))
        rng = np.random.default_rng(4)
        coords = [(int(rng.integers(H)), int(rng.integers(actions.shape[1]))) for _ in range(5)]
        coords.append((0, 0))
        for k, j in coords:
            plus, minus = actions.copy(), actions.copy()
            plus[k, j] += eps
            minus[k, j] -= eps
            fd = (ret(plus) - ret(minus)) / (2 * eps)
            # rounding of the return (size R) divided by 2 eps, plus the O(eps^2) truncation
            atol = 1e-8 + 50 * np.finfo(float).eps * max(1.0, R) / eps
            np.testing.assert_allclose(
                grad[k, j], fd, rtol=1e-5, atol=atol, err_msg=f"{name} {(k, j)}"
            )


# jit/vmap are generic to `MyriadTask` (and every task is already traced by `lax.scan` and vmapped
# in the episode test above), so the explicit plain-vs-jit-vs-vmap comparison uses three tasks: a
# terminal-cost task, a time-dependent cost and a 5-D action.
JIT_TASKS = ["bacteria", "harvest", "invasive-plant"]


@pytest.mark.parametrize("name", JIT_TASKS)
def test_jit_and_vmap_agree_with_plain_calls(name):
    H = 10
    task = make_task(name, H)  # default float32, as in use
    acts = jnp.asarray(
        np.stack([_random_actions(name, H, seed=s) for s in range(2)]), dtype=jnp.float32
    )
    plain = float(open_loop_return(task, acts[0]))
    jitted = float(jax.jit(open_loop_return, static_argnums=0)(task, acts[0]))
    batched = jax.jit(jax.vmap(lambda a: open_loop_return(task, a)))
    vmapped = np.asarray(batched(acts))
    np.testing.assert_allclose(jitted, plain, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(vmapped[0], plain, rtol=1e-5, atol=1e-5)
    assert vmapped[1] != vmapped[0]

    def act(obs, k, key):
        return jax.random.uniform(key, (task.action_size,), minval=-1.0, maxval=1.0)

    keys = jax.random.split(jax.random.key(7), 2)
    ep = rollout(task, act, keys[0])
    eps_vmap = jax.jit(jax.vmap(lambda kk: rollout(task, act, kk)))(keys)
    np.testing.assert_allclose(np.asarray(eps_vmap.actions[0]), np.asarray(ep.actions), rtol=1e-6)
    np.testing.assert_allclose(
        np.asarray(eps_vmap.observations[0]), np.asarray(ep.observations), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        np.asarray(eps_vmap.rewards[0]), np.asarray(ep.rewards), rtol=1e-5, atol=1e-5
    )
    assert not np.allclose(np.asarray(eps_vmap.actions[1]), np.asarray(eps_vmap.actions[0]))
    # observations are [x_k, k], with x_k the bare scan of task.step under the rollout's actions
    H = task.horizon
    states, _ = _states_and_rewards(task, ep.actions)
    np.testing.assert_allclose(
        np.asarray(ep.observations[1:, :-1]), np.asarray(states), rtol=1e-6, atol=1e-6
    )
    np.testing.assert_allclose(
        np.asarray(ep.observations[0, :-1]), np.asarray(task.initial_state(jax.random.key(0)))
    )
    np.testing.assert_array_equal(
        np.asarray(ep.observations[:, -1]), np.arange(H + 1, dtype=np.float32)
    )
    # the rollout's own actions replayed open loop give the rollout's return
    replay = batched(eps_vmap.actions)
    np.testing.assert_allclose(
        np.asarray(replay), np.asarray(jnp.sum(eps_vmap.rewards, axis=-1)), rtol=1e-5, atol=1e-5
    )


# ============================================================================================
# Guards: no NaN/Inf from any finite action in [-10, 10] or any state at/outside the bounds
# ============================================================================================

# States that would hit the singularity without the guard (float32 is the default dtype).
SINGULAR_STATES = {
    "cancer": [[0.0], [-1.0]],  # ln(1/x)
    "hiv-treatment": [[800.0, 1.0, -1.0], [800.0, 1.0, -3.0]],  # s/(1 + x3)
    "bacteria": [[-200.0]],  # e^{-x} overflows
    "invasive-plant": [[-0.01, -0.01, 0.0, -5.0, 1.0]],  # x/(eps + x) at x = -eps
}


def _probe_states(name):
    sb = np.array(SPEC[name].state_bounds, dtype=float)
    lo, hi = sb[:, 0], sb[:, 1]
    lo_f = np.where(np.isfinite(lo), lo, -1e3)
    hi_f = np.where(np.isfinite(hi), hi, 1e3)
    out = [
        lo_f,
        hi_f,
        lo_f - 1.0,
        hi_f + 1.0,
        np.where(np.arange(len(lo)) % 2 == 0, lo_f - 1.0, hi_f + 1.0),
    ]
    out += [np.array(s, dtype=float) for s in SINGULAR_STATES.get(name, [])]
    return out


@pytest.mark.parametrize("name", NAMES)
def test_guards_keep_transition_reward_and_model_dynamics_finite(name):
    # The clip after the Euler step would hide an infinite f (clip(inf) = hi), so the dynamics and
    # costs are also evaluated directly, as a world model's "true dynamics" would evaluate them on
    # predicted (unclipped) states. a = -1 gives the lowest control exactly (u = 0: 0 * inf = nan).
    task = make_task(name, 20)
    m = task.action_size

    @jax.jit
    def evaluate(x, a, k):
        x_next, r = task.step(x, a, k)
        p = dict(task.values)
        u = task.control(a)
        f = task.system.dynamics(x, u, p)
        g = task.system.cost(x, u, jnp.asarray(k, dtype=x.dtype) * task.dt, p)
        gT = task.system.terminal_cost(x, u, p) if task.system.terminal_cost is not None else g
        return x_next, r, f, g, gT

    for x in _probe_states(name):
        for a in (-10.0, -1.0, 0.0, 1.0, 10.0):
            for k in (0, task.horizon - 1):
                out = evaluate(
                    jnp.asarray(x, dtype=jnp.float32),
                    jnp.full((m,), a, dtype=jnp.float32),
                    jnp.asarray(k),
                )
                for what, value in zip(("x_next", "r", "f", "g", "g_T"), out, strict=True):
                    assert np.all(np.isfinite(np.asarray(value))), (name, what, x, a, k)


@pytest.mark.parametrize("name", NAMES)
def test_whole_episodes_with_wild_actions_stay_finite(name):
    task = make_task(name)  # the default horizon, float32
    assert task.horizon == 100
    shape = (task.horizon, task.action_size)
    acts = jnp.asarray(
        np.stack(
            [
                np.full(shape, -10.0),
                np.full(shape, 10.0),
                np.random.default_rng(5).uniform(-10, 10, shape),
            ]
        ),
        dtype=jnp.float32,
    )
    states, rewards = jax.vmap(lambda a: _states_and_rewards(task, a))(acts)
    assert np.all(np.isfinite(np.asarray(states)))
    assert np.all(np.isfinite(np.asarray(rewards)))


def test_the_tasks_listing_shows_the_flags_rich_would_read_as_markup():
    """A flagged task's description ends "[flagged: ...]", which rich would drop as markup."""
    from conftest import run

    result = run("tasks")
    assert result.exit_code == 0, result.stderr
    text = " ".join(result.stdout.split())  # the description column may wrap
    flagged = [name for name in task_names() if task_info(name).flag]
    assert flagged and text.count("[flagged:") == len(flagged)
