"""The robustness variants of every task: `--task-param distractors=N` and `noise=SIGMA`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import run

from awmctl import artifacts, store
from awmctl.errors import BadInputError
from awmctl.rollouts import advance, collect, random_controller
from awmctl.tasks import PerturbedTask, make_task, reset_key, task_from_record, task_record


def _step_controller(task):
    """Acts from the step index alone (a fixed plan), so two tasks see the same actions."""
    plan = jnp.sin(jnp.arange(task.horizon, dtype=jnp.float32))[:, None] * jnp.ones(
        (1, task.action_size)
    )
    return lambda obs, k, key: plan[k].astype(obs.dtype)


def test_distractors_are_prepended_fresh_standard_normals_that_change_nothing_else():
    clean, noisy = make_task("cancer", 100), make_task("cancer", 100, {"distractors": 4})
    assert noisy.obs_size == clean.obs_size + 4 and noisy.state_size == clean.state_size + 4
    keys = jax.random.key(3)
    a = collect(clean, _step_controller(clean), 64, keys)
    b = collect(noisy, _step_controller(noisy), 64, keys)
    # The state and the step index are the clean task's, bit for bit; so are the rewards up to
    # rounding (two programs: XLA may fuse a reward's products differently in each).
    np.testing.assert_array_equal(b.observations[..., 4:], a.observations)
    np.testing.assert_allclose(b.rewards, a.rewards, rtol=1e-6, atol=1e-7)
    xi = np.asarray(b.observations[..., :4]).reshape(-1, 4)
    assert abs(xi.mean()) < 0.03 and abs(xi.std() - 1.0) < 0.03
    # Fresh at every step and in every dimension: no correlation across steps or dimensions.
    steps = np.asarray(b.observations[..., :4])
    assert abs(np.corrcoef(steps[:, :-1, 0].ravel(), steps[:, 1:, 0].ravel())[0, 1]) < 0.05
    assert np.all(np.abs(np.corrcoef(xi.T) - np.eye(4)) < 0.05)
    # Independent of the actions: another policy sees the same distractors from the same keys.
    c = collect(noisy, random_controller(noisy), 64, keys)
    np.testing.assert_array_equal(c.observations[..., :4], b.observations[..., :4])


def test_zero_noise_and_zero_distractors_change_nothing_bitwise():
    clean, zero = (
        make_task("bacteria", 20),
        make_task("bacteria", 20, {"distractors": 0, "noise": 0.0}),
    )
    assert isinstance(zero, PerturbedTask) and zero.params["noise"] == 0.0  # recorded, though inert
    key = jax.random.key(0)
    for x, y in zip(
        collect(clean, random_controller(clean), 8, key),
        collect(zero, random_controller(zero), 8, key),
    ):
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes()
    # The online loops' one-step path too.
    state, k, action = clean.initial_state(key), jnp.asarray(3), jnp.asarray([0.2], jnp.float32)
    for x, y in zip(advance(clean, state, k, action, key), advance(zero, state, k, action, key)):
        assert x.tobytes() == y.tobytes()


def test_process_noise_is_added_after_the_euler_step_and_before_the_clip():
    sigma = 0.5
    task = make_task("bacteria", 20, {"noise": sigma})  # state bounds [0, 10]
    inner = task.inner
    state, action, k = (
        jnp.asarray([0.05], jnp.float32),
        jnp.asarray([1.0], jnp.float32),
        jnp.asarray(4),
    )
    key = jax.random.key(11)
    noise_key, _ = jax.random.split(key)
    eps = sigma * jax.random.normal(noise_key, (1,), jnp.float32)
    euler = state + inner.dt * inner.system.dynamics(
        state, inner.control(action), dict(inner.values)
    )
    next_state, reward = task.random_step(state, action, k, key)
    np.testing.assert_allclose(next_state, jnp.clip(euler + eps, 0.0, 10.0), rtol=1e-6)
    assert float(reward) == float(inner.reward(state, action, k, next_state))
    # Clipped after the noise, not before: an Euler step past the bound can come back inside.
    high = jnp.asarray([9.99], jnp.float32)
    over = high + inner.dt * inner.system.dynamics(high, inner.control(action), dict(inner.values))
    draws = jax.vmap(lambda kk: task.random_step(high, action, k, kk)[0])(
        jax.random.split(key, 200)
    )
    assert float(over[0]) > 10.0 and float(draws.min()) < 10.0 and float(draws.max()) == 10.0
    # Resets stay deterministic; the noise comes from the episode's key (reproducible, and
    # different episodes differ).
    assert jnp.array_equal(
        task.initial_state(reset_key(jax.random.key(1))),
        task.initial_state(reset_key(jax.random.key(2))),
    )
    a = collect(task, random_controller(task), 4, jax.random.key(5))
    b = collect(task, random_controller(task), 4, jax.random.key(5))
    clean = collect(inner, random_controller(inner), 4, jax.random.key(5))
    np.testing.assert_array_equal(a.observations, b.observations)
    np.testing.assert_array_equal(a.actions, clean.actions)
    assert not np.array_equal(a.observations, clean.observations)


# One task of each kind (Myriad's Euler-and-clip, the pendulum's ODE, the bounce, a user's task);
# every Myriad task shares the first's code path.
@pytest.mark.parametrize("name", ["cancer", "double-pendulum", "bounce", "lq_task:LinearQuadratic"])
def test_every_task_takes_both_and_rebuilds_from_its_record(name):
    task = make_task(name, 6, {"distractors": 2, "noise": 0.01})
    episodes = collect(task, random_controller(task), 3, jax.random.key(0))
    assert episodes.observations.shape[-1] == task.obs_size == make_task(name, 6).obs_size + 2
    assert np.isfinite(np.asarray(episodes.rewards)).all()
    assert task_from_record(task_record(task)) == task


def test_cli_records_them_and_later_commands_rebuild_the_task(tmp_path):
    out = tmp_path / "data"
    result = run(
        "collect",
        "--task",
        "cancer",
        "--horizon",
        10,
        "-n",
        16,
        "--task-param",
        "distractors=3",
        "--task-param",
        "noise=0.01",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.stderr
    meta = store.read_meta(out, "dataset")
    assert meta["task"]["params"]["distractors"] == 3 and meta["task"]["params"]["noise"] == 0.01
    assert meta["task"]["obs_size"] == 5
    assert artifacts.task_from_meta(meta) == make_task(
        "cancer", 10, {"distractors": 3, "noise": 0.01}
    )
    fitted = run(
        "fit-model",
        "--data",
        out,
        "--model",
        "markov-mlp",
        "--steps",
        5,
        "--out",
        tmp_path / "model",
    )
    assert fitted.exit_code == 0, fitted.stderr


@pytest.mark.parametrize(
    "value, message",
    [("-1", "whole number >= 0"), ("1.5", "whole number >= 0"), ("x", "whole number >= 0")],
)
def test_bad_distractors_are_refused_in_one_line(tmp_path, value, message):
    result = run(
        "collect",
        "--task",
        "cancer",
        "--task-param",
        f"distractors={value}",
        "--out",
        tmp_path / "d",
    )
    assert result.exit_code == 2 and message in result.stderr
    with pytest.raises(BadInputError, match="finite number >= 0"):
        make_task("cancer", 5, {"noise": -0.1})
