"""A decision transformer (Chen et al. 2021) with the Online-DT action head (Zheng, Zhang and
Grover, ICML 2022): a causal transformer over (return-to-go, observation, action) tokens whose
output at each observation token gives a tanh-squashed Gaussian over that step's action.

It acts from a *context*: the episode so far, with the return-to-go it conditions on at every
step. Only the last ``context`` steps are read (the window ending at the current step; the first
steps of an episode read the window that starts at step 0, whose later tokens a causal mask
hides). Evaluation conditions on ``target``, stored with the parameters, so that ``collect
--policy DIR`` runs a saved decision transformer like any other policy.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from awmctl.backbones import Transformer
from awmctl.layers import dense, layer_norm
from awmctl.normalize import Normalizer
from awmctl.policies import tanh_gaussian
from awmctl.policies.base import Policy
from awmctl.tasks import Controller, step_index


class Context(NamedTuple):
    """One episode's tokens so far (fixed size: entries after the current step are ignored)."""

    returns_to_go: Float[Array, " H"]
    observations: Float[Array, "H obs"]
    actions: Float[Array, "H act"]

    @classmethod
    def empty(cls, horizon: int, obs_size: int, action_size: int) -> Context:
        return cls(
            jnp.zeros((horizon,)), jnp.zeros((horizon, obs_size)), jnp.zeros((horizon, action_size))
        )

    def at(self, k: Int[Array, ""], to_go: Float[Array, ""], obs: Float[Array, " obs"]) -> Context:
        """With step ``k``'s return-to-go and observation written (its action comes next)."""
        return self._replace(
            returns_to_go=self.returns_to_go.at[k].set(to_go),
            observations=self.observations.at[k].set(obs),
        )

    def acted(self, k: Int[Array, ""], action: Float[Array, " act"]) -> Context:
        return self._replace(actions=self.actions.at[k].set(action))


class DecisionTransformer(Policy):
    embed_return: eqx.nn.Linear
    embed_obs: eqx.nn.Linear
    embed_action: eqx.nn.Linear
    step_table: Float[
        Array, "H width"
    ]  # a learned embedding of the step index, added to each token
    embed_norm: eqx.nn.LayerNorm
    backbone: Transformer
    head: eqx.nn.Linear
    obs_norm: Normalizer
    return_norm: Normalizer  # returns-to-go are embedded in units set from the warm-up episodes
    target: Float[Array, ""]  # the return-to-go evaluation conditions on
    name: str = eqx.field(static=True)
    obs_size: int = eqx.field(static=True)
    action_size: int = eqx.field(static=True)
    horizon: int = eqx.field(static=True)
    context: int = eqx.field(static=True)
    width: int = eqx.field(static=True)
    layers: int = eqx.field(static=True)
    heads: int = eqx.field(static=True)
    mlp_width: int = eqx.field(static=True)

    def __init__(
        self,
        obs_size: int,
        action_size: int,
        horizon: int,
        context: int = 20,
        width: int = 64,
        layers: int = 2,
        heads: int = 4,
        mlp_width: int = 128,
        *,
        key: PRNGKeyArray,
    ):
        keys = jax.random.split(key, 6)
        self.embed_return = eqx.nn.Linear(1, width, key=keys[0])
        self.embed_obs = eqx.nn.Linear(obs_size, width, key=keys[1])
        self.embed_action = eqx.nn.Linear(action_size, width, key=keys[2])
        self.step_table = 0.02 * jax.random.normal(keys[3], (horizon, width))
        self.embed_norm = eqx.nn.LayerNorm(width)
        self.backbone = Transformer(width, layers, heads, mlp_width, key=keys[4])
        self.head = eqx.nn.Linear(width, 2 * action_size, key=keys[5])
        self.obs_norm = Normalizer.identity(obs_size)
        self.return_norm = Normalizer.identity(1)
        self.target = jnp.zeros(())
        self.name = "decision-transformer"
        self.obs_size, self.action_size, self.horizon = obs_size, action_size, horizon
        self.context, self.width, self.layers, self.heads, self.mlp_width = (
            context,
            width,
            layers,
            heads,
            mlp_width,
        )

    @property
    def window(self) -> int:
        """Steps read at once: the context, or the whole episode when it is shorter."""
        return min(self.context, self.horizon)

    def __call__(
        self,
        returns_to_go: Float[Array, " T"],
        observations: Float[Array, "T obs"],
        actions: Float[Array, "T act"],
    ) -> tuple[Float[Array, "T act"], Float[Array, "T act"]]:
        """Mean and scale (before the tanh) of the action at every step of a window, each
        computed from the tokens up to that step's observation."""
        k = jnp.clip(jax.vmap(step_index)(observations), 0, self.horizon - 1)
        steps = self.step_table[k]
        tokens = jnp.stack(
            [
                dense(self.embed_return, self.return_norm.normalize(returns_to_go[:, None]))
                + steps,
                dense(self.embed_obs, self.obs_norm.normalize(observations)) + steps,
                dense(self.embed_action, actions) + steps,
            ],
            axis=1,
        ).reshape(-1, self.width)  # r_0 s_0 a_0 r_1 s_1 a_1 ...
        out = self.backbone(layer_norm(self.embed_norm, tokens))[1::3]  # at each observation token
        head = dense(self.head, out)
        return head[:, : self.action_size], tanh_gaussian.scale_of(head[:, self.action_size :])

    def step_distribution(
        self, context: Context, k: Int[Array, ""]
    ) -> tuple[Float[Array, " act"], Float[Array, " act"]]:
        """Mean and scale of the action at step ``k`` of an episode, from its context window."""
        start = jnp.clip(k - self.window + 1, 0, self.horizon - self.window)
        window = jax.tree_util.tree_map(
            lambda x: jax.lax.dynamic_slice_in_dim(x, start, self.window), context
        )
        mean, scale = self(*window)
        return mean[k - start], scale[k - start]

    def explore(
        self, context: Context, k: Int[Array, ""], key: PRNGKeyArray
    ) -> Float[Array, " act"]:
        mean, scale = self.step_distribution(context, k)
        return tanh_gaussian.sample(mean, scale, key)[0]

    def controller(self) -> Controller:
        """Mean actions, conditioned on :attr:`target` less the rewards received so far."""

        def act(memory, obs, k, key):
            context, to_go = memory
            context = context.at(k, to_go, obs)
            action = jnp.tanh(self.step_distribution(context, k)[0])
            return (context.acted(k, action), to_go), action

        def record(memory, reward):
            context, to_go = memory
            return context, to_go - reward

        start = lambda: (Context.empty(self.horizon, self.obs_size, self.action_size), self.target)
        return Controller(start, act, record)

    def with_normalizer(
        self, observations: Float[Array | np.ndarray, "... obs"]
    ) -> DecisionTransformer:
        flat = jnp.reshape(jnp.asarray(observations), (-1, self.obs_size))
        return eqx.tree_at(lambda p: p.obs_norm, self, Normalizer.fit(flat))

    def with_returns(
        self, returns_to_go: Float[Array, "..."], target: Float[Array, ""]
    ) -> DecisionTransformer:
        """With the units of its return-to-go input set from data, and the evaluation target."""
        norm = Normalizer.fit(jnp.reshape(returns_to_go, (-1, 1)))
        return eqx.tree_at(
            lambda p: (p.return_norm, p.target),
            self,
            (norm, jnp.asarray(target, self.target.dtype)),
        )

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "horizon": self.horizon,
            "context": self.context,
            "width": self.width,
            "layers": self.layers,
            "heads": self.heads,
            "mlp_width": self.mlp_width,
        }


def returns_to_go(rewards: Float[Array, "*b H"]) -> Float[Array, "*b H"]:
    """``sum_{j >= k} r_j`` at every step ``k`` (hindsight: what the episode actually got)."""
    return jnp.flip(jnp.cumsum(jnp.flip(rewards, -1), axis=-1), -1)


__all__ = ["Context", "DecisionTransformer", "returns_to_go"]
