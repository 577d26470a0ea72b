"""Collecting episodes from a task: behaviour policies, and many rollouts in compiled chunks."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

from awmctl.errors import BadInputError
from awmctl.tasks import ActFn, Controller, Episode, Task, rollout

#: Episodes per compiled call of :func:`collect`; larger requests are processed in chunks of
#: this many (the last one padded), so one compilation serves any number of episodes.
DEFAULT_CHUNK = 4096


def random_controller(task: Task) -> ActFn:
    """Uniform random actions in [-1, 1] per dimension."""
    shape = (task.action_size,)

    def act(obs, k, key):
        return jax.random.uniform(key, shape, dtype=obs.dtype, minval=-1.0, maxval=1.0)

    return act


def constant_controller(task: Task, value: Sequence[float]) -> ActFn:
    """The same action at every step; one value is repeated over every action dimension."""
    value = tuple(value) * task.action_size if len(value) == 1 else tuple(value)
    if len(value) != task.action_size:
        raise BadInputError(f"a constant action of {len(value)} values for task {task.name}, "
                            f"which has {task.action_size} action dimensions")

    def act(obs, k, key):
        return jnp.asarray(value, dtype=obs.dtype)

    return act


def batched_rollout(task: Task, act: ActFn | Controller) -> Callable[[PRNGKeyArray], Episode]:
    """One compiled call that rolls out one episode per key (``vmap`` over keys, ``scan`` over steps)."""
    return eqx.filter_jit(jax.vmap(lambda k: rollout(task, act, k)))


def collect(
    task: Task,
    act: ActFn | Controller,
    episodes: int,
    key: PRNGKeyArray,
    chunk: int = DEFAULT_CHUNK,
    on_chunk: Callable[[int], None] | None = None,
) -> Episode:
    """Roll out ``episodes`` episodes of ``task`` under ``act``, one compiled call per chunk of
    ``chunk`` episodes; NumPy arrays.

    Episode ``i`` always uses the ``i``-th key of ``jax.random.split(key, episodes)``, so the
    result does not depend on ``chunk``. ``on_chunk(n_done)`` reports progress.
    """
    if episodes < 1:
        raise BadInputError(f"--episodes must be at least 1, got {episodes}")
    keys = jax.random.split(key, episodes)
    size = min(chunk, episodes)
    run = batched_rollout(task, act)
    parts = []
    for start in range(0, episodes, size):
        batch = keys[start : start + size]
        n = batch.shape[0]
        if n < size:  # pad the last chunk so the compiled program is reused
            batch = jnp.concatenate([batch, jnp.repeat(batch[-1:], size - n, axis=0)])
        out = run(batch)
        parts.append(jax.tree_util.tree_map(lambda x: np.asarray(x[:n]), out))
        if on_chunk is not None:
            on_chunk(start + n)
    return Episode(*(np.concatenate(leaves) for leaves in zip(*parts)))


__all__ = ["DEFAULT_CHUNK", "batched_rollout", "collect", "constant_controller", "random_controller"]
