"""Markovian one-step world model: ``s_{t+1} = s_t + f(s_t, a_t, t)``.

An MLP (64, 64, swish) on the normalised state, the action and the step index (the step index is
part of the observation, as in the paper) predicts the state *difference* in units of the
training data's per-step difference scale.
"""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from awmctl.layers import mlp
from awmctl.models.one_step import AbstractOneStepModel
from awmctl.normalize import Normalizer, like


class MarkovModel(AbstractOneStepModel):
    mlp: eqx.nn.MLP
    norm: Normalizer  # of states (inputs)
    delta_scale: Float[Array, " state"]  # std of one-step differences: the output unit
    time_scale: float = eqx.field(static=True)  # step index * time_scale is the time input
    state_size: int = eqx.field(static=True)
    action_size: int = eqx.field(static=True)
    hyper: tuple[tuple[str, Any], ...] = eqx.field(static=True)
    name: str = eqx.field(static=True, default="markov-mlp")
    max_horizon: None = eqx.field(static=True, default=None)
    trainable: ClassVar[bool] = True
    direct_path: ClassVar[bool] = False

    def __init__(
        self,
        state_size: int,
        action_size: int,
        horizon: int,
        *,
        width: int = 64,
        depth: int = 2,
        key: PRNGKeyArray,
    ):
        self.mlp = eqx.nn.MLP(
            state_size + action_size + 1,
            state_size,
            width_size=width,
            depth=depth,
            activation=jax.nn.swish,
            key=key,
        )
        self.norm = Normalizer.identity(state_size)
        self.delta_scale = jnp.ones((state_size,))
        self.time_scale = 1.0 / max(horizon, 1)
        self.state_size = state_size
        self.action_size = action_size
        self.hyper = (("width", width), ("depth", depth))

    def hyperparameters(self) -> dict[str, Any]:
        return dict(self.hyper)

    def with_normalizers(self, observations: Float[Array | np.ndarray, "N T obs"]) -> MarkovModel:
        states = jnp.asarray(observations)[..., :-1]
        deltas = states[:, 1:] - states[:, :-1]
        scale = jnp.maximum(jnp.std(deltas.reshape(-1, deltas.shape[-1]), axis=0), 1e-6)
        return eqx.tree_at(lambda m: (m.norm, m.delta_scale), self, (Normalizer.fit(states), scale))

    def state_scale(self) -> Float[Array, " state"]:
        return self.norm.std

    def next_state(
        self, state: Float[Array, " state"], action: Float[Array, " act"], k: Int[Array, ""]
    ) -> Float[Array, " state"]:
        t = (jnp.asarray(k, dtype=state.dtype) * self.time_scale)[None]
        z = mlp(self.mlp, jnp.concatenate([self.norm.normalize(state), action, t]))
        # Only the scale of the differences is data; a mean drift is learnt, not baked in, so an
        # untrained model predicts "no change".
        return state + z * like(self.delta_scale, z)


__all__ = ["MarkovModel"]
