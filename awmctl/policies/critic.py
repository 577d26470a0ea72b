"""Q-networks for actor-critic agents (SAC): one MLP per critic, stacked for an ensemble."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from awmctl.layers import mlp
from awmctl.normalize import Normalizer


class QNetwork(eqx.Module):
    """``Q(obs, action)``: an MLP (two hidden layers, ReLU) on the normalised observation and
    the action."""

    mlp: eqx.nn.MLP
    obs_norm: Normalizer

    def __init__(self, obs_size: int, action_size: int, width: int = 256, *, key: PRNGKeyArray):
        self.mlp = eqx.nn.MLP(
            obs_size + action_size, 1, width_size=width, depth=2, activation=jax.nn.relu, key=key
        )
        self.obs_norm = Normalizer.identity(obs_size)

    def __call__(
        self, obs: Float[Array, "*b obs"], action: Float[Array, "*b act"]
    ) -> Float[Array, "*b"]:
        x = jnp.concatenate([self.obs_norm.normalize(obs), action], axis=-1)
        return mlp(self.mlp, x)[..., 0]


def critics(n: int, obs_size: int, action_size: int, width: int, *, key: PRNGKeyArray) -> QNetwork:
    """``n`` independent critics as one module whose arrays have a leading critic axis."""
    return eqx.filter_vmap(lambda k: QNetwork(obs_size, action_size, width, key=k))(
        jax.random.split(key, n)
    )


def evaluate(
    stacked: QNetwork, obs: Float[Array, "*b obs"], action: Float[Array, "*b act"]
) -> Float[Array, " n *b"]:
    """Every critic's value."""
    return eqx.filter_vmap(lambda q: q(obs, action))(stacked)


__all__ = ["QNetwork", "critics", "evaluate"]
