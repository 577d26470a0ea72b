"""The behaviour ``collect --policy`` names: ``random``, ``constant:V[,V...]`` or a policy
directory."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from awmctl.artifacts.policies import load_policy
from awmctl.errors import BadInputError
from awmctl.rollouts import constant_controller, random_controller
from awmctl.tasks import ActFn, Controller, Task


@dataclasses.dataclass(frozen=True)
class PolicySpec:
    kind: str  # "random" | "constant" | "checkpoint"
    value: tuple[float, ...] = ()
    path: str | None = None

    def describe(self) -> str:
        if self.kind == "constant":
            return "constant:" + ",".join(f"{v:g}" for v in self.value)
        return self.path if self.kind == "checkpoint" else self.kind


def parse_policy(text: str) -> PolicySpec:
    """Parse ``--policy``. Raises :class:`BadInputError` for anything unparsable."""
    text = text.strip()
    if text == "random":
        return PolicySpec("random")
    if text.startswith("constant:"):
        try:
            values = tuple(float(v) for v in text.removeprefix("constant:").split(","))
        except ValueError:
            raise BadInputError(
                f"cannot parse policy {text!r}; write constant:V or constant:V1,V2 with numbers in "
                "[-1, 1]"
            ) from None
        if not all(-1.0 <= v <= 1.0 for v in values):  # also refuses nan
            raise BadInputError(
                f"constant action {text.removeprefix('constant:')} is outside [-1, 1], the range "
                "every task's actions are scaled to; write constant:V with -1 <= V <= 1"
            )
        return PolicySpec("constant", values)
    if Path(text).is_dir():
        return PolicySpec("checkpoint", path=text)
    raise BadInputError(
        f"cannot parse policy {text!r}; use 'random', 'constant:V' or a policy directory from "
        "optimize-policy"
    )


def behaviour(spec: PolicySpec, task: Task) -> ActFn | Controller:
    """A controller for :func:`awmctl.tasks.rollout`; a policy directory's best checkpoint (first
    seed) acts deterministically."""
    if spec.kind == "random":
        return random_controller(task)
    if spec.kind == "constant":
        return constant_controller(task, spec.value)
    policy, policy_task, _ = load_policy(spec.path)
    if policy_task.name != task.name or policy.obs_size != task.obs_size:
        raise BadInputError(f"{spec.path} is a policy for {policy_task.name}, not {task.name}")
    return policy.controller()


__all__ = ["PolicySpec", "behaviour", "parse_policy"]
