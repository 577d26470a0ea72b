"""The one interface every world model offers, the true simulator included.

* training: :meth:`WorldModel.predict` maps a recorded episode (its states and actions) to the
  predicted next state at every step. Markovian and history models use the recorded states as
  inputs (teacher forcing); actions world models only read the first one.
* imagination: ``start(obs0) -> carry`` and ``step(carry, action) -> (carry, next_obs)``, so a
  closed-loop policy can be rolled out step by step under ``jax.lax.scan``.

Models speak raw task units at their boundary; normalisation statistics computed from the
training data live inside the model. The step index part of an observation is carried exactly,
never predicted.
"""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from awmctl.tasks.base import observation, step_index

__all__ = ["Carry", "Normalizer", "WorldModel", "imagine", "like", "observation", "step_index"]

Carry = Any  # model-specific pytree: (state, step index, cache, ...)


class Normalizer(eqx.Module):
    """Per-dimension affine normalisation of states (statistics are data, not parameters)."""

    mean: Float[Array, " n"]
    std: Float[Array, " n"]

    @classmethod
    def fit(cls, x: Float[Array, "... n"], min_std: float = 1e-6) -> Normalizer:
        flat = jnp.reshape(x, (-1, x.shape[-1]))
        return cls(jnp.mean(flat, axis=0), jnp.maximum(jnp.std(flat, axis=0), min_std))

    @classmethod
    def identity(cls, n: int) -> Normalizer:
        return cls(jnp.zeros((n,)), jnp.ones((n,)))

    def normalize(self, x: Float[Array, "... n"]) -> Float[Array, "... n"]:
        return (x - like(self.mean, x)) / like(self.std, x)

    def denormalize(self, z: Float[Array, "... n"]) -> Float[Array, "... n"]:
        return z * like(self.std, z) + like(self.mean, z)


def like(stat: Float[Array, " n"], x: Float[Array, "... n"]) -> Float[Array, "... n"]:
    """A per-dimension statistic, gradient-stopped, shaped to broadcast against ``x`` explicitly
    (tests run with rank promotion switched off)."""
    return jnp.reshape(jax.lax.stop_gradient(stat), (1,) * (x.ndim - 1) + stat.shape)


class WorldModel(eqx.Module):
    """Abstract world model. Concrete models are final; see the module docstring."""

    #: registry name, e.g. ``awm-transformer``
    name: eqx.AbstractVar[str]
    state_size: eqx.AbstractVar[int]
    action_size: eqx.AbstractVar[int]
    #: longest episode (number of actions) the model can be used for; sequence models have a
    #: fixed context (their step-index embedding), Markovian models and the simulator none.
    max_horizon: eqx.AbstractVar[int | None]

    @abc.abstractmethod
    def predict(
        self,
        states: Float[Array, "T state"],
        actions: Float[Array, "H act"],
        *,
        key: Any = None,
    ) -> Float[Array, "H state"]:
        """Predicted ``s_{t+1}`` for ``t = 0..H-1`` of one recorded episode (training)."""

    @abc.abstractmethod
    def start(self, obs0: Float[Array, " obs"]) -> Carry:
        """Imagination state after seeing the first observation ``[s_0, k_0]``."""

    @abc.abstractmethod
    def step(self, carry: Carry, action: Float[Array, " act"]) -> tuple[Carry, Float[Array, " obs"]]:
        """Imagine one step: the next observation ``[s_{k+1}, k+1]``."""

    @property
    def trainable(self) -> bool:
        """False for the simulator: it has nothing to fit."""
        return True

    def hyperparameters(self) -> dict[str, Any]:
        """What :func:`awmctl.models.build_model` needs to rebuild this model's skeleton."""
        return {}


def imagine(
    model: WorldModel, obs0: Float[Array, " obs"], actions: Float[Array, "H act"]
) -> Float[Array, "H obs"]:
    """Open-loop imagination: the observations after each of ``actions`` (a ``lax.scan``)."""

    def body(carry, action):
        carry, obs = model.step(carry, action)
        return carry, obs

    _, observations = jax.lax.scan(body, model.start(obs0), actions)
    return observations
