"""Policies: Markov ones (a closed-loop tanh-Gaussian MLP, an open-loop table of actions) and a
decision transformer that acts from its episode's context; Q-networks for actor-critic agents."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jaxtyping import PRNGKeyArray

from awmctl.errors import BadInputError
from awmctl.policies.base import MIN_SCALE, MarkovPolicy, Policy
from awmctl.policies.critic import QNetwork
from awmctl.policies.decision_transformer import Context, DecisionTransformer, returns_to_go
from awmctl.policies.markov import ACTIVATIONS, MLPPolicy, OpenLoopPolicy

#: ``build(obs_size, action_size, horizon, hyper, key)``
Builder = Callable[[int, int, int, dict[str, Any], PRNGKeyArray], Policy]


@dataclass(frozen=True)
class PolicySpec:
    """What a kind of policy is: its class, how it is built from its hyper-parameters (those its
    ``hyperparameters()`` reports; defaults for the rest), and whether BPO trains it."""

    name: str
    cls: type[Policy]
    description: str
    build: Builder
    #: a Markov policy, which BPO trains (the `--policy` option of optimize-policy)
    bpo: bool


def _mlp(obs: int, act: int, horizon: int, hyper: dict[str, Any], key: PRNGKeyArray) -> Policy:
    width, activation = hyper.get("width", 64), hyper.get("activation", "swish")
    return MLPPolicy(obs, act, width, activation, key=key)


def _open_loop(
    obs: int, act: int, horizon: int, hyper: dict[str, Any], key: PRNGKeyArray
) -> Policy:
    return OpenLoopPolicy(obs, act, hyper.get("horizon", horizon), key=key)


def _decision_transformer(
    obs: int, act: int, horizon: int, hyper: dict[str, Any], key: PRNGKeyArray
) -> Policy:
    return DecisionTransformer(obs, act, **{"horizon": horizon, **hyper}, key=key)


#: every kind of policy, by name
POLICY_SPECS: dict[str, PolicySpec] = {
    spec.name: spec
    for spec in (
        PolicySpec("mlp", MLPPolicy, "closed loop, tanh-Gaussian MLP", _mlp, bpo=True),
        PolicySpec("open-loop", OpenLoopPolicy, "one action per step", _open_loop, bpo=True),
        PolicySpec(
            "decision-transformer",
            DecisionTransformer,
            "acts from its episode's context (Online-DT's)",
            _decision_transformer,
            bpo=False,
        ),
    )
}

#: the policies BPO trains (the `--policy` option of optimize-policy) -> class
POLICIES: dict[str, type[Policy]] = {n: s.cls for n, s in POLICY_SPECS.items() if s.bpo}


def build_policy(
    kind: str,
    obs_size: int,
    action_size: int,
    horizon: int,
    hyper: dict[str, Any] | None = None,
    *,
    key: PRNGKeyArray,
) -> Policy:
    """A fresh policy of ``kind`` (a key of :data:`POLICY_SPECS`) with the hyper-parameters
    ``hyper`` (those its ``hyperparameters()`` reports; defaults otherwise)."""
    spec = POLICY_SPECS.get(kind)
    if spec is None:
        raise BadInputError(f"unknown policy {kind!r}; choose one of: {', '.join(POLICY_SPECS)}")
    return spec.build(obs_size, action_size, horizon, dict(hyper or {}), key)


__all__ = [
    "ACTIVATIONS",
    "MIN_SCALE",
    "POLICIES",
    "POLICY_SPECS",
    "Context",
    "DecisionTransformer",
    "MLPPolicy",
    "MarkovPolicy",
    "OpenLoopPolicy",
    "Policy",
    "PolicySpec",
    "QNetwork",
    "build_policy",
    "returns_to_go",
]
