"""What every algorithm that learns while it acts shares (online BPO, SAC, Online-DT): progress
counted in env steps taken (``state.t``), a run of whole evaluation periods, the deterministic
policy's return as the score, real branches for updates that the schedule may skip, and the
interleaved schedule itself (env steps, an update after every few, a second update after a
block of them). The env step they all take is :func:`awmctl.rollouts.act`."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import jax
import numpy as np
from jaxtyping import Array, Float, Key, PRNGKeyArray

from awmctl.algorithms.base import Algorithm, LearningCurve, State
from awmctl.rollouts import Acted, act

#: an online algorithm's state: a NamedTuple with the loop's raw key data in ``key``
S = TypeVar("S")
#: ``(state, key) -> state``
Update = Callable[[Any, jax.Array], Any]


def whole_periods(env_steps: int, eval_every: int) -> int:
    """Env steps actually taken: ``env_steps`` rounded up to whole evaluation periods (the
    paper's 5000 with evaluation every 32 gives 5024)."""
    return math.ceil(env_steps / eval_every) * eval_every


def when(ready: jax.Array, update: Any, state: Any, key: jax.Array) -> Any:
    """``update(state, key)`` if ``ready``, else ``state``: a real branch (not a select) on one
    seed, so no update work is done before the schedule says."""
    return jax.lax.cond(ready, update, lambda s, key: s, state, key)


def env_steps(env_step: Update, state: S, keys: jax.Array) -> S:
    """``env_step(state, key)`` once per key of ``keys``, in order (a loop, not unrolled)."""
    return jax.lax.fori_loop(0, keys.shape[0], lambda i, s: env_step(s, keys[i]), state)


def interleaved_rounds(
    state: S,
    env_step: Update,
    after_round: Callable[[S, S, PRNGKeyArray], S],
    step_keys: Key[Array, "rounds steps"],
    round_keys: Key[Array, " rounds"],
) -> S:
    """The schedule every online algorithm runs: rounds of env steps (one per key of a row of
    ``step_keys``), each ended by ``after_round(before, state, key)`` (an update, once the
    schedule allows; ``before`` is the state the round started from). A scan over rounds."""

    def one_round(s: S, keys: tuple[Array, Array]) -> tuple[S, None]:
        keys_of_steps, round_key = keys
        return after_round(s, env_steps(env_step, s, keys_of_steps), round_key), None

    state, _ = jax.lax.scan(one_round, state, (step_keys, round_keys))
    return state


def interleaved_block(
    state: S,
    env_step: Update,
    after_round: Callable[[S, S, PRNGKeyArray], S],
    after_block: Update,
    rounds: int,
    steps_per_round: int,
) -> S:
    """One block of online BPO's and SAC's schedule: ``rounds`` :func:`interleaved_rounds` of
    ``steps_per_round`` env steps (each ended by the model's or critics' update), then
    ``after_block(state, key)`` (the policy's or actor's update).

    The keys come from the state's loop key (``state.key``, raw key data), split four ways: the
    next loop key, the env steps', the rounds' and the block update's."""
    key = jax.random.wrap_key_data(state.key)  # type: ignore[attr-defined]
    key, k_env, k_rounds, k_block = jax.random.split(key, 4)
    step_keys = jax.random.split(k_env, (rounds, steps_per_round))
    round_keys = jax.random.split(k_rounds, rounds)
    state = interleaved_rounds(state, env_step, after_round, step_keys, round_keys)
    state = after_block(state, k_block)
    return state._replace(key=jax.random.key_data(key))  # type: ignore[attr-defined]


class OnlineAlgorithm(Algorithm[State]):
    """An algorithm whose state counts env steps in ``t`` and whose config has ``steps_run``."""

    unit: ClassVar[str] = "env step"
    score: ClassVar[str] = "eval/eval_return"
    higher_is_better: ClassVar[bool] = True
    curve: ClassVar[LearningCurve] = LearningCurve(
        "learning_curve.png",
        ("eval/eval_return",),
        "eval return (deterministic policy)",
        "environment step",
    )

    def act(
        self,
        s: Any,
        choose: Callable[[Float[Array, " obs"], PRNGKeyArray], Float[Array, " act"]],
        key: PRNGKeyArray,
    ) -> Acted:
        """One env step of the episode in progress in ``s`` (its ``env_state``, ``k`` and ``t``)
        with ``choose``'s action, random in the config's warm-up (:func:`awmctl.rollouts.act`)."""
        return act(self.task, s.env_state, s.k, s.t, self.config.warmup_steps, choose, key)

    def progress(self, state: State) -> int:
        return int(np.asarray(state.t)[0])  # type: ignore[attr-defined]  (on the host: no device op)

    @property
    def total(self) -> int:
        return self.config.steps_run


__all__ = [
    "OnlineAlgorithm",
    "env_steps",
    "interleaved_block",
    "interleaved_rounds",
    "when",
    "whole_periods",
]
