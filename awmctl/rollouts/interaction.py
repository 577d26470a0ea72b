"""Acting in the real task one step at a time, inside the compiled loop of an online algorithm.

Online algorithms (BPO's Algorithm 1, SAC, Online-DT) keep the episode in progress in their state
as ``(task state, step index k)`` and advance it by one step per env step; when an episode ends,
the next one starts at once (a time limit: every episode has exactly ``H`` steps).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from awmctl.tasks import Task, reset_key, step_key


class Stepped(NamedTuple):
    """One env step's outcome, and where the episode stands after it."""

    state: Float[Array, " state"]  # the next state, or the next episode's first one once ``done``
    k: Int[Array, ""]
    reward: Float[Array, ""]
    next_obs: Float[Array, " obs"]  # the observation the step reached (``x_H`` at the last step)
    done: Bool[Array, ""]  # the step was the episode's last


def advance(
    task: Task,
    state: Float[Array, " state"],
    k: Int[Array, ""],
    action: Float[Array, " act"],
    key: PRNGKeyArray,
) -> Stepped:
    """Take ``action`` at step ``k``; the step's own randomness (a noisy task's) and the next
    episode's start (if this step ends the episode) are drawn from ``key``, as :func:`rollout` draws
    them."""
    next_state, reward = task.random_step(state, action, k, step_key(key))
    done = k + 1 == task.horizon
    x0 = task.initial_state(reset_key(key)).astype(next_state.dtype)
    return Stepped(
        jnp.where(done, x0, next_state),
        jnp.where(done, 0, k + 1),
        reward,
        task.observe(next_state, k + 1),
        done,
    )


def first_states(task: Task, key_data: jax.Array) -> Float[Array, "S state"]:
    """Each seed's first episode start, drawn from its loop key (raw key data, one row per
    seed) like every reset."""
    return jax.vmap(lambda k: task.initial_state(reset_key(jax.random.wrap_key_data(k))))(key_data)


def explore(
    t: Int[Array, ""], warmup_steps: int, action: Float[Array, " act"], key: PRNGKeyArray
) -> Float[Array, " act"]:
    """Uniform random actions in [-1, 1] for the first ``warmup_steps`` env steps, ``action``
    after."""
    random_action = jax.random.uniform(key, action.shape, action.dtype, -1.0, 1.0)
    return jnp.where(t < warmup_steps, random_action, action)


class Acted(NamedTuple):
    """One env step of an online algorithm: what it saw, what it did, and what followed."""

    obs: Float[Array, " obs"]
    action: Float[Array, " act"]
    stepped: Stepped


def act(
    task: Task,
    state: Float[Array, " state"],
    k: Int[Array, ""],
    t: Int[Array, ""],
    warmup_steps: int,
    choose: Callable[[Float[Array, " obs"], PRNGKeyArray], Float[Array, " act"]],
    key: PRNGKeyArray,
) -> Acted:
    """The env step every online algorithm takes (online BPO, SAC, Online-DT): observe step ``k``
    of the episode in progress, act with ``choose(obs, key)`` (uniform random actions instead
    during the first ``warmup_steps`` env steps, ``t`` counting them), and :func:`advance`.
    ``key`` is the step's: the policy's, the random action's and the task's draws all come from
    it, the same in every algorithm."""
    k_policy, k_random = jax.random.split(key)
    obs = task.observe(state, k)
    action = explore(t, warmup_steps, choose(obs, k_policy), k_random)
    return Acted(obs, action, advance(task, state, k, action, key))


__all__ = ["Acted", "Stepped", "act", "advance", "explore", "first_states"]
