"""The two references that turn a return into a score a user can read:

* ``R_random``: the mean return of uniformly random episodes;
* ``R_opt``: the best open-loop plan that multi-start direct shooting finds through the task's
  own gradient (the simulator), from the start the evaluation uses.

``score = (R - R_random) / (R_opt - R_random)``: 0 is a random policy, 1 the best plan found
(a deterministic task's best closed-loop policy is no better than its best open-loop plan, so a
score above 1 means the shooting stopped short of the optimum). Caching them on disk is
:mod:`awmctl.artifacts.references`' business.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from awmctl.algorithms.base import run
from awmctl.algorithms.bpo import BPO, BPOConfig, BPOState
from awmctl.errors import BadInputError
from awmctl.models import SimulatorModel
from awmctl.policies import MarkovPolicy
from awmctl.rollouts import collect, random_controller
from awmctl.tasks import Task, rollout


@dataclasses.dataclass(frozen=True)
class ReferenceSettings:
    """How the references are computed (recorded beside them: a cache entry made with other
    settings is another entry)."""

    random_episodes: int = 512
    #: plans: one from a = 0, the others from a pre-tanh N(0, spread^2) perturbation of it
    shooting_starts: int = 8
    shooting_steps: int = 2000
    shooting_lr: float = 1e-2
    spread: float = 1.0

    def check(self) -> None:
        """Refuse, naming the option, a setting that cannot make references (a count below one,
        a learning rate that is not a positive finite number: inf or nan would make plans worse
        than random and replace the cache's entry with them)."""
        for option, count in (
            ("--episodes", self.random_episodes),
            ("--starts", self.shooting_starts),
            ("--shooting-steps", self.shooting_steps),
        ):
            if count < 1:
                raise BadInputError(f"{option} must be at least 1, got {count}")
        if not 0 < self.shooting_lr < math.inf:
            raise BadInputError(
                f"--shooting-lr must be a positive finite number, got {self.shooting_lr}"
            )
        if not 0 <= self.spread < math.inf:
            raise BadInputError(f"the plans' spread must be finite and >= 0, got {self.spread}")


@dataclasses.dataclass(frozen=True)
class References:
    random: float
    opt: float
    #: every plan's final return (the first from a = 0)
    plans: tuple[float, ...]
    settings: ReferenceSettings
    #: the best plan's actions, one row per step (None in entries made before awmctl kept them):
    #: what a fitted world model is asked to score to tell whether it sees the optimum
    plan: tuple[tuple[float, ...], ...] | None = None

    def score(self, returns: Any) -> np.ndarray:
        """Normalised score of one return or an array of them."""
        return (np.asarray(returns, np.float64) - self.random) / (self.opt - self.random)

    @property
    def usable(self) -> bool:
        """False when the best plan is no better than random: no score can be formed."""
        return self.opt > self.random

    def as_dict(self) -> dict[str, Any]:
        return {
            "random": self.random,
            "opt": self.opt,
            "plans": list(self.plans),
            "settings": dataclasses.asdict(self.settings),
            **({} if self.plan is None else {"plan": [list(step) for step in self.plan]}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> References:
        plan = d.get("plan")
        return cls(
            float(d["random"]),
            float(d["opt"]),
            tuple(d["plans"]),
            ReferenceSettings(**d["settings"]),
            None if plan is None else tuple(tuple(float(a) for a in step) for step in plan),
        )


def shoot(
    task: Task,
    world: Any,
    kind: str,
    observations: Float[Array, "N T obs"],
    config: BPOConfig,
    starts: int,
    spread: float = 0.0,
) -> tuple[np.ndarray, MarkovPolicy]:
    """Final eval return of each of ``starts`` policies trained by BPO for ``config.steps`` updates,
    and the final policy of the start with the best one.

    ``spread > 0`` starts every policy but the first from randomly perturbed parameters (open-loop
    plans start at a = 0 for every seed otherwise): a multi-start optimiser.
    """
    bpo = BPO(task, world, kind, observations, config)
    state = bpo.init(range(starts))
    if spread:
        keys = jax.random.split(jax.random.key(1234), starts)

        def perturb(x):
            noise = jax.vmap(lambda k: jax.random.normal(k, x.shape[1:], x.dtype))(keys)
            mask = (jnp.arange(starts) > 0).astype(x.dtype).reshape((starts,) + (1,) * (x.ndim - 1))
            return x + spread * mask * noise

        state = BPOState(
            jax.tree_util.tree_map(perturb, state.params), state.opt_state, state.key, state.step
        )
    last: dict[str, np.ndarray] = {}
    state, _ = run(bpo, state, on_chunk=lambda state, best, metrics: last.update(metrics))
    returns = np.asarray(last["eval/eval_return"], np.float64)
    best = int(np.argmax(returns))
    return returns, bpo.policy(jax.tree_util.tree_map(lambda x: x[best], bpo.params(state)))


def compute_references(task: Task, settings: ReferenceSettings | None = None) -> References:
    """R_random from ``random_episodes`` uniformly random episodes (key 0); R_opt as the best of
    ``shooting_starts`` open-loop plans optimised with Adam through the simulator (no entropy
    bonus, full gradient), each evaluated from the evaluation's start (reset key 0)."""
    settings = settings or ReferenceSettings()
    settings.check()
    episodes = collect(task, random_controller(task), settings.random_episodes, jax.random.key(0))
    random = float(np.asarray(episodes.rewards, np.float64).sum(axis=1).mean())
    config = BPOConfig(
        steps=settings.shooting_steps,
        lr=settings.shooting_lr,
        entropy=0.0,
        policy_input_grad="full",
        log_every=min(500, settings.shooting_steps),
    )
    # An episode from the evaluation's own start (true_return resets with key 0): the plans are
    # made for the start they are scored from (the same for every episode of a built-in task).
    at_eval_start = rollout(task, random_controller(task), jax.random.key(0)).observations[None]
    plans, best = shoot(
        task,
        SimulatorModel(task),
        "open-loop",
        at_eval_start,
        config,
        settings.shooting_starts,
        spread=settings.spread,
    )
    actions = np.asarray(rollout(task, best.controller(), jax.random.key(0)).actions, np.float64)
    return References(
        random,
        float(plans.max()),
        tuple(float(p) for p in plans),
        settings,
        tuple(tuple(float(a) for a in step) for step in actions),
    )


__all__ = ["ReferenceSettings", "References", "compute_references", "shoot"]
