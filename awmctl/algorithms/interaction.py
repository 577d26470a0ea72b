"""What every algorithm that learns while it acts shares (online BPO, SAC, Online-DT): progress
counted in env steps taken (``state.t``), a run of whole evaluation periods, the deterministic
policy's return as the score, and real branches for updates that the schedule may skip."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import jax
import numpy as np

from awmctl.algorithms.base import Algorithm, LearningCurve, State


def whole_periods(env_steps: int, eval_every: int) -> int:
    """Env steps actually taken: ``env_steps`` rounded up to whole evaluation periods (the
    paper's 5000 with evaluation every 32 gives 5024)."""
    return math.ceil(env_steps / eval_every) * eval_every


def when(ready: jax.Array, update: Any, state: Any, key: jax.Array) -> Any:
    """``update(state, key)`` if ``ready``, else ``state``: a real branch (not a select) on one
    seed, so no update work is done before the schedule says."""
    return jax.lax.cond(ready, update, lambda s, key: s, state, key)


class OnlineAlgorithm(Algorithm[State]):
    """An algorithm whose state counts env steps in ``t`` and whose config has ``steps_run``."""

    unit: ClassVar[str] = "env step"
    score: ClassVar[str] = "eval/eval_return"
    higher_is_better: ClassVar[bool] = True
    curve: ClassVar[LearningCurve] = LearningCurve(
        "learning_curve.png",
        ("eval/eval_return",),
        "eval return (deterministic policy)",
        "environment step",
    )

    def progress(self, state: State) -> int:
        return int(np.asarray(state.t)[0])  # type: ignore[attr-defined]  (on the host: no device op)

    @property
    def total(self) -> int:
        return self.config.steps_run


__all__ = ["OnlineAlgorithm", "when", "whole_periods"]
