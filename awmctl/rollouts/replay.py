"""A replay of whole episodes inside compiled training loops (no Python-side buffer).

Online loops act in the task one step at a time and learn from whole stored episodes: the
episode in progress is written step by step, and copied into the next slot of the replay when
its last step is taken. Everything is an array of fixed shape, so the buffer lives in the
state of a ``lax.scan`` and is checkpointed with it.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray


class EpisodeReplay(NamedTuple):
    observations: Float[Array, "C H+1 obs"]  # complete episodes
    actions: Float[Array, "C H act"]
    count: Int[Array, ""]  # episodes stored so far (the next slot is count % capacity)
    episode_observations: Float[Array, "H+1 obs"]  # the episode in progress
    episode_actions: Float[Array, "H act"]

    @classmethod
    def empty(cls, capacity: int, horizon: int, obs_size: int, action_size: int) -> EpisodeReplay:
        return cls(
            observations=jnp.zeros((capacity, horizon + 1, obs_size)),
            actions=jnp.zeros((capacity, horizon, action_size)),
            count=jnp.zeros((), jnp.int32),
            episode_observations=jnp.zeros((horizon + 1, obs_size)),
            episode_actions=jnp.zeros((horizon, action_size)),
        )

    @property
    def capacity(self) -> int:
        return self.observations.shape[0]

    def record(
        self, k: Int[Array, ""], obs: Float[Array, " obs"], action: Float[Array, " act"], next_obs: Float[Array, " obs"]
    ) -> tuple[EpisodeReplay, Int[Array, ""]]:
        """Step ``k`` of the episode in progress; when it is the last one, the episode is stored.
        Returns the replay and whether an episode was completed."""
        episode_obs = self.episode_observations.at[k].set(obs).at[k + 1].set(next_obs)
        episode_act = self.episode_actions.at[k].set(action)
        done = k + 1 == self.episode_actions.shape[0]
        slot = self.count % self.capacity
        return EpisodeReplay(
            observations=jnp.where(done, self.observations.at[slot].set(episode_obs), self.observations),
            actions=jnp.where(done, self.actions.at[slot].set(episode_act), self.actions),
            count=self.count + done.astype(jnp.int32),
            episode_observations=episode_obs,
            episode_actions=episode_act,
        ), done

    def sample(self, key: PRNGKeyArray, n: int) -> Int[Array, " n"]:
        """Indices of ``n`` stored episodes, uniformly with replacement (all 0 while none is)."""
        stored = jnp.minimum(self.count, self.capacity)
        return jax.random.randint(key, (n,), 0, jnp.maximum(stored, 1))


__all__ = ["EpisodeReplay"]
