"""Collecting episodes from a task: behaviour policies, and many rollouts in compiled chunks."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Key, PRNGKeyArray

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
        raise BadInputError(
            f"a constant action of {len(value)} values for task {task.name}, "
            f"which has {task.action_size} action dimensions"
        )

    def act(obs, k, key):
        return jnp.asarray(value, dtype=obs.dtype)

    return act


def batched_rollout(task: Task, act: ActFn | Controller) -> Callable[[PRNGKeyArray], Episode]:
    """One compiled call that rolls out one episode per key (``vmap`` over keys, ``scan`` over
    steps)."""
    return eqx.filter_jit(jax.vmap(lambda k: rollout(task, act, k)))


def episode_keys(key: PRNGKeyArray, start: int, stop: int) -> Key[Array, " n"]:
    """Keys ``start .. stop - 1`` of ``jax.random.split(key, N)`` for any N, without making the
    other N - (stop - start): with JAX's (default) partitionable threefry, split key ``i`` is
    ``fold_in(key, i)`` (tested), so memory does not grow with N."""
    return jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(start, stop, dtype=jnp.uint32))


def collect_chunks(
    task: Task,
    act: ActFn | Controller,
    episodes: int,
    key: PRNGKeyArray,
    chunk: int = DEFAULT_CHUNK,
) -> Iterator[Episode]:
    """Roll out ``episodes`` episodes of ``task`` under ``act``, one compiled call per chunk of
    ``chunk`` episodes, yielded as NumPy arrays as they are made (memory: one chunk).

    Episode ``i`` always uses key ``i`` of ``jax.random.split(key, episodes)``, so the episodes
    do not depend on ``chunk``.
    """
    if episodes < 1:
        raise BadInputError(f"--episodes must be at least 1, got {episodes}")
    size = min(chunk, episodes)
    run = batched_rollout(task, act)
    for start in range(0, episodes, size):
        n = min(size, episodes - start)
        batch = episode_keys(
            key, start, start + size
        )  # the last chunk padded: one compiled program
        out = run(batch)
        yield Episode(*(np.asarray(x[:n]) for x in out))


def collect(
    task: Task,
    act: ActFn | Controller,
    episodes: int,
    key: PRNGKeyArray,
    chunk: int = DEFAULT_CHUNK,
    on_chunk: Callable[[int], None] | None = None,
) -> Episode:
    """:func:`collect_chunks` joined into one batch; ``on_chunk(n_done)`` reports progress."""
    parts, done = [], 0
    for part in collect_chunks(task, act, episodes, key, chunk):
        parts.append(part)
        done += part.rewards.shape[0]
        if on_chunk is not None:
            on_chunk(done)
    return Episode(*(np.concatenate(leaves) for leaves in zip(*parts)))


__all__ = [
    "DEFAULT_CHUNK",
    "batched_rollout",
    "collect",
    "collect_chunks",
    "constant_controller",
    "episode_keys",
    "random_controller",
]
