"""Sequence world models over a causal backbone: actions world models and history world models.

Actions world model (:class:`ActionsWorldModel`, AWM), ``s_{t+1} = h(s_0, a_0..a_t)``: tokens
``[e_s(s_0), e_a(a_0), ..., e_a(a_{H-1})]``; the backbone's output at token ``a_t`` is decoded into
``s_{t+1}``. It never sees a state after ``s_0``, so the gradient from a predicted state to an
action takes one direct path through the backbone (the paper's point).

History world model (:class:`HistoryWorldModel`, HWM), ``s_{t+1} = h(s_0..s_t, a_0..a_t)``: tokens
``e(s_t, a_t)``; trained with teacher forcing on recorded states and fed its own predictions in
imagination, so gradients also flow through every predicted state in between.

Both share :class:`AbstractSequenceModel`: the backbone (any :class:`AbstractBackbone`), the
decoder, the state normaliser and, with a transformer, a learned embedding of the token position
(the step index), added to every token; recurrent and state-space backbones know the position
from their state.
"""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from awmctl.backbones import BACKBONE_CLASSES, AbstractBackbone, BackboneKind, make_backbone
from awmctl.layers import embed, mlp
from awmctl.models.base import AbstractWorldModel, Carry, check_context
from awmctl.normalize import Normalizer
from awmctl.tasks import observation, step_index


def _embedder(
    in_size: int, width: int, deep: bool, *, key: PRNGKeyArray
) -> eqx.nn.Linear | eqx.nn.MLP:
    """Linear embedding (transformer, as in the paper) or an MLP (64, 64) -> width (recurrent)."""
    if deep:
        return eqx.nn.MLP(in_size, width, width_size=64, depth=2, activation=jax.nn.relu, key=key)
    return eqx.nn.Linear(in_size, width, key=key)


class AbstractSequenceModel(AbstractWorldModel):
    """What AWMs and HWMs share: backbone, token positions, decoder, normaliser."""

    backbone: AbstractBackbone
    state_embed: eqx.nn.Linear | eqx.nn.MLP  # AWM: s_0 -> token; HWM: (s_t, a_t) -> token
    position_embed: eqx.nn.Embedding | None  # transformer only
    decoder: eqx.nn.MLP
    norm: Normalizer
    name: str = eqx.field(static=True)
    state_size: int = eqx.field(static=True)
    action_size: int = eqx.field(static=True)
    max_horizon: int = eqx.field(static=True)
    hyper: tuple[tuple[str, Any], ...] = eqx.field(static=True)
    trainable: ClassVar[bool] = True

    def hyperparameters(self) -> dict[str, Any]:
        return dict(self.hyper)

    def with_normalizers(
        self, observations: Float[Array | np.ndarray, "N T obs"]
    ) -> AbstractSequenceModel:
        return eqx.tree_at(
            lambda m: m.norm, self, Normalizer.fit(jnp.asarray(observations)[..., :-1])
        )

    def state_scale(self) -> Float[Array, " state"]:
        return self.norm.std

    def _position(self, token: Float[Array, " width"], position) -> Float[Array, " width"]:
        if self.position_embed is None:
            return token
        return token + self.position_embed(position)

    def _positioned(self, tokens: Float[Array, "T width"]) -> Float[Array, "T width"]:
        if self.position_embed is None:
            return tokens
        return tokens + jax.vmap(self.position_embed)(jnp.arange(tokens.shape[0]))

    def _decode(self, out: Float[Array, "*rows width"]) -> Float[Array, "*rows state"]:
        return self.norm.denormalize(mlp(self.decoder, out))


#: The paper's sizes (the authors' configuration), per backbone: every size option a sequence
#: model takes, with its default.
TRANSFORMER_SIZES: dict[str, Any] = {
    "width": 48,
    "layers": 2,
    "heads": 3,
    "mlp_width": 192,
    "dropout": 0.0,
    "decoder_width": 64,
}
RECURRENT_SIZES: dict[str, Any] = {"width": 48, "decoder_width": 64}
#: The state-space AWM's sizes (not the paper's: it has none), chosen so that the model has about
#: the transformer AWM's number of parameters (tests/test_ssm.py counts both).
SSM_SIZES: dict[str, Any] = {"width": 48, "layers": 2, "state_width": 96, "decoder_width": 64}
#: every backbone's size options and defaults
BACKBONE_SIZES: dict[str, dict[str, Any]] = {
    "transformer": TRANSFORMER_SIZES,
    "lstm": RECURRENT_SIZES,
    "gru": RECURRENT_SIZES,
    "rnn": RECURRENT_SIZES,
    "ssm": SSM_SIZES,
}


def _shared_parts(
    family: str,
    backbone: BackboneKind,
    state_in: int,
    state_size: int,
    action_size: int,
    max_horizon: int,
    tokens: int,
    keys: tuple[PRNGKeyArray, ...],
    **sizes: Any,
) -> dict[str, Any]:
    """Every field the two families share: the backbone, the state embedder, the position table,
    the decoder, the normaliser, the recorded hyper-parameters and the sizes, from the keys
    ``(backbone, state, position, decoder)`` and the size options (the paper's where not given)."""
    kb, ks, kp, kd = keys
    order_blind = BACKBONE_CLASSES[backbone].order_blind
    defaults = BACKBONE_SIZES[backbone]
    unknown = sorted(set(sizes) - set(defaults))
    if unknown:
        raise TypeError(f"a {backbone} sequence model has no size option {', '.join(unknown)}")
    hyper = {**defaults, **sizes}
    width, decoder_width = hyper["width"], hyper["decoder_width"]
    backbone_sizes = {k: v for k, v in hyper.items() if k not in ("width", "decoder_width")}
    return {
        "backbone": make_backbone(backbone, width, key=kb, **backbone_sizes),
        "state_embed": _embedder(state_in, width, not order_blind, key=ks),
        "position_embed": eqx.nn.Embedding(tokens, width, key=kp) if order_blind else None,
        "decoder": eqx.nn.MLP(
            width, state_size, width_size=decoder_width, depth=2, activation=jax.nn.relu, key=kd
        ),
        "norm": Normalizer.identity(state_size),
        "hyper": tuple(hyper.items()),
        "name": f"{family}-{backbone}",
        "state_size": state_size,
        "action_size": action_size,
        "max_horizon": max_horizon,
    }


class ActionsWorldModel(AbstractSequenceModel):
    """``s_{t+1} = h(s_0, a_0..a_t)`` (see the module docstring)."""

    action_embed: eqx.nn.Linear | eqx.nn.MLP
    direct_path: ClassVar[bool] = True

    def __init__(
        self,
        backbone: BackboneKind,
        state_size: int,
        action_size: int,
        max_horizon: int,
        *,
        key: PRNGKeyArray,
        **sizes: Any,
    ):
        kb, ks, ka, kp, kd = jax.random.split(key, 5)
        parts = _shared_parts(
            "awm",
            backbone,
            state_size,
            state_size,
            action_size,
            max_horizon,
            max_horizon + 1,
            (kb, ks, kp, kd),
            **sizes,
        )
        for field, value in parts.items():
            setattr(self, field, value)
        self.action_embed = _embedder(
            action_size,
            dict(parts["hyper"])["width"],
            not BACKBONE_CLASSES[backbone].order_blind,
            key=ka,
        )

    def predict(
        self,
        states: Float[Array, "T state"],
        actions: Float[Array, "H act"],
        *,
        key: PRNGKeyArray | None = None,
    ) -> Float[Array, "H state"]:
        check_context(self, actions.shape[0])
        first = embed(self.state_embed, self.norm.normalize(states[0]))
        rest = embed(self.action_embed, actions)
        outputs = self.backbone(self._positioned(jnp.concatenate([first[None], rest])), key=key)
        return self._decode(outputs[1:])  # the output at token a_t predicts s_{t+1}

    def start(self, obs0: Float[Array, " obs"]) -> Carry:
        state = obs0[:-1]
        cache = self.backbone.init_cache(self.max_horizon + 1, obs0.dtype)
        position = jnp.zeros((), jnp.int32)
        token = self._position(embed(self.state_embed, self.norm.normalize(state)), position)
        cache, _ = self.backbone.step(cache, token, position)
        return (cache, position + 1, step_index(obs0), state)

    def step(
        self, carry: Carry, action: Float[Array, " act"]
    ) -> tuple[Carry, Float[Array, " obs"]]:
        cache, position, k, _ = carry
        cache, out = self.backbone.step(
            cache, self._position(embed(self.action_embed, action), position), position
        )
        next_state = self._decode(out)
        return (cache, position + 1, k + 1, next_state), observation(next_state, k + 1)


class HistoryWorldModel(AbstractSequenceModel):
    """``s_{t+1} = h(s_0..s_t, a_0..a_t)`` (see the module docstring)."""

    direct_path: ClassVar[bool] = False

    def __init__(
        self,
        backbone: BackboneKind,
        state_size: int,
        action_size: int,
        max_horizon: int,
        *,
        key: PRNGKeyArray,
        **sizes: Any,
    ):
        # The same key layout as ActionsWorldModel (its action-embedder key goes unused), so that
        # a seed builds the same backbone in both families.
        kb, ks, _, kp, kd = jax.random.split(key, 5)
        parts = _shared_parts(
            "hwm",
            backbone,
            state_size + action_size,
            state_size,
            action_size,
            max_horizon,
            max_horizon,
            (kb, ks, kp, kd),
            **sizes,
        )
        for field, value in parts.items():
            setattr(self, field, value)

    def predict(
        self,
        states: Float[Array, "T state"],
        actions: Float[Array, "H act"],
        *,
        key: PRNGKeyArray | None = None,
    ) -> Float[Array, "H state"]:
        check_context(self, actions.shape[0])
        inputs = jnp.concatenate([self.norm.normalize(states[:-1]), actions], axis=-1)
        outputs = self.backbone(self._positioned(embed(self.state_embed, inputs)), key=key)
        return self._decode(outputs)

    def start(self, obs0: Float[Array, " obs"]) -> Carry:
        cache = self.backbone.init_cache(self.max_horizon, obs0.dtype)
        return (cache, jnp.zeros((), jnp.int32), step_index(obs0), obs0[:-1])

    def step(
        self, carry: Carry, action: Float[Array, " act"]
    ) -> tuple[Carry, Float[Array, " obs"]]:
        cache, position, k, state = carry
        token = embed(self.state_embed, jnp.concatenate([self.norm.normalize(state), action]))
        cache, out = self.backbone.step(cache, self._position(token, position), position)
        next_state = self._decode(out)
        return (cache, position + 1, k + 1, next_state), observation(next_state, k + 1)


__all__ = [
    "BACKBONE_SIZES",
    "RECURRENT_SIZES",
    "SSM_SIZES",
    "TRANSFORMER_SIZES",
    "AbstractSequenceModel",
    "ActionsWorldModel",
    "HistoryWorldModel",
]
