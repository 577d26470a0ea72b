"""The world-model zoo: every family behind one interface (see :mod:`awmctl.models.base`)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from awmctl.errors import BadInputError
from awmctl.models.base import Normalizer, WorldModel, imagine
from awmctl.models.markov import MarkovModel
from awmctl.models.sequence import SequenceWorldModel
from awmctl.models.simulator import SimulatorModel
from awmctl.tasks import Task

#: name -> one-line description (for --help and error messages)
MODELS: dict[str, str] = {
    "markov-mlp": "Markovian one-step model s' = s + f(s, a), MLP (64, 64) swish",
    "awm-transformer": "actions world model, causal transformer (2 layers, 3 heads, width 48)",
    "awm-lstm": "actions world model, LSTM (width 48)",
    "awm-gru": "actions world model, GRU (width 48)",
    "awm-rnn": "actions world model, tanh RNN (width 48)",
    "hwm-transformer": "history world model, causal transformer, teacher-forced",
    "hwm-lstm": "history world model, LSTM, teacher-forced",
    "simulator": "the task's own differentiable dynamics (nothing to fit)",
}
TRAINABLE = tuple(n for n in MODELS if n != "simulator")


def check_model_name(name: str) -> str:
    if name not in MODELS:
        raise BadInputError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    return name


def build_model(
    name: str,
    state_size: int,
    action_size: int,
    horizon: int,
    hyper: dict[str, Any] | None = None,
    *,
    key: PRNGKeyArray,
    task: Task | None = None,
) -> WorldModel:
    """A freshly initialised model (identity normalisation) for episodes of ``horizon`` steps.

    ``hyper`` overrides the paper's sizes (``width``, ``layers``, ``heads``, ``mlp_width``,
    ``dropout``, ``decoder_width`` for sequence models; ``width``, ``depth`` for markov-mlp).
    """
    check_model_name(name)
    hyper = dict(hyper or {})
    try:
        if name == "simulator":
            if task is None:
                raise BadInputError("the simulator model needs a task (pass --task)")
            return SimulatorModel(task)
        if name == "markov-mlp":
            return MarkovModel(state_size, action_size, horizon, **hyper, key=key)
        family, backbone = name.split("-", 1)
        return SequenceWorldModel(family, backbone, state_size, action_size, horizon, **hyper, key=key)  # type: ignore[arg-type]
    except TypeError as err:
        raise BadInputError(f"bad size option for {name}: {err}") from None


def fit_normalizers(
    model: WorldModel, observations: Float[Array, "N T obs"] | np.ndarray
) -> WorldModel:
    """Set the model's normalisation statistics from training observations (raw units)."""
    states = jnp.asarray(observations)[..., :-1]
    if isinstance(model, SequenceWorldModel):
        return _replace(model, norm=Normalizer.fit(states))
    if isinstance(model, MarkovModel):
        deltas = states[:, 1:] - states[:, :-1]
        scale = jnp.maximum(jnp.std(deltas.reshape(-1, deltas.shape[-1]), axis=0), 1e-6)
        return _replace(model, norm=Normalizer.fit(states), delta_scale=scale)
    return model


def state_scale(model: WorldModel, observations: np.ndarray | None = None) -> Float[Array, " state"]:
    """Per-dimension scale used for the normalised-state loss (the model's own statistics)."""
    norm = getattr(model, "norm", None)
    if isinstance(norm, Normalizer):
        return norm.std
    if observations is not None:
        return Normalizer.fit(jnp.asarray(observations)[..., :-1]).std
    return jnp.ones((model.state_size,))


def _replace(model: WorldModel, **fields: Any) -> WorldModel:
    import equinox as eqx

    names = tuple(fields)
    return eqx.tree_at(lambda m: tuple(getattr(m, n) for n in names), model, tuple(fields.values()))


__all__ = [
    "MODELS",
    "TRAINABLE",
    "MarkovModel",
    "Normalizer",
    "SequenceWorldModel",
    "SimulatorModel",
    "WorldModel",
    "build_model",
    "check_model_name",
    "fit_normalizers",
    "imagine",
    "state_scale",
]
