"""The one small task type every environment implements.

A task is a finite-horizon, deterministic, differentiable control problem written in pure JAX.
Models, BPO and the analyses only ever use this interface, so they never special-case a task,
and the "true simulator" world model is literally ``Task.transition``.

Conventions (``docs/tasks.md``):

* ``state`` is the task's own state vector (what world models predict);
* an *observation* is ``[state, k]``: the state with the integer step index appended as a float;
* an episode has ``horizon`` steps ``k = 0 .. H-1``; at step ``k`` the reward is computed from the
  current state, the action and (for variants that need it) the next state;
* an episode starts in ``initial_state(key)``: the built-in tasks ignore the key (their resets are
  deterministic), a user's task may draw a random start from it;
* actions nominally live in ``[-1, 1]`` per dimension and are *not* clipped (the paper's wrapper
  does not clip them; policies are tanh-squashed).
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from awmctl.seeds import stream

ParamValue = float | int | str | tuple[float, ...]


class Episode(NamedTuple):
    """One recorded episode (or a batch of them, with leading batch axes)."""

    observations: Float[Array, "*batch H+1 obs"]
    actions: Float[Array, "*batch H act"]
    rewards: Float[Array, "*batch H"]


#: A closed-loop controller: ``act(observation, step_index, key) -> action``.
ActFn = Callable[[Float[Array, " obs"], Int[Array, ""], PRNGKeyArray], Float[Array, " act"]]


class Controller(NamedTuple):
    """A controller with a memory within the episode (a decision transformer's context).

    ``start()`` is the memory when an episode begins; ``act(memory, obs, k, key) -> (memory,
    action)`` acts; ``record(memory, reward) -> memory`` hears the reward of the step just taken.
    A plain :data:`ActFn` is the special case with no memory.
    """

    start: Callable[[], Any]
    act: Callable[
        [Any, Float[Array, " obs"], Int[Array, ""], PRNGKeyArray], tuple[Any, Float[Array, " act"]]
    ]
    record: Callable[[Any, Float[Array, ""]], Any]

    @classmethod
    def memoryless(cls, act: ActFn) -> Controller:
        return cls(
            lambda: (),
            lambda memory, obs, k, key: (memory, act(obs, k, key)),
            lambda memory, reward: memory,
        )


class Task(eqx.Module):
    """Abstract base of every task. Concrete tasks are final and hold only static fields.

    Subclasses implement :meth:`initial_state`, :meth:`transition` and :meth:`reward` plus the
    descriptive properties; everything else (observations, stepping, rollouts) is shared here.
    """

    #: CLI name of the task, e.g. ``cancer`` or ``double-pendulum``.
    name: eqx.AbstractVar[str]
    #: Number of steps ``H`` of an episode.
    horizon: eqx.AbstractVar[int]
    #: Size of the state vector (the observation is one larger: the step index).
    state_size: eqx.AbstractVar[int]
    #: Size of the action vector; actions nominally live in [-1, 1].
    action_size: eqx.AbstractVar[int]
    #: Physical time covered by one step.
    dt: eqx.AbstractVar[float]
    #: Per-component (lo, hi) of the state; ``inf`` where unbounded.
    state_bounds: eqx.AbstractVar[tuple[tuple[float, float], ...]]

    @property
    @abc.abstractmethod
    def params(self) -> dict[str, ParamValue]:
        """Every parameter in force (recorded in ``meta.json``)."""

    @abc.abstractmethod
    def initial_state(self, key: PRNGKeyArray) -> Float[Array, " state"]:
        """The state the episode starts in (``x_0``); ``key`` is for tasks with random resets."""

    @abc.abstractmethod
    def transition(
        self, state: Float[Array, " state"], action: Float[Array, " act"], k: Int[Array, ""]
    ) -> Float[Array, " state"]:
        """The next state ``x_{k+1}`` from ``x_k`` and ``a_k`` at integer step ``k``."""

    @abc.abstractmethod
    def reward(
        self,
        state: Float[Array, " state"],
        action: Float[Array, " act"],
        k: Int[Array, ""],
        next_state: Float[Array, " state"],
    ) -> Float[Array, ""]:
        """The reward ``r_k`` of taking ``action`` in ``state`` at step ``k``.

        ``next_state`` is only read by variants whose terminal term uses ``x_H``; world models
        call this with *predicted* states and the *known* step index ``k``.
        """

    def noisy_transition(
        self,
        state: Float[Array, " state"],
        action: Float[Array, " act"],
        k: Int[Array, ""],
        noise: Float[Array, " state"],
    ) -> Float[Array, " state"]:
        """``x_{k+1}`` with process ``noise`` added before the clip to :attr:`state_bounds`.

        This default adds it to :meth:`transition`'s result and clips again; a task whose
        transition clips a state that left its bounds overrides it to add the noise *before* its
        own clip (Myriad), as the authors' noisy variant does.
        """
        lo, hi = (jnp.asarray(b, dtype=state.dtype) for b in zip(*self.state_bounds))
        return jnp.clip(self.transition(state, action, k) + noise, lo, hi)

    def random_step(
        self,
        state: Float[Array, " state"],
        action: Float[Array, " act"],
        k: Int[Array, ""],
        key: PRNGKeyArray,
    ) -> tuple[Float[Array, " state"], Float[Array, ""]]:
        """One step of the *real* environment, whose own randomness (process noise, distractors)
        is drawn from ``key``. Deterministic tasks ignore the key: it is :meth:`step`."""
        del key
        return self.step(state, action, k)

    # ----------------------------------------------------------------- shared, never overridden

    @property
    def obs_size(self) -> int:
        return self.state_size + 1

    def observe(
        self, state: Float[Array, " state"], k: Int[Array, ""] | int
    ) -> Float[Array, " obs"]:
        """Observation ``[state, k]`` (step index as a float of the state's dtype)."""
        return observation(state, k)

    def step(
        self, state: Float[Array, " state"], action: Float[Array, " act"], k: Int[Array, ""]
    ) -> tuple[Float[Array, " state"], Float[Array, ""]]:
        """One environment step: ``(x_{k+1}, r_k)``."""
        next_state = self.transition(state, action, k)
        return next_state, self.reward(state, action, k, next_state)

    def describe(self) -> dict[str, Any]:
        """JSON-ready description recorded in every ``meta.json``."""
        return {
            "name": self.name,
            "horizon": self.horizon,
            "state_size": self.state_size,
            "action_size": self.action_size,
            "obs_size": self.obs_size,
            "dt": self.dt,
            "params": {k: list(v) if isinstance(v, tuple) else v for k, v in self.params.items()},
        }


def observation(state: Float[Array, " n"], k: Int[Array, ""] | int) -> Float[Array, " n+1"]:
    """An observation from a state and its integer step index (stored as a float)."""
    return jnp.concatenate([state, jnp.asarray(k, dtype=state.dtype)[None]])


def step_index(obs: Float[Array, " obs"]) -> Int[Array, ""]:
    """The integer step index stored in the last entry of an observation."""
    return jnp.round(obs[-1]).astype(jnp.int32)


def reset_key(key: PRNGKeyArray) -> PRNGKeyArray:
    """The key an episode's reset draws from, derived from (never equal to) the episode's key."""
    return stream(key, "task/reset")


def step_key(key: PRNGKeyArray) -> PRNGKeyArray:
    """The key a real step's own randomness draws from, derived from the step's key (so that a
    deterministic task's streams are the same with or without it)."""
    return stream(key, "task/step")


def rollout(task: Task, act: ActFn | Controller, key: PRNGKeyArray) -> Episode:
    """Run one whole episode of ``task`` under the controller ``act`` (a ``lax.scan`` over steps).

    Vectorise over episodes with ``jax.vmap(lambda k: rollout(task, act, k))(keys)``.
    """
    controller = act if isinstance(act, Controller) else Controller.memoryless(act)
    x0 = task.initial_state(reset_key(key))

    def body(carry, k):
        state, key, memory = carry
        key, sub = jax.random.split(key)
        obs = task.observe(state, k)
        memory, action = controller.act(memory, obs, k, sub)
        next_state, reward = task.random_step(state, action, k, step_key(sub))
        return (next_state, key, controller.record(memory, reward)), (obs, action, reward)

    (final_state, _, _), (obs, actions, rewards) = jax.lax.scan(
        body, (x0, key, controller.start()), jnp.arange(task.horizon)
    )
    last_obs = task.observe(final_state, task.horizon)
    observations = jnp.concatenate([obs, last_obs[None]], axis=0)
    return Episode(observations, actions, rewards)


def open_loop_return(
    task: Task, actions: Float[Array, "H act"], key: PRNGKeyArray | None = None
) -> Float[Array, ""]:
    """Return of a fixed action sequence: the objective of direct shooting (differentiable).

    ``key`` picks the start of a task with random resets (default: ``jax.random.key(0)``).
    """
    x0 = task.initial_state(reset_key(jax.random.key(0) if key is None else key))

    def body(state, inputs):
        k, action = inputs
        next_state, reward = task.step(state, action, k)
        return next_state, reward

    _, rewards = jax.lax.scan(body, x0, (jnp.arange(task.horizon), actions))
    return jnp.sum(rewards)


def returns_of(episodes: Episode) -> Float[Array, "*batch"]:
    """Undiscounted return of each episode (discount 1, as in the paper)."""
    return jnp.sum(episodes.rewards, axis=-1)


__all__ = [
    "ActFn",
    "Controller",
    "Episode",
    "ParamValue",
    "Task",
    "observation",
    "open_loop_return",
    "reset_key",
    "returns_of",
    "rollout",
    "step_index",
    "step_key",
]
