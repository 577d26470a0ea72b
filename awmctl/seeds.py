"""Named random streams: every key a run draws is derived from its seed by a name, not a number.

``stream(key, "bpo/updates")`` is ``jax.random.fold_in(key, STREAMS["bpo/updates"])``. The numbers
are the ones the first version of awmctl folded in by hand, kept so that every seed still gives
the numbers it gave then (``tests/test_goldens.py``). Two names may share a number when they are
folded into different parents (a run's seed key versus a training state's key), so they never
meet.
"""

from __future__ import annotations

import jax
from jaxtyping import PRNGKeyArray

#: name -> the integer folded into the parent key
STREAMS: dict[str, int] = {
    "fit/steps": 1,  # fit-model: minibatches (and dropout) of the optimiser steps, from the seed
    "bpo/updates": 2,  # offline BPO: batches of initial observations and policy samples, per seed
    "online/loop": 3,  # online BPO: actions, resets and every update of Algorithm 1, per seed
    # online BPO: the initial policy's weights (the model's come from the seed itself)
    "online/policy-init": 1,
    # online BPO: each exploring episode's plan offset (--explore-offset), per seed
    "online/explore": 4,
    # offline BPO: the batch the model/simulator gradient comparison uses, from the state's key
    "bpo/eval": 7,
    "task/reset": 11,  # a random reset (Task.initial_state), from an episode's key
    "task/step": 12,  # a real step's own randomness (Task.random_step), from the step's key
    "task/distractors": 13,  # the distractors of a reset, from the reset's key
    "sac/init": 21,  # SAC: the actor's and the critics' initial weights, per seed
    "sac/loop": 22,  # SAC: actions, resets, batches and policy samples of every update, per seed
    "online-dt/init": 31,  # Online-DT: the transformer's initial weights, per seed
    # Online-DT: actions, resets, batches and samples of every update, per seed
    "online-dt/loop": 32,
}


def stream(key: PRNGKeyArray, name: str) -> PRNGKeyArray:
    """The key of stream ``name`` under ``key``."""
    return jax.random.fold_in(key, STREAMS[name])


def seed_stream(seed: int | jax.Array, name: str) -> PRNGKeyArray:
    """The key of stream ``name`` of a run's integer ``seed``."""
    return stream(jax.random.key(seed), name)


__all__ = ["STREAMS", "seed_stream", "stream"]
