"""Policies: a closed-loop tanh-squashed Gaussian MLP and an open-loop table of actions.

Both map ``(observation, key)`` to an action in (-1, 1) and the log-probability of that action
(0 for deterministic policies), and have a deterministic mode used for evaluation
(``tanh(mean)`` for the MLP). Observations are normalised inside the policy with statistics set
from data, so callers always pass raw observations.
"""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from awmctl.errors import BadInputError
from awmctl.models.base import Normalizer
from awmctl.tasks.base import step_index

POLICY_KIND = "policy"
POLICIES = ("mlp", "open-loop")

#: Lower bound of the Gaussian's scale (as in brax's NormalTanhDistribution), so that the
#: log-probability stays finite.
MIN_SCALE = 1e-3


class Policy(eqx.Module):
    """Abstract policy over observations ``[state, k]``."""

    name: eqx.AbstractVar[str]
    obs_size: eqx.AbstractVar[int]
    action_size: eqx.AbstractVar[int]

    @abc.abstractmethod
    def sample(self, obs: Float[Array, " obs"], key: PRNGKeyArray) -> tuple[Float[Array, " act"], Float[Array, ""]]:
        """A (reparameterised) action and its log-probability."""

    @abc.abstractmethod
    def deterministic(self, obs: Float[Array, " obs"]) -> Float[Array, " act"]:
        """The evaluation action."""

    def hyperparameters(self) -> dict[str, Any]:
        return {}


class MLPPolicy(Policy):
    """MLP (64, 64, swish) -> mean and scale of a Gaussian, squashed by tanh."""

    mlp: eqx.nn.MLP
    obs_norm: Normalizer
    name: str = eqx.field(static=True)
    obs_size: int = eqx.field(static=True)
    action_size: int = eqx.field(static=True)
    width: int = eqx.field(static=True)

    def __init__(self, obs_size: int, action_size: int, width: int = 64, *, key: PRNGKeyArray):
        self.mlp = eqx.nn.MLP(obs_size, 2 * action_size, width_size=width, depth=2, activation=jax.nn.swish, key=key)
        self.obs_norm = Normalizer.identity(obs_size)
        self.name = "mlp"
        self.obs_size = obs_size
        self.action_size = action_size
        self.width = width

    def _dist(self, obs: Float[Array, " obs"]) -> tuple[Float[Array, " act"], Float[Array, " act"]]:
        out = self.mlp(self.obs_norm.normalize(obs))
        mean, raw_scale = out[: self.action_size], out[self.action_size :]
        return mean, jax.nn.softplus(raw_scale) + MIN_SCALE

    def sample(self, obs: Float[Array, " obs"], key: PRNGKeyArray) -> tuple[Float[Array, " act"], Float[Array, ""]]:
        mean, scale = self._dist(obs)
        eps = jax.random.normal(key, mean.shape, mean.dtype)
        pre = mean + scale * eps
        action = jnp.tanh(pre)
        # log N(pre; mean, scale) - log |d tanh / d pre|, the latter written stably as
        # 2 (log 2 - pre - softplus(-2 pre)).
        log_normal = -0.5 * jnp.square(eps) - jnp.log(scale) - 0.5 * jnp.log(2 * jnp.pi)
        log_det = 2.0 * (jnp.log(2.0) - pre - jax.nn.softplus(-2.0 * pre))
        return action, jnp.sum(log_normal - log_det)

    def deterministic(self, obs: Float[Array, " obs"]) -> Float[Array, " act"]:
        return jnp.tanh(self._dist(obs)[0])

    def hyperparameters(self) -> dict[str, Any]:
        return {"width": self.width}


class OpenLoopPolicy(Policy):
    """One action per step, ``tanh(table[k])``, ignoring the state: direct shooting."""

    table: Float[Array, "H act"]
    name: str = eqx.field(static=True)
    obs_size: int = eqx.field(static=True)
    action_size: int = eqx.field(static=True)

    def __init__(self, obs_size: int, action_size: int, horizon: int, *, key: PRNGKeyArray | None = None):
        self.table = jnp.zeros((horizon, action_size))  # start at mid-range controls
        self.name = "open-loop"
        self.obs_size = obs_size
        self.action_size = action_size

    def deterministic(self, obs: Float[Array, " obs"]) -> Float[Array, " act"]:
        k = jnp.clip(step_index(obs), 0, self.table.shape[0] - 1)
        return jnp.tanh(self.table[k])

    def sample(self, obs: Float[Array, " obs"], key: PRNGKeyArray) -> tuple[Float[Array, " act"], Float[Array, ""]]:
        return self.deterministic(obs), jnp.zeros((), obs.dtype)

    def hyperparameters(self) -> dict[str, Any]:
        return {"horizon": self.table.shape[0]}


def build_policy(kind: str, obs_size: int, action_size: int, horizon: int, hyper: dict[str, Any] | None = None,
                 *, key: PRNGKeyArray) -> Policy:
    hyper = dict(hyper or {})
    if kind == "mlp":
        return MLPPolicy(obs_size, action_size, hyper.get("width", 64), key=key)
    if kind == "open-loop":
        return OpenLoopPolicy(obs_size, action_size, hyper.get("horizon", horizon), key=key)
    raise BadInputError(f"unknown policy {kind!r}; choose one of: {', '.join(POLICIES)}")


def with_obs_normalizer(policy: Policy, observations: Float[Array, "... obs"]) -> Policy:
    """Set the MLP policy's input statistics from observations (no-op for open-loop)."""
    if isinstance(policy, MLPPolicy):
        flat = jnp.reshape(jnp.asarray(observations), (-1, policy.obs_size))
        return eqx.tree_at(lambda p: p.obs_norm, policy, Normalizer.fit(flat))
    return policy


def load_policy(directory, which: str = "best", seed_index: int = 0):
    """Restore one seed's policy from an ``optimize-policy`` directory: ``(policy, task, meta)``."""
    from awmctl import store
    from awmctl.data import task_from_meta

    meta = store.read_meta(directory, POLICY_KIND)
    task = task_from_meta(meta)
    record = meta["policy"]
    n = record["seeds"]
    if not 0 <= seed_index < n:
        raise BadInputError(f"{directory} holds {n} seed(s); seed index {seed_index} does not exist")
    skeleton = build_policy(record["kind"], record["obs_size"], record["action_size"], record["horizon"],
                            record.get("hyper"), key=jax.random.key(0))
    params, static = eqx.partition(skeleton, eqx.is_inexact_array)
    stacked = jax.tree_util.tree_map(lambda x: jnp.zeros((n, *x.shape), x.dtype), params)
    arrays = store.restore_arrays(directory, {"final": stacked, "best": stacked}, meta)
    one = jax.tree_util.tree_map(lambda x: x[seed_index], arrays[which])
    return eqx.combine(one, static), task, meta
