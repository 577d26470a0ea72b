"""Episode datasets: collecting them from a task, storing, loading and splitting them."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from awmctl import store
from awmctl.errors import BadInputError
from awmctl.tasks import ActFn, Episode, Task, make_task, returns_of, rollout

DATASET_KIND = "dataset"

#: Episodes per compiled call of :func:`collect`; larger requests are processed in chunks of
#: this many (the last one padded), so one compilation serves any number of episodes.
DEFAULT_CHUNK = 4096


# ------------------------------------------------------------------------------- behaviour


@dataclasses.dataclass(frozen=True)
class PolicySpec:
    """What ``collect --policy`` was given: ``random``, ``constant:V[,V...]`` or a policy dir."""

    kind: str  # "random" | "constant" | "checkpoint"
    value: tuple[float, ...] = ()
    path: str | None = None

    def describe(self) -> str:
        if self.kind == "constant":
            return "constant:" + ",".join(f"{v:g}" for v in self.value)
        return self.path if self.kind == "checkpoint" else self.kind


def parse_policy(text: str) -> PolicySpec:
    """Parse ``--policy``. Raises :class:`BadInputError` for anything unparsable."""
    text = text.strip()
    if text == "random":
        return PolicySpec("random")
    if text.startswith("constant:"):
        try:
            values = tuple(float(v) for v in text.removeprefix("constant:").split(","))
        except ValueError:
            raise BadInputError(
                f"cannot parse policy {text!r}; write constant:V or constant:V1,V2 with numbers in [-1, 1]"
            ) from None
        return PolicySpec("constant", values)
    if Path(text).is_dir():
        return PolicySpec("checkpoint", path=text)
    raise BadInputError(
        f"cannot parse policy {text!r}; use 'random', 'constant:V' or a policy directory from optimize-policy"
    )


def behaviour(spec: PolicySpec, task: Task) -> ActFn:
    """Turn a :class:`PolicySpec` into a controller for :func:`awmctl.tasks.rollout`."""
    if spec.kind == "random":
        shape = (task.action_size,)

        def act(obs, k, key):
            return jax.random.uniform(key, shape, dtype=obs.dtype, minval=-1.0, maxval=1.0)

        return act
    if spec.kind == "constant":
        value = spec.value * task.action_size if len(spec.value) == 1 else spec.value
        if len(value) != task.action_size:
            raise BadInputError(
                f"policy {spec.describe()} gives {len(spec.value)} values but task {task.name} "
                f"has {task.action_size} action dimensions"
            )

        def act(obs, k, key):
            return jnp.asarray(value, dtype=obs.dtype)

        return act
    # A trained policy (its best checkpoint, first seed), acting deterministically.
    from awmctl.policies import load_policy

    policy, policy_task, _ = load_policy(spec.path)
    if policy_task.name != task.name or policy.obs_size != task.obs_size:
        raise BadInputError(f"{spec.path} is a policy for {policy_task.name}, not {task.name}")

    def act(obs, k, key):
        return policy.deterministic(obs)

    return act


# --------------------------------------------------------------------------------- collect


def collect(
    task: Task,
    act: ActFn,
    episodes: int,
    key: PRNGKeyArray,
    chunk: int = DEFAULT_CHUNK,
    on_chunk: Callable[[int], None] | None = None,
) -> Episode:
    """Roll out ``episodes`` episodes of ``task`` under ``act``: ``vmap`` over episodes, ``scan``
    over steps, one compiled call per chunk of ``chunk`` episodes.

    Episode ``i`` always uses the ``i``-th key of ``jax.random.split(key, episodes)``, so the
    result does not depend on ``chunk``. ``on_chunk(n_done)`` reports progress.
    """
    if episodes < 1:
        raise BadInputError(f"--episodes must be at least 1, got {episodes}")
    keys = jax.random.split(key, episodes)
    size = min(chunk, episodes)
    run = _batched_rollout(task, act)
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


def _batched_rollout(task: Task, act: ActFn) -> Callable[[PRNGKeyArray], Episode]:
    return eqx.filter_jit(jax.vmap(lambda k: rollout(task, act, k)))


# --------------------------------------------------------------------------------- storage


def save_dataset(
    out: str | os.PathLike,
    episodes: Episode,
    task: Task,
    extra_meta: dict[str, Any],
    overwrite: bool = False,
) -> Path:
    """Write a dataset directory atomically; returns its path."""
    arrays = {
        "observations": np.asarray(episodes.observations),
        "actions": np.asarray(episodes.actions),
        "rewards": np.asarray(episodes.rewards),
        "returns": np.asarray(returns_of(episodes)),
    }
    n = arrays["observations"].shape[0]
    with store.atomic_output_dir(out, overwrite) as staging:
        leaves = store.save_arrays(staging, arrays)
        meta = store.base_meta(
            DATASET_KIND,
            task=task.describe(),
            episodes=n,
            sizes={"obs": task.obs_size, "state": task.state_size, "action": task.action_size},
            leaves=leaves,
            **extra_meta,
        )
        store.write_json_atomic(staging / store.META_FILE, meta)
    return Path(out)


def load_dataset(directory: str | os.PathLike) -> tuple[Episode, dict[str, Any]]:
    """Read a dataset directory, check its shapes, and refuse NaN/Inf with a one-line error."""
    meta = store.read_meta(directory, DATASET_KIND)
    n, h = meta["episodes"], meta["task"]["horizon"]
    o, a = meta["sizes"]["obs"], meta["sizes"]["action"]
    dtype = meta["leaves"].get("['observations']", {}).get("dtype", "float32")
    like = {
        "observations": jax.ShapeDtypeStruct((n, h + 1, o), np.dtype(dtype)),
        "actions": jax.ShapeDtypeStruct((n, h, a), np.dtype(dtype)),
        "rewards": jax.ShapeDtypeStruct((n, h), np.dtype(dtype)),
        "returns": jax.ShapeDtypeStruct((n,), np.dtype(dtype)),
    }
    arrays = store.restore_arrays(directory, like, meta)
    for name in ("observations", "actions", "rewards"):
        if not np.all(np.isfinite(arrays[name])):
            raise BadInputError(f"{directory}: {name} contain NaN or Inf; collect the data again")
    episodes = Episode(
        np.asarray(arrays["observations"]), np.asarray(arrays["actions"]), np.asarray(arrays["rewards"])
    )
    return episodes, meta


def task_from_meta(meta: dict[str, Any]) -> Task:
    """Rebuild the exact task (name, horizon, every parameter) a directory was made with."""
    info = meta["task"]
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in info.get("params", {}).items()}
    return make_task(info["name"], info["horizon"], params)


def split(
    episodes: Episode, val_fraction: float, key: PRNGKeyArray
) -> tuple[Episode, Episode]:
    """Shuffle episodes and hold out ``val_fraction`` of them (at least one) for validation."""
    n = episodes.observations.shape[0]
    if not 0.0 <= val_fraction < 1.0:
        raise BadInputError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    n_val = int(round(n * val_fraction))
    if val_fraction > 0 and n_val == 0:
        n_val = 1
    if n - n_val < 1:
        raise BadInputError(f"a dataset of {n} episodes is too small to hold out {n_val} for validation")
    order = np.asarray(jax.random.permutation(key, n))
    take = lambda idx: Episode(*(np.asarray(x)[idx] for x in episodes))  # noqa: E731
    return take(order[n_val:]), take(order[:n_val])


def summarize_returns(returns: Float[Array, " n"] | np.ndarray) -> dict[str, float]:
    r = np.asarray(returns, dtype=np.float64)
    return {
        "mean_return": float(r.mean()),
        "std_return": float(r.std()),
        "min_return": float(r.min()),
        "max_return": float(r.max()),
    }
