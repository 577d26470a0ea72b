"""The paper's robustness variants of any task: distractor observations and process noise.

``--task-param distractors=N`` and ``--task-param noise=SIGMA`` work with every task, built-in or a
user's, because they wrap it rather than change it (the authors' semantics):

* **distractors**: N observation entries that carry no information, fresh N(0, 1) values at every
  step (the reset's included), *prepended* to the observation as the authors' wrapper does:
  ``obs = [xi (N), x, k]``. They are part of the wrapped task's state, so world models are asked
  to predict them (and cannot); the reward and the dynamics never read them.
* **noise**: process noise, not observation noise: after each step ``SIGMA * N(0, 1)`` is added to
  the state *before* the clip to its bounds (:meth:`Task.noisy_transition`). Resets stay
  deterministic.

Both random streams come from the key of each real step (:meth:`Task.random_step`), which comes
from the episode's key, so runs stay reproducible. :meth:`transition` (what the ``simulator``
world model and direct shooting use) is the *noise-free* dynamics, with the distractors at their
mean, 0: a planner through the simulator sees the expected dynamics.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from awmctl.errors import BadInputError
from awmctl.seeds import stream
from awmctl.tasks.base import ParamValue, Task

#: the parameters every task accepts, because this wrapper provides them
ROBUSTNESS_PARAMS = ("distractors", "noise")


class PerturbedTask(Task):
    """``inner`` with ``distractors`` uninformative observation entries and process ``noise``."""

    inner: Task
    distractors: int = eqx.field(static=True)
    noise: float = eqx.field(static=True)

    def __init__(self, inner: Task, distractors: int = 0, noise: float = 0.0):
        self.inner = inner
        self.distractors = int(distractors)
        self.noise = float(noise)

    # ------------------------------------------------------------------ sizes and description

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.inner.name

    @property
    def horizon(self) -> int:  # type: ignore[override]
        return self.inner.horizon

    @property
    def state_size(self) -> int:  # type: ignore[override]
        return self.distractors + self.inner.state_size

    @property
    def action_size(self) -> int:  # type: ignore[override]
        return self.inner.action_size

    @property
    def dt(self) -> float:  # type: ignore[override]
        return self.inner.dt

    @property
    def state_bounds(self) -> tuple[tuple[float, float], ...]:  # type: ignore[override]
        return ((-math.inf, math.inf),) * self.distractors + tuple(self.inner.state_bounds)

    @property
    def params(self) -> dict[str, ParamValue]:
        return {**self.inner.params, "distractors": self.distractors, "noise": self.noise}

    # ------------------------------------------------------------------------------ dynamics

    def initial_state(self, key: PRNGKeyArray) -> Float[Array, " state"]:
        x0 = self.inner.initial_state(key)
        return jnp.concatenate(
            [self._draw_distractors(stream(key, "task/distractors"), x0.dtype), x0]
        )

    def transition(
        self, state: Float[Array, " state"], action: Float[Array, " act"], k: Int[Array, ""]
    ) -> Float[Array, " state"]:
        x = state[self.distractors :]
        return jnp.concatenate(
            [jnp.zeros((self.distractors,), state.dtype), self.inner.transition(x, action, k)]
        )

    def reward(
        self,
        state: Float[Array, " state"],
        action: Float[Array, " act"],
        k: Int[Array, ""],
        next_state: Float[Array, " state"],
    ) -> Float[Array, ""]:
        return self.inner.reward(
            state[self.distractors :], action, k, next_state[self.distractors :]
        )

    def random_step(
        self,
        state: Float[Array, " state"],
        action: Float[Array, " act"],
        k: Int[Array, ""],
        key: PRNGKeyArray,
    ) -> tuple[Float[Array, " state"], Float[Array, ""]]:
        x = state[self.distractors :]
        noise_key, distractor_key = jax.random.split(key)
        if self.noise > 0:  # static: with SIGMA = 0 the step is the inner task's, bit for bit
            noise = self.noise * jax.random.normal(noise_key, x.shape, x.dtype)
            next_x = self.inner.noisy_transition(x, action, k, noise)
        else:
            next_x = self.inner.transition(x, action, k)
        reward = self.inner.reward(x, action, k, next_x)
        return jnp.concatenate([self._draw_distractors(distractor_key, x.dtype), next_x]), reward

    def _draw_distractors(self, key: PRNGKeyArray, dtype) -> Float[Array, " d"]:
        return jax.random.normal(key, (self.distractors,), dtype)


def split_robustness(
    params: dict[str, ParamValue],
) -> tuple[dict[str, ParamValue], dict[str, ParamValue] | None]:
    """``params`` without the robustness ones, and those (checked), or None when none was given."""
    given = {k: params[k] for k in ROBUSTNESS_PARAMS if k in params}
    rest = {k: v for k, v in params.items() if k not in ROBUSTNESS_PARAMS}
    if not given:
        return rest, None
    d = given.get("distractors", 0)
    if isinstance(d, str | tuple) or float(d) != int(d) or int(d) < 0:
        raise BadInputError(f"task parameter distractors must be a whole number >= 0, got {d!r}")
    sigma = given.get("noise", 0.0)
    if isinstance(sigma, str | tuple) or not math.isfinite(float(sigma)) or float(sigma) < 0:
        raise BadInputError(
            "task parameter noise must be a finite number >= 0 (the process noise's SIGMA), got "
            f"{sigma!r}"
        )
    return rest, {"distractors": int(d), "noise": float(sigma)}


__all__ = ["ROBUSTNESS_PARAMS", "PerturbedTask", "split_robustness"]
