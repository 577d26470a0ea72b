"""Sequence world models over a causal backbone: actions world models and history world models.

Actions world model (AWM), ``s_{t+1} = h(s_0, a_0..a_t)``: tokens ``[e_s(s_0), e_a(a_0), ...,
e_a(a_{H-1})]``; the backbone's output at token ``a_t`` is decoded into ``s_{t+1}``. It never
sees a state after ``s_0``, so the gradient from a predicted state to an action takes one direct
path through the backbone (the paper's point).

History world model (HWM), ``s_{t+1} = h(s_0..s_t, a_0..a_t)``: tokens ``e(s_t, a_t)``; trained
with teacher forcing on recorded states and fed its own predictions in imagination, so gradients
also flow through every predicted state in between.

With a transformer backbone a learned embedding of the token position (the step index) is added
to every token (the transformer has no position table of its own); recurrent backbones know the
position from their state. Outputs are normalised states, decoded by an MLP.
"""

from __future__ import annotations

from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from awmctl.models.backbones import AbstractBackbone, Recurrent, Transformer
from awmctl.models.base import Carry, Normalizer, WorldModel, step_index, observation

Family = Literal["awm", "hwm"]
BackboneKind = Literal["transformer", "lstm", "gru", "rnn"]


def _embedder(in_size: int, width: int, mlp: bool, *, key: PRNGKeyArray) -> eqx.Module:
    """Linear embedding (transformer, as in the paper) or an MLP (64, 64) -> width (recurrent)."""
    if mlp:
        return eqx.nn.MLP(in_size, width, width_size=64, depth=2, activation=jax.nn.relu, key=key)
    return eqx.nn.Linear(in_size, width, key=key)


class SequenceWorldModel(WorldModel):
    """An AWM or HWM (``family``) over any :class:`AbstractBackbone`."""

    backbone: AbstractBackbone
    state_embed: eqx.Module  # AWM: s_0 -> token; HWM: (s_t, a_t) -> token
    action_embed: eqx.Module | None  # AWM only
    position_embed: eqx.nn.Embedding | None  # transformer only
    decoder: eqx.nn.MLP
    norm: Normalizer
    name: str = eqx.field(static=True)
    family: Family = eqx.field(static=True)
    state_size: int = eqx.field(static=True)
    action_size: int = eqx.field(static=True)
    max_horizon: int = eqx.field(static=True)
    hyper: tuple[tuple[str, Any], ...] = eqx.field(static=True)

    def __init__(
        self,
        family: Family,
        backbone: BackboneKind,
        state_size: int,
        action_size: int,
        max_horizon: int,
        *,
        width: int = 48,
        layers: int = 2,
        heads: int = 3,
        mlp_width: int = 192,
        dropout: float = 0.0,
        decoder_width: int = 64,
        key: PRNGKeyArray,
    ):
        kb, ks, ka, kp, kd = jax.random.split(key, 5)
        is_transformer = backbone == "transformer"
        if is_transformer:
            self.backbone = Transformer(width, layers, heads, mlp_width, dropout, key=kb)
        else:
            self.backbone = Recurrent(backbone, width, key=kb)
        mlp_embed = not is_transformer
        if family == "awm":
            self.state_embed = _embedder(state_size, width, mlp_embed, key=ks)
            self.action_embed = _embedder(action_size, width, mlp_embed, key=ka)
            tokens = max_horizon + 1
        else:
            self.state_embed = _embedder(state_size + action_size, width, mlp_embed, key=ks)
            self.action_embed = None
            tokens = max_horizon
        self.position_embed = eqx.nn.Embedding(tokens, width, key=kp) if is_transformer else None
        self.decoder = eqx.nn.MLP(
            width, state_size, width_size=decoder_width, depth=2, activation=jax.nn.relu, key=kd
        )
        self.norm = Normalizer.identity(state_size)
        self.name = f"{family}-{backbone}"
        self.family = family
        self.state_size = state_size
        self.action_size = action_size
        self.max_horizon = max_horizon
        hyper: dict[str, Any] = {"width": width, "decoder_width": decoder_width}
        if is_transformer:
            hyper.update(layers=layers, heads=heads, mlp_width=mlp_width, dropout=dropout)
        self.hyper = tuple(hyper.items())

    def hyperparameters(self) -> dict[str, Any]:
        return dict(self.hyper)

    # --------------------------------------------------------------------------- internals

    def _position(self, token: Float[Array, " width"], position) -> Float[Array, " width"]:
        if self.position_embed is None:
            return token
        return token + self.position_embed(position)

    def _decode(self, out: Float[Array, " width"]) -> Float[Array, " state"]:
        return self.norm.denormalize(self.decoder(out))

    def _check_length(self, horizon: int) -> None:
        if horizon > self.max_horizon:
            raise ValueError(f"{self.name} has a context of {self.max_horizon} steps, got {horizon}")

    # ------------------------------------------------------------------------------ training

    def predict(
        self,
        states: Float[Array, "T state"],
        actions: Float[Array, "H act"],
        *,
        key: PRNGKeyArray | None = None,
    ) -> Float[Array, "H state"]:
        horizon = actions.shape[0]
        self._check_length(horizon)
        if self.family == "awm":
            first = self.state_embed(self.norm.normalize(states[0]))
            rest = jax.vmap(self.action_embed)(actions)  # type: ignore[arg-type]
            tokens = jnp.concatenate([first[None], rest])
        else:
            inputs = jnp.concatenate([self.norm.normalize(states[:-1]), actions], axis=-1)
            tokens = jax.vmap(self.state_embed)(inputs)
        if self.position_embed is not None:
            tokens = tokens + jax.vmap(self.position_embed)(jnp.arange(tokens.shape[0]))
        outputs = self.backbone(tokens, key=key)
        if self.family == "awm":
            outputs = outputs[1:]  # the output at token a_t predicts s_{t+1}
        return jax.vmap(self._decode)(outputs)

    # --------------------------------------------------------------------------- imagination

    def start(self, obs0: Float[Array, " obs"]) -> Carry:
        state = obs0[:-1]
        tokens = self.max_horizon + (1 if self.family == "awm" else 0)
        cache = self.backbone.init_cache(tokens, obs0.dtype)
        position = jnp.zeros((), jnp.int32)
        if self.family == "awm":
            token = self._position(self.state_embed(self.norm.normalize(state)), position)
            cache, _ = self.backbone.step(cache, token, position)
            position = position + 1
        return (cache, position, step_index(obs0), state)

    def step(self, carry: Carry, action: Float[Array, " act"]) -> tuple[Carry, Float[Array, " obs"]]:
        cache, position, k, state = carry
        if self.family == "awm":
            token = self.action_embed(action)  # type: ignore[misc]
        else:
            token = self.state_embed(jnp.concatenate([self.norm.normalize(state), action]))
        cache, out = self.backbone.step(cache, self._position(token, position), position)
        next_state = self._decode(out)
        return (cache, position + 1, k + 1, next_state), observation(next_state, k + 1)
