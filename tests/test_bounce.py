"""One-bounce block: hand-simulated episodes, closed-form final position, gradients.

Reference values come from a plain-Python simulation of the spec's update rules and from a
closed form of the final position (geometric sums, mirrored at the wall), never from the task.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from awmctl.errors import BadInputError
from awmctl.tasks import make_task, open_loop_return, rollout
from awmctl.tasks.bounce import BounceTask

DT, C, XW, XG = 0.01, 10.0, -1.0, 0.5


def hand_sim(a, horizon, goal=XG):
    """Spec §4 in plain Python: states x_0..x_H, rewards r_0..r_{H-1}, step index of the bounce."""
    x, v = 0.0, 0.0
    states, rewards, bounce_at = [(x, v, XW, goal)], [], None
    for k in range(horizon):
        rewards.append(-((x - goal) ** 2) if k == horizon - 1 else 0.0)
        if k == 0:
            x, v = 0.0, 10.0 * (a - 2.0)
        else:
            dx = v * DT  # velocity before the update
            if x + dx <= XW:
                x, v = 2.0 * XW - x - dx, -v
                bounce_at = k if bounce_at is None else bounce_at
            else:
                x, v = x + dx, (1.0 - C * DT) * v
        states.append((x, v, XW, goal))
    return np.array(states), np.array(rewards), bounce_at


def closed_form_final(a, horizon):
    """x_{H-1} (the rewarded state) after n = H-2 updates, via the unfolded trajectory.

    Unfolded across the wall, the speeds are v0*r^(j-1) for updates j <= m (m = bounce update)
    and v0*r^(j-2) after it (the bounce step applies no drag); the real position is the mirror
    image 2*x_w - y once bounced. m is the first j with dt*v0*(1 - r^j)/(1 - r) <= x_w.
    """
    n = horizon - 2
    v0, r = 10.0 * (a - 2.0), 1.0 - C * DT
    m = next((j for j in range(1, n + 1) if DT * v0 * (1 - r**j) / (1 - r) <= XW), None)
    if m is None:
        return DT * v0 * (1 - r**n) / (1 - r), None
    before = sum(r ** (j - 1) for j in range(1, m + 1))
    after = sum(r ** (j - 2) for j in range(m + 1, n + 1))
    y = DT * v0 * (before + after)
    return 2.0 * XW - y, m


def acts(horizon, first, rest=0.0):
    return jnp.full((horizon, 1), rest, dtype=float).at[0, 0].set(first)


def k_(k):
    return jnp.asarray(k, dtype=jnp.int32)


jit_return = jax.jit(open_loop_return)  # the task is all-static: one compile per horizon/dtype


@jax.jit
def _constant_rollout(task, a, key):
    return rollout(task, lambda obs, k, sub: a[None], key)


# --------------------------------------------------------------------------- registry


def test_defaults_and_registry():
    task = make_task("bounce")
    assert isinstance(task, BounceTask)
    got = (task.horizon, task.dt, task.goal, task.wall, task.friction)
    assert got == (100, 0.01, 0.5, -1.0, 10.0)
    assert (task.state_size, task.action_size, task.obs_size) == (4, 1, 5)
    assert task.params == {
        "goal": 0.5, "dt": 0.01, "friction": 10.0, "wall": -1.0,
        "launch_gain": 10.0, "launch_offset": 2.0,
    }  # fmt: skip
    np.testing.assert_array_equal(
        np.asarray(task.initial_state(jax.random.key(0))), [0.0, 0.0, -1.0, 0.5]
    )
    again = make_task("bounce", 30, {"goal": -0.25})
    assert again.goal == -0.25 and make_task("bounce", 30, again.params).params == again.params


@pytest.mark.parametrize(
    "params",
    [{"dt": 0.0}, {"friction": -1.0}, {"wall": 0.5}, {"goal": (0.1, 0.2)}, {"goal": "x"},
     {"dt": math.inf}, {"mass": 1.0}],
)  # fmt: skip
def test_bad_params_rejected(params):
    with pytest.raises(BadInputError):
        make_task("bounce", 10, params)


# --------------------------------------------------------------------------- dynamics


@pytest.mark.parametrize("a", [-1.0, -0.3, 0.4, 0.9, 1.0])
def test_episode_matches_hand_simulation(a):
    with jax.enable_x64(True):
        task = BounceTask(horizon=100)
        ref_states, ref_rewards, bounce_at = hand_sim(a, 100)
        assert (bounce_at is None) == (a == 1.0)  # every a < 1 reaches the wall at H = 100
        ep = _constant_rollout(task, jnp.asarray(a), jax.random.key(0))
        states = np.asarray(ep.observations[:, :4])
        np.testing.assert_allclose(states, ref_states, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(np.asarray(ep.observations[:, 4]), np.arange(101.0))
        np.testing.assert_allclose(np.asarray(ep.rewards), ref_rewards, rtol=0, atol=1e-12)
        # later actions are ignored
        np.testing.assert_allclose(
            float(jit_return(task, acts(100, a, rest=0.77))), ref_rewards.sum(), atol=1e-12
        )


def test_step_rules_by_hand():
    with jax.enable_x64(True):
        task = BounceTask(horizon=10)
        # k = 0 sets the state from the action, whatever it was
        s = task.transition(jnp.asarray([5.0, 7.0, 0.0, 0.0]), jnp.asarray([0.5]), k_(0))
        np.testing.assert_allclose(np.asarray(s), [0.0, -15.0, -1.0, 0.5], atol=1e-15)
        # free step: x moves with the OLD velocity, then v decays by 0.9
        s = task.transition(jnp.asarray([0.2, -3.0, -1.0, 0.5]), jnp.asarray([0.5]), k_(3))
        np.testing.assert_allclose(np.asarray(s), [0.17, -2.7, -1.0, 0.5], atol=1e-15)
        # collision: -0.95 - 0.1 <= -1 -> mirror to 2*(-1) + 0.95 + 0.1 = -0.95, v reversed, no drag
        s = task.transition(jnp.asarray([-0.95, -10.0, -1.0, 0.5]), jnp.asarray([-0.2]), k_(4))
        np.testing.assert_allclose(np.asarray(s), [-0.95, 10.0, -1.0, 0.5], atol=1e-15)
        # exactly touching the wall counts as a collision (<=)
        s = task.transition(jnp.asarray([-0.5, -50.0, -1.0, 0.5]), jnp.asarray([0.0]), k_(1))
        np.testing.assert_allclose(np.asarray(s), [-1.0, 50.0, -1.0, 0.5], atol=1e-15)


@pytest.mark.parametrize("a", [-1.0, -0.55, 0.0, 0.3, 0.95, 1.0])
def test_final_position_closed_form(a):
    with jax.enable_x64(True):
        task = BounceTask(horizon=100)
        expected_x, m = closed_form_final(a, 100)
        _, _, bounce_at = hand_sim(a, 100)
        assert m == bounce_at
        got = float(jit_return(task, acts(100, a)))
        np.testing.assert_allclose(got, -((expected_x - XG) ** 2), rtol=1e-12)
    if a == 1.0:  # never reaches the wall: x = -(1 - 0.9^98)
        assert m is None and expected_x == pytest.approx(-(1.0 - 0.9**98), abs=1e-12)


def test_short_horizon_never_reaches_the_wall():
    with jax.enable_x64(True):
        task = BounceTask(horizon=5)  # 3 updates: at most 0.3 + 0.27 + 0.243 = 0.813 travelled
        for a in (-1.0, 1.0):
            x = 10.0 * (a - 2.0) * DT * (1 + 0.9 + 0.81)
            np.testing.assert_allclose(float(jit_return(task, acts(5, a))), -((x - XG) ** 2))


def test_reward_only_at_last_step_on_state_before_update():
    task = BounceTask(horizon=7)
    s = jnp.asarray([0.2, 3.0, -1.0, 0.5])
    nxt = jnp.asarray([9.0, 9.0, -1.0, 0.5])
    a = jnp.asarray([0.1])
    for k in range(6):
        assert float(task.reward(s, a, k_(k), nxt)) == 0.0
    assert float(task.reward(s, a, k_(6), nxt)) == pytest.approx(-0.09)


# --------------------------------------------------------------------------- gradients, transforms


def test_gradient_matches_finite_differences_away_from_kinks():
    with jax.enable_x64(True):
        task = BounceTask(horizon=100)

        def ret_(x):
            return open_loop_return(task, acts(100, 0.0).at[0, 0].set(x))

        ret, grad = jax.jit(ret_), jax.jit(jax.grad(ret_))
        for a in (-0.7, 0.3, 0.8, 1.0):
            _check_gradient(a, ret, grad)


def _check_gradient(a, ret, grad):
    h = 1e-6
    # the bounce happens at the same step on both sides: no kink inside [a - h, a + h]
    assert hand_sim(a - h, 100)[2] == hand_sim(a + h, 100)[2]
    fd = (float(ret(a + h)) - float(ret(a - h))) / (2 * h)
    g = float(grad(jnp.asarray(a)))
    assert abs(g) > 0.1
    np.testing.assert_allclose(g, fd, rtol=1e-6)
    # and against the closed form: the unfolded y is proportional to v0 (piecewise in m), and
    # x = 2*x_w - y once bounced, so dx/da = 10 * dx/dv0 = 10 * (x - 2*x_w) / v0 (bounced)
    # or 10 * x / v0 (not bounced)
    x, m = closed_form_final(a, 100)
    v0 = 10.0 * (a - 2.0)
    dx_da = 10.0 * ((x - 2.0 * XW) / v0 if m is not None else x / v0)
    np.testing.assert_allclose(g, -2.0 * (x - XG) * dx_da, rtol=1e-9)


def test_jit_and_vmap_equal_plain_call():
    task = BounceTask(horizon=100)
    firsts = [-0.9, -0.2, 0.45, 1.0]
    batch = jnp.stack([acts(100, a) for a in firsts])
    plain = np.asarray([float(open_loop_return(task, batch[i])) for i in (0, 2)])  # eager: slow
    jitted = np.asarray([float(jit_return(task, batch[i])) for i in range(4)])
    vmapped = np.asarray(jax.jit(jax.vmap(lambda x: open_loop_return(task, x)))(batch))
    np.testing.assert_allclose(jitted[[0, 2]], plain, rtol=1e-6)
    plain = jitted
    np.testing.assert_allclose(vmapped, plain, rtol=1e-6)
    ref = np.asarray([hand_sim(a, 100)[1].sum() for a in firsts])
    np.testing.assert_allclose(plain, ref, rtol=1e-4)
