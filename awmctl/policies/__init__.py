"""Policies: Markov ones (a closed-loop tanh-Gaussian MLP, an open-loop table of actions) and a
decision transformer that acts from its episode's context; Q-networks for actor-critic agents."""

from __future__ import annotations

from typing import Any

from jaxtyping import PRNGKeyArray

from awmctl.errors import BadInputError
from awmctl.policies.base import MIN_SCALE, MarkovPolicy, Policy
from awmctl.policies.critic import QNetwork
from awmctl.policies.decision_transformer import Context, DecisionTransformer, returns_to_go
from awmctl.policies.markov import ACTIVATIONS, MLPPolicy, OpenLoopPolicy

#: the policies BPO trains (the `--policy` option of optimize-policy) -> class
POLICIES: dict[str, type[MarkovPolicy]] = {"mlp": MLPPolicy, "open-loop": OpenLoopPolicy}


def build_policy(kind: str, obs_size: int, action_size: int, horizon: int, hyper: dict[str, Any] | None = None,
                 *, key: PRNGKeyArray) -> Policy:
    """A fresh policy of ``kind`` (a key of :data:`POLICIES`, or ``decision-transformer``) with
    the hyper-parameters ``hyper`` (those its ``hyperparameters()`` reports; defaults otherwise)."""
    hyper = dict(hyper or {})
    if kind == "mlp":
        return MLPPolicy(obs_size, action_size, hyper.get("width", 64), hyper.get("activation", "swish"), key=key)
    if kind == "open-loop":
        return OpenLoopPolicy(obs_size, action_size, hyper.get("horizon", horizon), key=key)
    if kind == "decision-transformer":
        hyper.setdefault("horizon", horizon)
        return DecisionTransformer(obs_size, action_size, **hyper, key=key)
    raise BadInputError(f"unknown policy {kind!r}; choose one of: {', '.join(POLICIES)}")


__all__ = [
    "ACTIVATIONS",
    "MIN_SCALE",
    "POLICIES",
    "Context",
    "DecisionTransformer",
    "MLPPolicy",
    "MarkovPolicy",
    "OpenLoopPolicy",
    "Policy",
    "QNetwork",
    "build_policy",
    "returns_to_go",
]
