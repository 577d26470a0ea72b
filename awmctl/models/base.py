"""The one interface every world model offers, the true simulator included.

* training: :meth:`AbstractWorldModel.predict` maps a recorded episode (its states and actions) to
  the predicted next state at every step. Markovian and history models use the recorded states
  as inputs (teacher forcing); actions world models only read the first one.
* imagination: ``start(obs0) -> carry`` and ``step(carry, action) -> (carry, next_obs)``, so a
  closed-loop policy can be rolled out step by step under ``jax.lax.scan``.

Models speak raw task units at their boundary; normalisation statistics computed from the
training data live inside the model (:meth:`AbstractWorldModel.with_normalizers`). The step
index part of an observation is carried exactly, never predicted.

The class variables say what the rest of the package may rely on without asking for a name:
``trainable`` (False for the simulator: nothing to fit) and ``direct_path`` (True when the model's
prediction of ``s_{t+1}`` reads only ``s_0`` and the actions, so a policy update with a
gradient-stopped policy input may be computed by one parallel forward pass; see
:mod:`awmctl.rollouts.imagination`).
"""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx
import jax
import numpy as np
from jaxtyping import Array, Float

from awmctl.errors import BadInputError

Carry = Any  # model-specific pytree: (state, step index, cache, ...)


class AbstractWorldModel(eqx.Module):
    """Abstract world model. Concrete models are final; see the module docstring."""

    #: registry name, e.g. ``awm-transformer``
    name: eqx.AbstractVar[str]
    state_size: eqx.AbstractVar[int]
    action_size: eqx.AbstractVar[int]
    #: longest episode (number of actions) the model can be used for; sequence models have a
    #: fixed context (their step-index embedding), Markovian models and the simulator none.
    max_horizon: eqx.AbstractVar[int | None]
    trainable: eqx.AbstractClassVar[bool]
    direct_path: eqx.AbstractClassVar[bool]

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
    def step(
        self, carry: Carry, action: Float[Array, " act"]
    ) -> tuple[Carry, Float[Array, " obs"]]:
        """Imagine one step: the next observation ``[s_{k+1}, k+1]``."""

    @abc.abstractmethod
    def with_normalizers(
        self, observations: Float[Array | np.ndarray, "N T obs"]
    ) -> AbstractWorldModel:
        """The same model with its normalisation statistics set from training observations."""

    @abc.abstractmethod
    def state_scale(self) -> Float[Array, " state"]:
        """Per-dimension scale of the normalised-state training loss (the data's state std)."""

    @abc.abstractmethod
    def hyperparameters(self) -> dict[str, Any]:
        """What :func:`awmctl.models.build_model` needs to rebuild this model's skeleton."""


def check_context(model: AbstractWorldModel, horizon: int, label: str | None = None) -> None:
    """Refuse, in one line, episodes longer than a sequence model's context (``label`` names the
    model in the message; default: its name)."""
    if model.max_horizon is not None and horizon > model.max_horizon:
        raise BadInputError(
            f"{label or model.name} has a context of {model.max_horizon} steps, shorter than "
            f"H={horizon}; use a shorter horizon or refit with fit-model --context"
        )


def imagine(
    model: AbstractWorldModel, obs0: Float[Array, " obs"], actions: Float[Array, "H act"]
) -> Float[Array, "H obs"]:
    """Open-loop imagination: the observations after each of ``actions`` (a ``lax.scan``)."""

    def body(carry, action):
        carry, obs = model.step(carry, action)
        return carry, obs

    _, observations = jax.lax.scan(body, model.start(obs0), actions)
    return observations


__all__ = ["AbstractWorldModel", "Carry", "check_context", "imagine"]
