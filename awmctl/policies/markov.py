"""The Markov policies: a closed-loop tanh-Gaussian MLP and an open-loop table of actions."""

from __future__ import annotations

from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from awmctl.layers import mlp
from awmctl.normalize import Normalizer
from awmctl.policies import tanh_gaussian
from awmctl.policies.base import MarkovPolicy
from awmctl.tasks import step_index

Activation = Literal["swish", "relu"]
ACTIVATIONS = {"swish": jax.nn.swish, "relu": jax.nn.relu}


class MLPPolicy(MarkovPolicy):
    """MLP (two hidden layers) -> mean and scale of a Gaussian, squashed by tanh.

    BPO's policy is (64, 64) swish (the paper's); SAC's actor is (256, 256) ReLU.
    """

    mlp: eqx.nn.MLP
    obs_norm: Normalizer
    name: str = eqx.field(static=True)
    obs_size: int = eqx.field(static=True)
    action_size: int = eqx.field(static=True)
    width: int = eqx.field(static=True)
    activation: Activation = eqx.field(static=True)

    def __init__(
        self,
        obs_size: int,
        action_size: int,
        width: int = 64,
        activation: Activation = "swish",
        *,
        key: PRNGKeyArray,
    ):
        self.mlp = eqx.nn.MLP(
            obs_size,
            2 * action_size,
            width_size=width,
            depth=2,
            activation=ACTIVATIONS[activation],
            key=key,
        )
        self.obs_norm = Normalizer.identity(obs_size)
        self.name = "mlp"
        self.obs_size = obs_size
        self.action_size = action_size
        self.width = width
        self.activation = activation

    def distribution(
        self, obs: Float[Array, " obs"]
    ) -> tuple[Float[Array, " act"], Float[Array, " act"]]:
        """Mean and scale of the Gaussian before the tanh."""
        out = mlp(self.mlp, self.obs_norm.normalize(obs))
        return out[: self.action_size], tanh_gaussian.scale_of(out[self.action_size :])

    def sample(
        self, obs: Float[Array, " obs"], key: PRNGKeyArray
    ) -> tuple[Float[Array, " act"], Float[Array, ""]]:
        mean, scale = self.distribution(obs)
        return tanh_gaussian.sample(mean, scale, key)

    def deterministic(self, obs: Float[Array, " obs"]) -> Float[Array, " act"]:
        return jnp.tanh(self.distribution(obs)[0])

    def with_normalizer(self, observations: Float[Array | np.ndarray, "... obs"]) -> MLPPolicy:
        flat = jnp.reshape(jnp.asarray(observations), (-1, self.obs_size))
        return eqx.tree_at(lambda p: p.obs_norm, self, Normalizer.fit(flat))

    def hyperparameters(self) -> dict[str, Any]:
        return {"width": self.width, "activation": self.activation}


class OpenLoopPolicy(MarkovPolicy):
    """One action per step, ``tanh(table[k])``, ignoring the state: direct shooting."""

    table: Float[Array, "H act"]
    name: str = eqx.field(static=True)
    obs_size: int = eqx.field(static=True)
    action_size: int = eqx.field(static=True)

    def __init__(
        self, obs_size: int, action_size: int, horizon: int, *, key: PRNGKeyArray | None = None
    ):
        self.table = jnp.zeros((horizon, action_size))  # start at mid-range controls
        self.name = "open-loop"
        self.obs_size = obs_size
        self.action_size = action_size

    def deterministic(self, obs: Float[Array, " obs"]) -> Float[Array, " act"]:
        k = jnp.clip(step_index(obs), 0, self.table.shape[0] - 1)
        return jnp.tanh(self.table[k])

    def sample(
        self, obs: Float[Array, " obs"], key: PRNGKeyArray
    ) -> tuple[Float[Array, " act"], Float[Array, ""]]:
        return self.deterministic(obs), jnp.zeros((), obs.dtype)

    def with_normalizer(self, observations: Float[Array | np.ndarray, "... obs"]) -> OpenLoopPolicy:
        return self  # it ignores the state

    def hyperparameters(self) -> dict[str, Any]:
        return {"horizon": self.table.shape[0]}


__all__ = ["ACTIVATIONS", "MLPPolicy", "OpenLoopPolicy"]
