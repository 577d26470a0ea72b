"""Replays inside compiled training loops (no Python-side buffer): whole episodes, or transitions.

Online loops act in the task one step at a time and learn from whole stored episodes. Each step
writes one observation and one action into the slot of the episode in progress (work that does
not grow with the replay); the episode counts as stored once its last step is written. Every
array has a fixed shape, so the replay lives in the state of a ``lax.scan`` and is checkpointed
with it. Sampling draws only complete episodes: the ``capacity - 1`` most recent ones (the last
slot is the one being written).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray


class EpisodeReplay(NamedTuple):
    observations: Float[Array, "C H+1 obs"]
    actions: Float[Array, "C H act"]
    rewards: Float[Array, "C H"]
    count: Int[Array, ""]  # complete episodes stored so far; slot count % capacity is in progress

    @classmethod
    def empty(cls, capacity: int, horizon: int, obs_size: int, action_size: int) -> EpisodeReplay:
        if capacity < 2:
            raise ValueError(
                "an episode replay needs room for one complete episode and the one in progress"
            )
        return cls(
            observations=jnp.zeros((capacity, horizon + 1, obs_size)),
            actions=jnp.zeros((capacity, horizon, action_size)),
            rewards=jnp.zeros((capacity, horizon)),
            count=jnp.zeros((), jnp.int32),
        )

    @property
    def capacity(self) -> int:
        return self.observations.shape[0]

    def record(
        self,
        k: Int[Array, ""],
        obs: Float[Array, " obs"],
        action: Float[Array, " act"],
        next_obs: Float[Array, " obs"],
        reward: Float[Array, ""],
    ) -> tuple[EpisodeReplay, Int[Array, ""]]:
        """Step ``k`` of the episode in progress; returns the replay and whether this step
        completed (stored) the episode."""
        slot = self.count % self.capacity
        done = k + 1 == self.actions.shape[1]
        return EpisodeReplay(
            observations=self.observations.at[slot, k].set(obs).at[slot, k + 1].set(next_obs),
            actions=self.actions.at[slot, k].set(action),
            rewards=self.rewards.at[slot, k].set(reward),
            count=self.count + done.astype(jnp.int32),
        ), done

    def latest(self) -> Int[Array, ""]:
        """Slot of the most recently completed episode (meaningless while none is stored)."""
        return (self.count - 1) % self.capacity

    def return_spread(self) -> Float[Array, ""]:
        """Standard deviation of the stored complete episodes' returns (the in-progress slot and
        empty ones left out): the scale on which returns of this task differ."""
        stored = jnp.minimum(self.count, self.capacity - 1)
        slots = (self.count - 1 - jnp.arange(self.capacity)) % self.capacity
        mask = jnp.arange(self.capacity) < stored
        returns = jnp.sum(self.rewards[slots], axis=-1)
        n = jnp.maximum(stored, 1).astype(returns.dtype)
        mean = jnp.sum(jnp.where(mask, returns, 0.0)) / n
        return jnp.sqrt(jnp.sum(jnp.where(mask, (returns - mean) ** 2, 0.0)) / n)

    def sample(self, key: PRNGKeyArray, n: int) -> Int[Array, " n"]:
        """Slots of ``n`` complete episodes, uniformly with replacement among the stored ones
        (meaningless while none is: callers wait for ``count > 0``)."""
        stored = jnp.minimum(self.count, self.capacity - 1)
        back = jax.random.randint(key, (n,), 0, jnp.maximum(stored, 1))
        return (self.count - 1 - back) % self.capacity


class TransitionReplay(NamedTuple):
    """A ring buffer of single transitions ``(obs, action, reward, next_obs, terminal)``; the
    oldest is overwritten once ``capacity`` are stored."""

    observations: Float[Array, "C obs"]
    actions: Float[Array, "C act"]
    rewards: Float[Array, " C"]
    next_observations: Float[Array, "C obs"]
    terminals: Float[Array, " C"]  # 1 where the episode ended with the transition: nothing follows
    count: Int[Array, ""]  # transitions written so far

    @classmethod
    def empty(cls, capacity: int, obs_size: int, action_size: int) -> TransitionReplay:
        return cls(
            jnp.zeros((capacity, obs_size)),
            jnp.zeros((capacity, action_size)),
            jnp.zeros((capacity,)),
            jnp.zeros((capacity, obs_size)),
            jnp.zeros((capacity,)),
            jnp.zeros((), jnp.int32),
        )

    @property
    def capacity(self) -> int:
        return self.observations.shape[0]

    def add(
        self,
        obs: Float[Array, " obs"],
        action: Float[Array, " act"],
        reward: Float[Array, ""],
        next_obs: Float[Array, " obs"],
        terminal: Bool[Array, ""],
    ) -> TransitionReplay:
        i = self.count % self.capacity
        return TransitionReplay(
            self.observations.at[i].set(obs),
            self.actions.at[i].set(action),
            self.rewards.at[i].set(reward),
            self.next_observations.at[i].set(next_obs),
            self.terminals.at[i].set(terminal.astype(self.terminals.dtype)),
            self.count + 1,
        )

    def sample(self, key: PRNGKeyArray, n: int) -> TransitionReplay:
        """``n`` stored transitions, uniformly with replacement (a batch with the same fields;
        meaningless while none is stored)."""
        idx = jax.random.randint(
            key, (n,), 0, jnp.maximum(jnp.minimum(self.count, self.capacity), 1)
        )
        return TransitionReplay(
            self.observations[idx],
            self.actions[idx],
            self.rewards[idx],
            self.next_observations[idx],
            self.terminals[idx],
            self.count,
        )


__all__ = ["EpisodeReplay", "TransitionReplay"]
