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
import numpy as np
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from awmctl.errors import BadInputError
from awmctl.layers import mlp
from awmctl.normalize import Normalizer
from awmctl.tasks import ActFn, step_index

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

    @abc.abstractmethod
    def with_normalizer(self, observations: Float[Array | np.ndarray, "... obs"]) -> Policy:
        """The same policy with its input statistics set from observations."""

    @abc.abstractmethod
    def hyperparameters(self) -> dict[str, Any]:
        """What :func:`build_policy` needs to rebuild this policy's skeleton."""

    def controller(self) -> ActFn:
        """The deterministic policy as a controller for :func:`awmctl.tasks.rollout`."""
        return lambda obs, k, key: self.deterministic(obs)


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
        out = mlp(self.mlp, self.obs_norm.normalize(obs))
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

    def with_normalizer(self, observations: Float[Array | np.ndarray, "... obs"]) -> MLPPolicy:
        flat = jnp.reshape(jnp.asarray(observations), (-1, self.obs_size))
        return eqx.tree_at(lambda p: p.obs_norm, self, Normalizer.fit(flat))

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

    def with_normalizer(self, observations: Float[Array | np.ndarray, "... obs"]) -> OpenLoopPolicy:
        return self  # it ignores the state

    def hyperparameters(self) -> dict[str, Any]:
        return {"horizon": self.table.shape[0]}


#: policy kind (the `--policy` option of optimize-policy) -> class
POLICIES: dict[str, type[Policy]] = {"mlp": MLPPolicy, "open-loop": OpenLoopPolicy}


def build_policy(kind: str, obs_size: int, action_size: int, horizon: int, hyper: dict[str, Any] | None = None,
                 *, key: PRNGKeyArray) -> Policy:
    """A fresh policy of ``kind`` (see :data:`POLICIES`)."""
    hyper = dict(hyper or {})
    if kind == "mlp":
        return MLPPolicy(obs_size, action_size, hyper.get("width", 64), key=key)
    if kind == "open-loop":
        return OpenLoopPolicy(obs_size, action_size, hyper.get("horizon", horizon), key=key)
    raise BadInputError(f"unknown policy {kind!r}; choose one of: {', '.join(POLICIES)}")


__all__ = ["MIN_SCALE", "POLICIES", "MLPPolicy", "OpenLoopPolicy", "Policy", "build_policy"]
