"""The eleven Myriad tasks against the spec (``shared/spec/tasks.md`` §0-§2).

Every expected value is computed here, independently of ``awmctl.tasks.myriad``: the dynamics,
costs, bounds and parameter values are written out again below from the spec in plain NumPy
(float64), and the episode rules of §1 (control map, Euler with dt = T/H, clip, left-endpoint
running cost, terminal cost on x_{H-1}) are re-implemented as a Python loop.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from awmctl.tasks import make_task, open_loop_return, rollout, task_info, task_names

# ============================================================================================
# The spec, written again (§2). Parameter values are the authors' constructor defaults.
# ============================================================================================


def _cancer_f(x, u):
    r, delta = 0.3, 0.45
    return np.array([r * x[0] * math.log(1.0 / x[0]) - delta * u[0] * x[0]])


def _cancer_g(x, u, t):
    return 3.0 * x[0] ** 2 + u[0] ** 2


def _bear_f(x, u):
    r, K, mp, mf = 0.1, 0.75, 0.5, 0.5
    k, k2 = r / K, r / K**2
    x1, x2 = x[0], x[1]
    return np.array(
        [
            r * x1 - k * x1**2 + k * mf * (1 - x1 / K) * x2**2 - u[0] * x1,
            r * x2 - k * x2**2 + k * mp * (1 - x2 / K) * x1**2 - u[1] * x2,
            k * (1 - mp) * x1**2 + k * (1 - mf) * x2**2 + k2 * mf * x1 * x2**2 + k2 * mp * x1**2 * x2,
        ]
    )


def _bear_g(x, u, t):
    return x[2] + 10000.0 * u[0] ** 2 + 10.0 * u[1] ** 2


def _bioreactor_f(x, u):
    G, D = 1.0, 1.0
    return np.array([G * u[0] * x[0] - D * x[0] ** 2])


def _bioreactor_g(x, u, t):
    return -2.0 * x[0] + u[0]


def _hiv_f(x, u):
    s, m1, m2, m3, r, Tmax, k, N = 10.0, 0.02, 0.5, 4.4, 0.03, 1500.0, 2.4e-5, 300.0
    x1, x2, x3 = x
    return np.array(
        [
            s / (1 + x3) - m1 * x1 + r * x1 * (1 - (x1 + x2) / Tmax) - u[0] * k * x3 * x1,
            u[0] * k * x3 * x1 - m2 * x2,
            N * m2 * x2 - m3 * x3,
        ]
    )


def _hiv_g(x, u, t):
    return -0.05 * x[0] + (1 - u[0]) ** 2


def _mould_f(x, u):
    r, M = 0.3, 10.0
    return np.array([r * (M - x[0]) - u[0] * x[0]])


def _mould_g(x, u, t):
    return 10.0 * x[0] ** 2 + u[0] ** 2


def _bacteria_f(x, u):
    r, A, B = 1.0, 1.0, 12.0
    return np.array([r * x[0] + A * u[0] * x[0] - B * u[0] ** 2 * math.exp(-x[0])])


def _bacteria_g(x, u, t):
    return u[0] ** 2


def _bacteria_gT(x, u):
    return -1.0 * x[0]  # C = 1


def _pp_f(x, u):
    d1, d2 = 0.1, 0.1
    return np.array([(1 - x[1]) * x[0] - d1 * x[0] * u[0], (x[0] - 1) * x[1] - d2 * x[1] * u[0], u[0]])


def _pp_g(x, u, t):
    return 1.0 / 2 * u[0] ** 2  # A = 1


def _pp_gT(x, u):
    return x[0]


def _glucose_f(x, u):
    a, b, c = 1.0, 1.0, 1.0
    return np.array([-a * x[0] - b * x[1], -c * x[1] + u[0]])


def _glucose_g(x, u, t):
    A, l = 2.0, 0.4
    return 100_000.0 * (A * (x[0] - l) ** 2 + u[0] ** 2)


def _timber_f(x, u):
    return np.array([1.0 * x[0] * u[0]])  # k = 1


def _timber_g(x, u, t, r=0.0):
    return -math.exp(-r * t) * x[0] * (1 - u[0])


def _harvest_f(x, u):
    m = 0.2
    return np.array([-(m + u[0]) * x[0]])


def _harvest_g(x, u, t):
    A, k = 5.0, 10.0
    return -A * (k * t / (t + 1)) * x[0] * u[0] + u[0] ** 2


def _invasive_F(x, u):
    """The true annual map (next state) of the discrete-time problem."""
    k, eps = 1.0, 0.01
    return (x + k * x / (eps + x)) * (1 - u)


def _invasive_f(x, u):
    return _invasive_F(x, u) - x  # authors' version: the increment


def _invasive_g(x, u, t):
    return 1.0 * float(np.sum(u**2))  # B = 1


def _invasive_gT(x, u):
    return float(np.sum(x))


INF = math.inf

# name -> (key, x0, T, state bounds, control bounds, f, g, g_T, in_paper)
SPEC = {
    "cancer": ("CANCER", [0.975], 20.0, [(1e-3, 1)], [(0, 2)], _cancer_f, _cancer_g, None, True),
    "bear-populations": (
        "BEARPOPULATIONS",
        [0.4, 0.2, 0.0],
        25.0,
        [(0, 2)] * 3,
        [(0, 0.2)] * 2,
        _bear_f,
        _bear_g,
        None,
        True,
    ),
    "bioreactor": ("BIOREACTOR", [0.5], 2.0, [(0, 1)], [(0, 1)], _bioreactor_f, _bioreactor_g, None, True),
    "hiv-treatment": (
        "HIVTREATMENT",
        [800.0, 0.04, 1.5],
        20.0,
        [(0, 1600), (0, 100), (0, 100)],
        [(0, 1)],
        _hiv_f,
        _hiv_g,
        None,
        True,
    ),
    "mould-fungicide": ("MOULDFUNGICIDE", [1.0], 5.0, [(0, 5)], [(0, 5)], _mould_f, _mould_g, None, True),
    "bacteria": ("BACTERIA", [1.0], 1.0, [(0, 10)], [(0, 2)], _bacteria_f, _bacteria_g, _bacteria_gT, True),
    "predator-prey": (
        "PREDATORPREY",
        [10.0, 1.0, 0.0],
        100.0,
        [(0, 11), (0, 11), (0, 5)],
        [(0, 1)],
        _pp_f,
        _pp_g,
        _pp_gT,
        True,
    ),
    "glucose": ("GLUCOSE", [0.75, 0.0], 0.2, [(0, 1)] * 2, [(0, 0.01)], _glucose_f, _glucose_g, None, True),
    "timber-harvest": ("TIMBERHARVEST", [100.0], 5.0, [(0, 20000)], [(0, 1)], _timber_f, _timber_g, None, False),
    "harvest": ("HARVEST", [0.4], 10.0, [(-INF, INF)], [(0, 1)], _harvest_f, _harvest_g, None, False),
    "invasive-plant": (
        "INVASIVEPLANT",
        [0.5, 1.0, 1.5, 2.0, 10.0],
        10.0,
        [(-INF, INF)] * 5,
        [(0, 1)] * 5,
        _invasive_f,
        _invasive_g,
        _invasive_gT,
        False,
    ),
}
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
    cb = np.array(SPEC[name][4], dtype=float)
    lo, hi = cb[:, 0], cb[:, 1]
    return (lo + hi) / 2 + np.asarray(a, dtype=float) * (hi - lo) / 2


def _clip(name, x):
    sb = np.array(SPEC[name][3], dtype=float)
    return np.clip(x, sb[:, 0], sb[:, 1])


def ref_step(name, x, a, k, H, T=None, terminal_on="before-last"):
    """One step of spec §1: returns (x_{k+1}, r_k)."""
    _, _, T0, _, _, f, g, gT, _ = SPEC[name]
    T = T0 if T is None else T
    dt = T / H
    x = np.asarray(x, dtype=float)
    u = _control(name, a)
    x_next = _clip(name, x + dt * f(x, u))
    r = -g(x, u, k * dt) * dt
    if gT is not None and k == H - 1:
        r += -gT(x if terminal_on == "before-last" else x_next, u)
    return x_next, r


def ref_episode(name, actions, T=None, terminal_on="before-last"):
    """A whole episode as a plain loop: (return, rewards, states x_0..x_H)."""
    x = np.asarray(SPEC[name][1], dtype=float)
    H = len(actions)
    states, rewards = [x], []
    for k in range(H):
        x, r = ref_step(name, x, actions[k], k, H, T, terminal_on)
        states.append(x)
        rewards.append(r)
    return sum(rewards), np.array(rewards), np.array(states)


def _const_actions(name, H, a):
    return np.full((H, len(SPEC[name][4])), a)


def _random_actions(name, H, seed, center=0.0, width=0.9):
    rng = np.random.default_rng(seed)
    return center + width * rng.uniform(-1, 1, size=(H, len(SPEC[name][4])))


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
    key, x0, T, sb, cb, *_, in_paper = SPEC[name]
    task = make_task(name, 20)
    assert task.system.key == key
    assert task.state_size == len(sb) and task.action_size == len(cb)
    assert task.obs_size == len(sb) + 1
    assert task.T == T and task.dt == pytest.approx(T / 20)
    assert task.x0 == tuple(x0)
    assert task.state_bounds == tuple((float(lo), float(hi)) for lo, hi in sb)
    assert task.system.control_bounds == tuple((float(lo), float(hi)) for lo, hi in cb)
    assert task_info(name).in_paper is in_paper
    assert (task.system.terminal_cost is not None) == (SPEC[name][7] is not None)
    assert np.array_equal(np.asarray(task.initial_state()), np.array(x0, dtype=np.float32))


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
    "name", ["predator-prey", "bioreactor", "glucose", "timber-harvest", "harvest", "invasive-plant"]
)
def test_flagged_tasks_carry_a_note(name):
    assert task_info(name).notes.strip()


# ============================================================================================
# f, g, g_T at a point; one transition + reward
# ============================================================================================


@pytest.mark.parametrize("name", NAMES)
def test_dynamics_and_costs_at_a_point(name):
    _, _, _, _, _, f, g, gT, _ = SPEC[name]
    x_np, a = POINTS[name]
    x_np = np.array(x_np)
    u_np = _control(name, a)
    with jax.enable_x64(True):
        task = make_task(name, 20)
        p = dict(task.values)
        x, u = jnp.asarray(x_np), jnp.asarray(u_np)
        np.testing.assert_allclose(np.asarray(task.control(jnp.asarray(a, dtype=float))), u_np, rtol=1e-12)
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
            np.testing.assert_allclose(float(gTx), gT(x_np, u_np), rtol=1e-10, atol=1e-12)


def test_time_dependent_costs_use_physical_time():
    # TIMBERHARVEST with a non-zero discount r = 0.5 at t = 2: -e^{-1} * 150 * (1 - 0.6) = -22.0728...
    with jax.enable_x64(True):
        task = make_task("timber-harvest", 20, {"r": 0.5})
        g = task.system.cost(jnp.array([150.0]), jnp.array([0.6]), jnp.asarray(2.0), dict(task.values))
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
    if which == "clip" and np.all(np.isfinite(np.array(SPEC[name][3]))):
        dt = SPEC[name][2] / H
        raw = x_np + dt * SPEC[name][5](x_np, _control(name, a))
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


@pytest.mark.parametrize("name", NAMES)
def test_episode_matches_plain_loop(name):
    H = 20
    m = len(SPEC[name][4])
    with jax.enable_x64(True):
        task = make_task(name, H)
        for actions in (_const_actions(name, H, 0.3), _random_actions(name, H, seed=1)):
            want_ret, want_rewards, want_states = ref_episode(name, actions)
            acts = jnp.asarray(actions)
            ep = rollout(task, lambda obs, k, key: acts[k], jax.random.key(0))
            assert ep.observations.shape == (H + 1, task.obs_size)
            assert ep.actions.shape == (H, m)
            np.testing.assert_allclose(np.asarray(ep.observations[:, -1]), np.arange(H + 1))
            np.testing.assert_allclose(np.asarray(ep.observations[:, :-1]), want_states, rtol=1e-5, atol=1e-9)
            np.testing.assert_allclose(np.asarray(ep.rewards), want_rewards, rtol=1e-5, atol=1e-9)
            np.testing.assert_allclose(float(jnp.sum(ep.rewards)), want_ret, rtol=1e-5, atol=1e-9)
            np.testing.assert_allclose(float(open_loop_return(task, acts)), want_ret, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("name", ["bacteria", "predator-prey", "invasive-plant"])
def test_terminal_on_final_matches_plain_loop(name):
    H = 20
    actions = _random_actions(name, H, seed=2, center=-0.8 if name == "bacteria" else 0.0, width=0.2)
    with jax.enable_x64(True):
        task = make_task(name, H, {"terminal_on": "final"})
        want, _, _ = ref_episode(name, actions, terminal_on="final")
        np.testing.assert_allclose(float(open_loop_return(task, jnp.asarray(actions))), want, rtol=1e-5)


# ============================================================================================
# Spec facts (§2)
# ============================================================================================


def _const_return(name, H, a, params=None):
    task = make_task(name, H, params)
    return float(open_loop_return(task, jnp.full((H, task.action_size), a, dtype=float)))


@pytest.mark.parametrize("H", [20, 100])
def test_bioreactor_mid_control_is_an_equilibrium_with_return_one(H):
    # a = 0 -> u = 0.5 = D x / G at x = 0.5: x stays 0.5, g = -2*0.5 + 0.5 = -0.5, return 0.5*T = 1.
    with jax.enable_x64(True):
        assert _const_return("bioreactor", H, 0.0) == pytest.approx(1.0, abs=1e-6)
        # and "do nothing" (a = -1) beats it (spec: optimum a = -1)
        assert _const_return("bioreactor", H, -1.0) > 1.3


@pytest.mark.parametrize("H", [20, 100])
def test_bacteria_aggressive_policies_kill_the_population(H):
    # Holds exactly (to rounding: -1.0000000000000002 in float64): the population is clipped to 0
    # well before step H-1, the terminal term C*x_{H-1} is then 0 and the return is -u^2 * T.
    with jax.enable_x64(True):
        assert _const_return("bacteria", H, 0.0) == pytest.approx(-1.0, abs=1e-9)
        assert _const_return("bacteria", H, 1.0) == pytest.approx(-4.0, abs=1e-9)
        # a mild nutrient dose lets it grow instead (return positive: C*x_{H-1} dominates)
        assert _const_return("bacteria", H, -1.0) > 2.0


def test_terminal_on_final_differs_from_default_on_bacteria():
    H = 20
    with jax.enable_x64(True):
        default = _const_return("bacteria", H, -0.9)
        final = _const_return("bacteria", H, -0.9, {"terminal_on": "final"})
        # u = 0.1: the population grows, so x_H > x_{H-1} and the 'final' return is larger.
        _, _, states = ref_episode("bacteria", _const_actions("bacteria", H, -0.9))
        assert final - default == pytest.approx(states[H, 0] - states[H - 1, 0], rel=1e-9)
        assert final - default > 1e-3


@pytest.mark.parametrize("H", [20, 100])
def test_predator_prey_is_degenerate(H):
    with jax.enable_x64(True):
        assert _const_return("predator-prey", H, -1.0) == pytest.approx(0.0, abs=1e-12)
        # u = 0.5: -(1/2)*0.25*T = -12.5
        assert _const_return("predator-prey", H, 0.0) == pytest.approx(-12.5, abs=1e-9)
        task = make_task("predator-prey", H)
        # random plans: prey always extinct at x_{H-1}, return = -sum (1/2) u^2 dt ~ -100/6 = -16.7
        rng = np.random.default_rng(0)
        acts = jnp.asarray(rng.uniform(-1, 1, size=(64, H, 1)))
        rets = jax.vmap(lambda a: open_loop_return(task, a))(acts)
        u = (1 + np.asarray(acts)[..., 0]) / 2
        np.testing.assert_allclose(np.asarray(rets), -np.sum(0.5 * u**2 * task.dt, axis=1), rtol=1e-9)
        assert float(jnp.mean(rets)) == pytest.approx(-100 / 6, abs=1.0)


def test_predator_prey_t10_variant():
    task = make_task("predator-prey-t10", 100)
    assert task.T == 10.0 and task.dt == pytest.approx(0.1)
    assert task.name == "predator-prey-t10"
    with jax.enable_x64(True):
        # spec: T = 10 does not fix the degeneracy at H = 100: a = -1 still returns 0 (prey clipped)
        assert _const_return("predator-prey-t10", 100, -1.0) == pytest.approx(0.0, abs=1e-12)
        assert _const_return("predator-prey-t10", 100, 0.0) == pytest.approx(-1.25, abs=1e-9)
        _, _, states = ref_episode("predator-prey", _const_actions("predator-prey", 100, -1.0), T=10.0)
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
        for a in (-1.0, 0.0, 1.0):
            assert _const_return("glucose", 20, a) == pytest.approx(-3262, abs=2.0)
            assert _const_return("glucose", 100, a) == pytest.approx(-3206, abs=2.0)
        # spec: bear a = 0 -> u_p = 0.1 costs ~100 per unit time -> about -2500 over T = 25
        assert _const_return("bear-populations", 20, 0.0) == pytest.approx(-2500, rel=0.01)


def test_invasive_plant_equals_the_annual_map_at_h10_only():
    x = np.array([0.3, 0.8, 1.2, 2.5, 7.0])
    u = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
    a = 2 * u - 1
    with jax.enable_x64(True):
        step10 = make_task("invasive-plant", 10).transition(jnp.asarray(x), jnp.asarray(a), jnp.asarray(0))
        np.testing.assert_allclose(np.asarray(step10), _invasive_F(x, u), rtol=1e-12)
        step20 = make_task("invasive-plant", 20).transition(jnp.asarray(x), jnp.asarray(a), jnp.asarray(0))
        np.testing.assert_allclose(np.asarray(step20), (x + _invasive_F(x, u)) / 2, rtol=1e-12)
        assert not np.allclose(np.asarray(step20), _invasive_F(x, u))


# ============================================================================================
# Gradients, jit, vmap
# ============================================================================================

# Centre of the random plans used for gradient checks (away from clip kinks; BACTERIA at a ~ -0.8
# so that the population survives and the terminal term carries gradient).
GRAD_CENTRE = {"bacteria": -0.8}


@pytest.mark.parametrize("name", NAMES)
def test_gradient_matches_finite_differences(name):
    H = 20
    eps = 1e-6
    actions = _random_actions(name, H, seed=3, center=GRAD_CENTRE.get(name, 0.0), width=0.3)
    with jax.enable_x64(True):
        task = make_task(name, H)
        ret = jax.jit(lambda a: open_loop_return(task, a))
        grad = np.asarray(jax.jit(jax.grad(lambda a: open_loop_return(task, a)))(jnp.asarray(actions)))
        assert grad.shape == actions.shape
        assert np.all(np.isfinite(grad))
        assert np.any(grad != 0)
        R = abs(float(ret(jnp.asarray(actions))))
        rng = np.random.default_rng(4)
        coords = [(int(rng.integers(H)), int(rng.integers(actions.shape[1]))) for _ in range(5)]
        coords.append((0, 0))
        for k, j in coords:
            plus, minus = actions.copy(), actions.copy()
            plus[k, j] += eps
            minus[k, j] -= eps
            fd = (float(ret(jnp.asarray(plus))) - float(ret(jnp.asarray(minus)))) / (2 * eps)
            atol = 1e-8 + 50 * np.finfo(float).eps * max(1.0, R) / eps
            np.testing.assert_allclose(grad[k, j], fd, rtol=1e-5, atol=atol, err_msg=f"{name} {(k, j)}")


@pytest.mark.parametrize("name", NAMES)
def test_jit_and_vmap_agree_with_plain_calls(name):
    H = 10
    task = make_task(name, H)
    acts = jnp.asarray(np.stack([_random_actions(name, H, seed=s) for s in range(3)]), dtype=jnp.float32)
    plain = np.array([float(open_loop_return(task, acts[i])) for i in range(3)])
    jitted = np.array([float(jax.jit(open_loop_return, static_argnums=0)(task, acts[i])) for i in range(3)])
    vmapped = np.asarray(jax.jit(jax.vmap(lambda a: open_loop_return(task, a)))(acts))
    np.testing.assert_allclose(jitted, plain, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(vmapped, plain, rtol=1e-5, atol=1e-5)

    def act(obs, k, key):
        return jax.random.uniform(key, (task.action_size,), minval=-1.0, maxval=1.0)

    keys = jax.random.split(jax.random.key(7), 3)
    eps_plain = [rollout(task, act, keys[i]) for i in range(3)]
    eps_vmap = jax.jit(jax.vmap(lambda kk: rollout(task, act, kk)))(keys)
    for i in range(3):
        np.testing.assert_allclose(np.asarray(eps_vmap.actions[i]), np.asarray(eps_plain[i].actions), rtol=1e-6)
        np.testing.assert_allclose(
            np.asarray(eps_vmap.observations[i]), np.asarray(eps_plain[i].observations), rtol=1e-5, atol=1e-6
        )
        np.testing.assert_allclose(np.asarray(eps_vmap.rewards[i]), np.asarray(eps_plain[i].rewards), rtol=1e-5, atol=1e-5)


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
    sb = np.array(SPEC[name][3], dtype=float)
    lo, hi = sb[:, 0], sb[:, 1]
    lo_f = np.where(np.isfinite(lo), lo, -1e3)
    hi_f = np.where(np.isfinite(hi), hi, 1e3)
    out = [lo_f, hi_f, lo_f - 1.0, hi_f + 1.0, np.where(np.arange(len(lo)) % 2 == 0, lo_f - 1.0, hi_f + 1.0)]
    out += [np.array(s, dtype=float) for s in SINGULAR_STATES.get(name, [])]
    return out


@pytest.mark.parametrize("name", NAMES)
def test_guards_keep_transition_and_reward_finite(name):
    task = make_task(name, 20)
    m = task.action_size
    step = jax.jit(lambda x, a, k: task.step(x, a, k))
    for x in _probe_states(name):
        for a in (np.full(m, -10.0), np.full(m, 10.0), np.zeros(m)):
            for k in (0, task.horizon - 1):
                x_next, r = step(jnp.asarray(x, dtype=jnp.float32), jnp.asarray(a, dtype=jnp.float32), jnp.asarray(k))
                assert np.all(np.isfinite(np.asarray(x_next))), (name, x, a, k)
                assert np.isfinite(float(r)), (name, x, a, k)


@pytest.mark.parametrize("name", NAMES)
def test_whole_episodes_with_wild_actions_stay_finite(name):
    task = make_task(name)  # the default horizon
    assert task.horizon == 100
    acts = jnp.stack(
        [jnp.full((task.horizon, task.action_size), v, dtype=jnp.float32) for v in (-10.0, 10.0)]
        + [jnp.asarray(np.random.default_rng(5).uniform(-10, 10, (task.horizon, task.action_size)), dtype=jnp.float32)]
    )
    eps = jax.vmap(lambda a: rollout(task, lambda obs, k, key: a[k], jax.random.key(0)))(acts)
    assert np.all(np.isfinite(np.asarray(eps.observations)))
    assert np.all(np.isfinite(np.asarray(eps.rewards)))
