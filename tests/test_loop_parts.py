"""The pieces every training loop is built from: the online algorithms' env step
(``rollouts.act``), their interleaved schedule (``interaction.interleaved_block``) and the masked
chunk of optimiser steps that fitting and offline BPO share (``base.masked_steps``)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from awmctl.algorithms.base import masked_steps
from awmctl.algorithms.interaction import interleaved_block
from awmctl.rollouts import act, advance
from awmctl.tasks import make_task


def test_masked_steps_skip_the_inactive_ones_and_mark_their_outputs():
    def step(params, opt_state, k_a, k_b):
        return params + 1.0, opt_state + 2.0, params * 10.0

    key = jax.random.key_data(jax.random.key(3))
    active = jnp.asarray([True, False, True, False])
    params, opt_state, new_key, outputs = masked_steps(step, 0.0, 0.0, key, active)
    assert float(params) == 2.0 and float(opt_state) == 4.0
    np.testing.assert_array_equal(np.asarray(outputs), [0.0, np.nan, 10.0, np.nan])
    # the key moves on at every step, active or not, so a partial chunk draws what a full one does
    expected = jax.random.key(3)
    for _ in range(4):
        expected = jax.random.split(expected, 3)[0]
    np.testing.assert_array_equal(new_key, jax.random.key_data(expected))


class Counting(NamedTuple):
    t: jax.Array  # env steps taken
    rounds_at: jax.Array  # the env step count when each round ended
    round: jax.Array
    block_at: jax.Array  # the env step count when the block's update ran
    key: jax.Array


def test_the_interleaved_block_runs_rounds_of_env_steps_then_the_block_update():
    def env_step(s, key):
        return s._replace(t=s.t + 1)

    def after_round(before, s, key):
        assert before.t.shape == s.t.shape  # the state the round started from
        return s._replace(
            rounds_at=s.rounds_at.at[s.round].set(s.t - before.t * 100), round=s.round + 1
        )

    def after_block(s, key):
        return s._replace(block_at=s.t)

    start = Counting(
        jnp.asarray(0),
        jnp.zeros(3, jnp.int32),
        jnp.asarray(0),
        jnp.asarray(-1),
        jax.random.key_data(jax.random.key(0)),
    )
    s = jax.jit(lambda s: interleaved_block(s, env_step, after_round, after_block, 3, 2))(start)
    # round r ends after 2 (r + 1) env steps; its "before" state is the one 2 steps earlier
    np.testing.assert_array_equal(np.asarray(s.rounds_at), [2 - 0, 4 - 200, 6 - 400])
    assert int(s.t) == 6 and int(s.block_at) == 6
    next_key = jax.random.split(jax.random.key(0), 4)[0]
    np.testing.assert_array_equal(s.key, jax.random.key_data(next_key))


@pytest.mark.parametrize("t, warm", [(0, True), (10, False)])
def test_one_env_step_acts_with_the_policy_after_the_warm_up_and_at_random_in_it(t, warm):
    task = make_task("cancer", 5)
    state, k = task.initial_state(jax.random.key(1)), jnp.asarray(2)
    key = jax.random.key(7)
    seen = []

    def choose(obs, k_policy):
        seen.append(obs)
        return jnp.full((task.action_size,), 0.25)

    done = act(task, state, k, jnp.asarray(t), 5, choose, key)
    np.testing.assert_array_equal(done.obs, task.observe(state, k))
    np.testing.assert_array_equal(seen[0], done.obs)
    k_random = jax.random.split(key)[1]
    random = jax.random.uniform(k_random, (task.action_size,), minval=-1.0, maxval=1.0)
    np.testing.assert_array_equal(done.action, random if warm else jnp.full((1,), 0.25))
    # the step itself is advance's, with the same key
    stepped = advance(task, state, k, done.action, key)
    for a, b in zip(done.stepped, stepped):
        np.testing.assert_array_equal(a, b)
