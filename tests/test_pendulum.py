"""Double pendulum: physics, integration, episode structure, gradients, transforms.

Reference values are computed here independently of the implementation: the spec's formulas in
plain Python/NumPy and a fine fixed-step RK4 (no adaptive solver).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from awmctl.errors import BadInputError
from awmctl.tasks import make_task, open_loop_return, rollout
from awmctl.tasks.pendulum import DoublePendulumTask, derivatives, integrate_interval

G, L1, L2, M1, M2 = 9.8, 1.0, 1.0, 1.0, 1.0


def ref_derivs(s, g=G, l1=L1, l2=L2, m1=M1, m2=M2):
    """Spec §3 formulas, plain Python floats."""
    th1, w1, th2, w2 = (float(v) for v in s)
    d = th2 - th1
    den1 = (m1 + m2) * l1 - m2 * l1 * math.cos(d) ** 2
    dw1 = (
        m2 * l1 * w1**2 * math.sin(d) * math.cos(d)
        + m2 * g * math.sin(th2) * math.cos(d)
        + m2 * l2 * w2**2 * math.sin(d)
        - (m1 + m2) * g * math.sin(th1)
    ) / den1
    dw2 = (
        -m2 * l2 * w2**2 * math.sin(d) * math.cos(d)
        + (m1 + m2)
        * (g * math.sin(th1) * math.cos(d) - l1 * w1**2 * math.sin(d) - g * math.sin(th2))
    ) / ((l2 / l1) * den1)
    return np.array([w1, dw1, w2, dw2])


def ref_rk4(s, duration, steps_per_unit=40_000):
    """Classical fixed-step RK4 of the spec's ODE over ``duration``."""
    n = max(1, round(duration * steps_per_unit))
    h = duration / n
    y = np.array(s, dtype=np.float64)
    for _ in range(n):
        k1 = ref_derivs(y)
        k2 = ref_derivs(y + 0.5 * h * k1)
        k3 = ref_derivs(y + 0.5 * h * k2)
        k4 = ref_derivs(y + h * k3)
        y = y + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    return y


def k_(k: int) -> jax.Array:
    return jnp.asarray(k, dtype=jnp.int32)


def act(a: float) -> jax.Array:
    return jnp.asarray([a], dtype=float)


def actions(task, first: float, rest: float = 0.0) -> jax.Array:
    return jnp.full((task.horizon, 1), rest, dtype=float).at[0, 0].set(first)


# Eager calls of the adaptive solver re-trace every time (slow); tests jit what they call a lot.
jit_return = jax.jit(open_loop_return)


def jit_transition(task):
    return jax.jit(lambda s, a, k: task.transition(s, a, k))


# --------------------------------------------------------------------------- physics


def test_derivatives_match_spec_formulas():
    with jax.enable_x64(True):
        s = (0.7, -1.3, 2.1, 0.4)
        got = derivatives(jnp.asarray(s), G, L1, L2, M1, M2)
        np.testing.assert_allclose(np.asarray(got), ref_derivs(s), rtol=1e-12, atol=1e-12)
        # non-default constants catch swapped masses/lengths
        consts = {"g": 9.0, "l1": 1.3, "l2": 0.7, "m1": 1.1, "m2": 0.6}
        got = derivatives(jnp.asarray(s), 9.0, 1.3, 0.7, 1.1, 0.6)
        np.testing.assert_allclose(np.asarray(got), ref_derivs(s, **consts), rtol=1e-12, atol=1e-12)
        # hanging straight down at rest is an equilibrium
        rest = derivatives(jnp.zeros(4), G, L1, L2, M1, M2)
        np.testing.assert_array_equal(np.asarray(rest), np.zeros(4))


def test_one_interval_matches_fine_rk4():
    with jax.enable_x64(True):
        phys = (("g", G), ("L1", L1), ("L2", L2), ("M1", M1), ("M2", M2))
        for s in [(0.7, -1.3, 2.1, 0.4), (54.0, 0.0, -90.0, 0.0)]:
            got = integrate_interval(jnp.asarray(s), 0.05, phys)
            ref = ref_rk4(s, 0.05)
            np.testing.assert_allclose(np.asarray(got), ref, rtol=0, atol=1e-7)
            # and the step really moved the state (not a no-op)
            assert np.max(np.abs(ref - np.asarray(s))) > 1e-3


# --------------------------------------------------------------------------- episode


def test_defaults_and_registry():
    task = make_task("double-pendulum")
    assert isinstance(task, DoublePendulumTask)
    assert (task.horizon, task.dt, task.goal, task.angle_scale) == (10, 0.05, (0.3, -0.5), 180.0)
    assert (task.state_size, task.action_size, task.obs_size) == (4, 1, 5)
    assert task.params == {
        "goal": (0.3, -0.5), "angle_scale": 180.0, "dt": 0.05,
        "g": 9.8, "L1": 1.0, "L2": 1.0, "M1": 1.0, "M2": 1.0,
    }  # fmt: skip
    assert all(lo == -math.inf and hi == math.inf for lo, hi in task.state_bounds)
    rad = make_task("double-pendulum-rad", 6)
    assert rad.angle_scale == math.pi and rad.name == "double-pendulum-rad"
    # params round-trip through the registry
    again = make_task("double-pendulum-rad", 6, rad.params)
    assert again.params == rad.params and again.goal_state == rad.goal_state


@pytest.mark.parametrize(
    "params",
    [{"goal": 0.3}, {"goal": (0.1, 0.2, 0.3)}, {"dt": 0.0}, {"dt": -0.1}, {"angle_scale": 0.0},
     {"M1": 0.0}, {"L2": -1.0}, {"goal": "far"}, {"dt": math.nan}],
)  # fmt: skip
def test_bad_params_rejected(params):
    with pytest.raises(BadInputError):
        make_task("double-pendulum", 10, params)


def test_goal_state_is_l_minus_2_intervals_from_goal_start():
    with jax.enable_x64(True):
        task = DoublePendulumTask(horizon=10, goal=(0.3, -0.5))
        start = (180.0 * 0.3, 0.0, 180.0 * -0.5, 0.0)
        ref = ref_rk4(start, 8 * 0.05)
        np.testing.assert_allclose(task.goal_state, ref, rtol=0, atol=1e-6)
        # initial (placeholder) state is the goal state
        np.testing.assert_array_equal(
            np.asarray(task.initial_state(jax.random.key(0))), np.asarray(task.goal_state)
        )
        # degenerate horizons: L = 2 -> no interval, L = 1 -> same (documented)
        for h in (1, 2):
            assert DoublePendulumTask(horizon=h).goal_state == start


def test_step_zero_sets_state_from_action_and_later_actions_are_ignored():
    with jax.enable_x64(True):
        task = DoublePendulumTask(horizon=5, goal=(0.3, -0.5))
        junk = jnp.asarray([1.0, 2.0, 3.0, 4.0])
        transition = jit_transition(task)
        s1 = transition(junk, act(0.25), k_(0))
        np.testing.assert_allclose(np.asarray(s1), [45.0, 0.0, -90.0, 0.0], rtol=0, atol=1e-12)
        s2a = transition(s1, act(-0.9), k_(1))
        s2b = transition(s1, act(0.7), k_(1))
        np.testing.assert_array_equal(np.asarray(s2a), np.asarray(s2b))
        ref = ref_rk4([45.0, 0.0, -90.0, 0.0], 0.05)
        np.testing.assert_allclose(np.asarray(s2a), ref, rtol=0, atol=1e-7)
        # the same at a later step: autonomous, one dt
        s3 = transition(s1, act(0.0), k_(3))
        np.testing.assert_allclose(np.asarray(s3), np.asarray(s2a), rtol=0, atol=1e-12)


def test_reward_only_at_last_step_on_state_before_last_integration():
    with jax.enable_x64(True):
        task = DoublePendulumTask(horizon=5, goal=(0.3, -0.5))
        s = jnp.asarray([1.0, -2.0, 0.5, 3.0])
        nxt = jnp.asarray([100.0, 100.0, 100.0, 100.0])
        expected = -np.mean((np.asarray([1.0, -2.0, 0.5, 3.0]) - np.asarray(task.goal_state)) ** 2)
        for k in range(4):
            assert float(task.reward(s, act(0.2), k_(k), nxt)) == 0.0
        last = float(task.reward(s, act(0.2), k_(4), nxt))
        np.testing.assert_allclose(last, expected, rtol=1e-12)


def test_episode_return_against_reference():
    with jax.enable_x64(True):
        task = DoublePendulumTask(horizon=6, goal=(0.3, -0.5))
        goal = ref_rk4((54.0, 0.0, -90.0, 0.0), 4 * 0.05)
        # the optimum: a = g0 exactly gives return 0 (later actions are irrelevant)
        assert abs(float(jit_return(task, actions(task, 0.3, rest=0.8)))) < 1e-12
        # another first action: -mean((s_{L-1} - goal)^2), s_{L-1} after L-2 intervals
        s_last = ref_rk4((0.2 * 180.0, 0.0, -90.0, 0.0), 4 * 0.05)
        expected = -np.mean((s_last - goal) ** 2)
        got = float(jit_return(task, actions(task, 0.2, rest=-0.4)))
        np.testing.assert_allclose(got, expected, rtol=1e-8)
        # rewards of a rollout: zero everywhere but the last step
        run = jax.jit(lambda key: rollout(task, lambda obs, k, sub: act(0.2), key))
        ep = run(jax.random.key(0))
        np.testing.assert_array_equal(np.asarray(ep.rewards[:-1]), np.zeros(5))
        np.testing.assert_allclose(float(ep.rewards[-1]), expected, rtol=1e-8)
        np.testing.assert_allclose(np.asarray(ep.observations[:, -1]), np.arange(7.0))
        np.testing.assert_allclose(np.asarray(ep.observations[-2, :4]), s_last, atol=1e-6)


def test_l2_return_is_the_quadratic_angle_term():
    with jax.enable_x64(True):
        task = DoublePendulumTask(horizon=2, goal=(0.3, -0.5))
        got = float(jit_return(task, actions(task, 0.1)))
        np.testing.assert_allclose(got, -((180.0 * (0.1 - 0.3)) ** 2) / 4.0, rtol=1e-12)


def test_radian_variant_scale():
    with jax.enable_x64(True):
        task = make_task("double-pendulum-rad", 4, {"goal": (0.5, 0.25)})
        start = (math.pi * 0.5, 0.0, math.pi * 0.25, 0.0)
        np.testing.assert_allclose(task.goal_state, ref_rk4(start, 2 * 0.05), atol=1e-7)
        s1 = jit_transition(task)(jnp.zeros(4), act(-1.0), k_(0))
        np.testing.assert_allclose(np.asarray(s1), [-math.pi, 0.0, math.pi * 0.25, 0.0], atol=1e-15)


# --------------------------------------------------------------------------- gradients, transforms


def test_gradient_matches_central_finite_differences():
    with jax.enable_x64(True):
        task = DoublePendulumTask(horizon=4, goal=(0.3, -0.5))
        ret = jax.jit(lambda acts: open_loop_return(task, acts))
        grad = jax.jit(jax.grad(lambda acts: open_loop_return(task, acts)))  # one compile
        for a in (0.1, 0.37, -0.6):
            # h = 1e-5 keeps the O(h^2) truncation well below the solver's tolerance-level
            # noise; adjoint gradient and FD agree to ~4e-7 relative here.
            h = 1e-5
            base = jnp.full((4, 1), 0.2)
            up, down = float(ret(base.at[0, 0].set(a + h))), float(ret(base.at[0, 0].set(a - h)))
            fd = (up - down) / (2 * h)
            g_all = np.asarray(grad(base.at[0, 0].set(a)))
            assert abs(g_all[0, 0]) > 100.0
            np.testing.assert_allclose(g_all[0, 0], fd, rtol=1e-5)
            # later actions have no influence at all
            np.testing.assert_array_equal(g_all[1:], np.zeros((3, 1)))


def test_jit_and_vmap_equal_plain_call():
    task = DoublePendulumTask(horizon=4)
    firsts = jnp.asarray([-0.8, 0.0, 0.3, 0.55], dtype=float)
    batch = jax.vmap(lambda a: actions(task, 0.0).at[0, 0].set(a))(firsts)
    # eager solver calls are slow (re-traced every time): one plain call, all four jitted
    plain1 = float(open_loop_return(task, batch[0]))
    jitted = np.asarray([float(jit_return(task, batch[i])) for i in range(4)])
    np.testing.assert_allclose(jitted[0], plain1, rtol=1e-5, atol=1e-6)
    plain = jitted
    vmapped = np.asarray(jax.jit(jax.vmap(lambda acts: open_loop_return(task, acts)))(batch))
    np.testing.assert_allclose(vmapped, plain, rtol=1e-5, atol=1e-6)
    assert plain[2] == pytest.approx(0.0, abs=1e-3) and plain[0] < -100.0
