"""What every policy offers, and the Markov policies' extra: acting from the observation alone.

Policies map observations (raw task units: the statistics of their input live inside them) to
actions in (-1, 1). Every policy can drive an episode through :meth:`Policy.controller`; a
:class:`MarkovPolicy` also samples reparameterised actions with their log-probabilities, which is
what backpropagation through a world model (BPO) and SAC need.
"""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from awmctl.tasks import ActFn, Controller

#: Lower bound of the Gaussian's scale (as in brax's NormalTanhDistribution), so that the
#: log-probability stays finite.
MIN_SCALE = 1e-3


class Policy(eqx.Module):
    """Abstract policy over observations ``[state, k]``."""

    name: eqx.AbstractVar[str]
    obs_size: eqx.AbstractVar[int]
    action_size: eqx.AbstractVar[int]

    @abc.abstractmethod
    def controller(self) -> ActFn | Controller:
        """The evaluation behaviour, for :func:`awmctl.tasks.rollout` (deterministic)."""

    @abc.abstractmethod
    def with_normalizer(self, observations: Float[Array | np.ndarray, "... obs"]) -> Policy:
        """The same policy with its input statistics set from observations."""

    @abc.abstractmethod
    def hyperparameters(self) -> dict[str, Any]:
        """What :func:`~awmctl.policies.build_policy` needs to rebuild this policy's skeleton."""


class MarkovPolicy(Policy):
    """A policy that acts from the current observation alone."""

    @abc.abstractmethod
    def sample(
        self, obs: Float[Array, " obs"], key: PRNGKeyArray
    ) -> tuple[Float[Array, " act"], Float[Array, ""]]:
        """A (reparameterised) action and its log-probability."""

    @abc.abstractmethod
    def deterministic(self, obs: Float[Array, " obs"]) -> Float[Array, " act"]:
        """The evaluation action."""

    def controller(self) -> ActFn:
        return lambda obs, k, key: self.deterministic(obs)


__all__ = ["MIN_SCALE", "MarkovPolicy", "Policy"]
