"""Markovian one-step world model: ``s_{t+1} = s_t + f(s_t, a_t, t)``.

An MLP (64, 64, swish) on the normalised state, the action and the step index (the step index is
part of the observation, as in the paper) predicts the state *difference* in units of the
training data's per-step difference scale. Trained one step ahead on recorded states; in
imagination it feeds on its own predictions, so the gradient from ``s_t`` to ``a_k`` is a
product of ``t - k`` Jacobians.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from awmctl.models.base import Carry, like, Normalizer, WorldModel, step_index, observation


class MarkovModel(WorldModel):
    mlp: eqx.nn.MLP
    norm: Normalizer  # of states (inputs)
    delta_scale: Float[Array, " state"]  # std of one-step differences: the output unit
    time_scale: float = eqx.field(static=True)  # step index * time_scale is the time input
    state_size: int = eqx.field(static=True)
    action_size: int = eqx.field(static=True)
    hyper: tuple[tuple[str, Any], ...] = eqx.field(static=True)
    name: str = eqx.field(static=True, default="markov-mlp")
    max_horizon: None = eqx.field(static=True, default=None)

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
            state_size + action_size + 1, state_size, width_size=width, depth=depth,
            activation=jax.nn.swish, key=key,
        )
        self.norm = Normalizer.identity(state_size)
        self.delta_scale = jnp.ones((state_size,))
        self.time_scale = 1.0 / max(horizon, 1)
        self.state_size = state_size
        self.action_size = action_size
        self.hyper = (("width", width), ("depth", depth))

    def hyperparameters(self) -> dict[str, Any]:
        return dict(self.hyper)

    def next_state(
        self, state: Float[Array, " state"], action: Float[Array, " act"], k: Int[Array, ""]
    ) -> Float[Array, " state"]:
        t = (jnp.asarray(k, dtype=state.dtype) * self.time_scale)[None]
        z = self.mlp(jnp.concatenate([self.norm.normalize(state), action, t]))
        # Only the scale of the differences is data; a mean drift is learnt, not baked in, so an
        # untrained model predicts "no change".
        return state + z * like(self.delta_scale, z)

    def predict(
        self,
        states: Float[Array, "T state"],
        actions: Float[Array, "H act"],
        *,
        key: Any = None,
    ) -> Float[Array, "H state"]:
        steps = jnp.arange(actions.shape[0])
        return jax.vmap(self.next_state)(states[:-1], actions, steps)

    def start(self, obs0: Float[Array, " obs"]) -> Carry:
        return (obs0[:-1], step_index(obs0))

    def step(self, carry: Carry, action: Float[Array, " act"]) -> tuple[Carry, Float[Array, " obs"]]:
        state, k = carry
        nxt = self.next_state(state, action, k)
        return (nxt, k + 1), observation(nxt, k + 1)
