"""The table of world models: one :class:`ModelSpec` per name.

A spec says which class builds the model (and with which backbone), its family, the paper's
sizes (the hyper-parameters a user may override), and how BPO treats it by default: whether the
policy's input is gradient-stopped (the direct path of an AWM). Whether a model offers the
parallel direct path and whether it can be fitted are properties of its class. Adding a world
model is one class (a file under ``awmctl/models/``) plus one row here.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any, Literal

from jaxtyping import PRNGKeyArray

from awmctl.backbones import BACKBONE_CLASSES
from awmctl.errors import BadInputError
from awmctl.models.base import AbstractWorldModel
from awmctl.models.ensemble import build_ensemble, check_ensemble_size
from awmctl.models.markov import MarkovModel
from awmctl.models.sequence import BACKBONE_SIZES, ActionsWorldModel, HistoryWorldModel
from awmctl.models.simulator import SimulatorModel
from awmctl.tasks import Task

PolicyInputGrad = Literal["stop", "full"]
#: the name of the true simulator behind the model interface (``--model simulator``)
SIMULATOR = "simulator"
#: (state_size, action_size, horizon, task, key, **hyper) -> model
Factory = Callable[..., AbstractWorldModel]


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    model_class: type[AbstractWorldModel]
    family: Literal["markov", "awm", "hwm", "simulator"]
    description: str
    factory: Factory
    #: the paper's sizes: every hyper-parameter the model takes, with its default
    hyper: Mapping[str, Any]
    #: BPO's default for the policy's input: "stop" leaves only the direct path through actions
    policy_input_grad: PolicyInputGrad
    #: the sequence backbone ("transformer", "lstm", ...); None for one-step models
    backbone: str | None = None

    @property
    def trainable(self) -> bool:
        return self.model_class.trainable

    @property
    def is_simulator(self) -> bool:
        """The task's own dynamics behind the model interface (nothing to fit)."""
        return self.family == "simulator"

    @property
    def has_kv_cache(self) -> bool:
        """Closed-loop imagination keeps every token's keys and values (a transformer: memory
        grows with the horizon) rather than a fixed-size recurrent state."""
        return self.backbone is not None and BACKBONE_CLASSES[self.backbone].kv_cache

    @property
    def direct_path(self) -> bool:
        """A gradient-stopped policy update may use one parallel forward pass (AWMs)."""
        return self.model_class.direct_path

    def build(
        self,
        state_size: int,
        action_size: int,
        horizon: int,
        hyper: Mapping[str, Any] | None = None,
        *,
        key: PRNGKeyArray,
        task: Task | None = None,
        ensemble: int = 1,
    ) -> AbstractWorldModel:
        """A freshly initialised model (identity normalisation) for episodes of ``horizon``
        steps; with ``ensemble`` K > 1, an :class:`~awmctl.models.Ensemble` of K such models
        (member 0 the one ``key`` builds alone)."""
        hyper = dict(hyper or {})
        self.check_sizes(hyper)
        check_ensemble_size(ensemble, self.name)
        one = lambda k: self.factory(state_size, action_size, horizon, task, k, **hyper)
        return one(key) if ensemble == 1 else build_ensemble(one, ensemble, key)

    def check_sizes(self, hyper: Mapping[str, Any]) -> None:
        """Refuse (:class:`BadInputError`, one line naming the option) sizes this model cannot be
        built with, before anything is built or written."""
        unknown = sorted(set(hyper) - set(self.hyper))
        if unknown:
            takes = ", ".join(self.hyper) or "no size options"
            raise BadInputError(
                f"{self.name} has no size option {', '.join(unknown)}; it takes: {takes}"
            )
        sizes = {**self.hyper, **hyper}
        for name, value in sizes.items():
            option = "--" + name.replace("_", "-")
            if name == "dropout":
                if not 0.0 <= value < 1.0:  # also refuses nan
                    raise BadInputError(
                        f"{option} {value} is not a dropout rate: give one with 0 <= rate < 1"
                    )
            elif isinstance(value, int) and value < 1:
                raise BadInputError(f"{option} {value} must be at least 1")
        if "heads" in sizes and sizes["width"] % sizes["heads"]:
            raise BadInputError(
                f"--width {sizes['width']} is not divisible by --heads {sizes['heads']}: each head "
                "takes an equal share of the width (e.g. --heads "
                f"{_divisor_near(sizes['width'], sizes['heads'])})"
            )


def _divisor_near(width: int, heads: int) -> int:
    """The divisor of ``width`` nearest ``heads`` (a suggestion for a width the heads do not
    divide)."""
    return min(
        (d for d in range(1, width + 1) if width % d == 0), key=lambda d: (abs(d - heads), d)
    )


def _markov(
    state_size: int,
    action_size: int,
    horizon: int,
    task: Task | None,
    key: PRNGKeyArray,
    **hyper: Any,
):
    return MarkovModel(state_size, action_size, horizon, key=key, **hyper)


def _simulator(
    state_size: int, action_size: int, horizon: int, task: Task | None, key: PRNGKeyArray
):
    if task is None:
        raise BadInputError("the simulator model needs a task (pass --task)")
    return SimulatorModel(task)


def _sequence(
    cls: type,
    backbone: str,
    state_size: int,
    action_size: int,
    horizon: int,
    task: Task | None,
    key: PRNGKeyArray,
    **hyper: Any,
):
    return cls(backbone, state_size, action_size, horizon, key=key, **hyper)


def _sequence_spec(
    cls: type, family: Literal["awm", "hwm"], backbone: str, description: str
) -> ModelSpec:
    return ModelSpec(
        name=f"{family}-{backbone}",
        model_class=cls,
        family=family,
        description=description,
        factory=functools.partial(_sequence, cls, backbone),
        hyper=BACKBONE_SIZES[backbone],
        # With the direct path the policy's input is gradient-stopped by default (the paper's AWM).
        policy_input_grad="stop" if cls.direct_path else "full",
        backbone=backbone,
    )


MODEL_SPECS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "markov-mlp",
            MarkovModel,
            "markov",
            "Markovian one-step model s' = s + f(s, a), MLP (64, 64) swish",
            _markov,
            {"width": 64, "depth": 2},
            "full",
        ),
        _sequence_spec(
            ActionsWorldModel,
            "awm",
            "transformer",
            "actions world model, causal transformer (2 layers, 3 heads, width 48)",
        ),
        _sequence_spec(ActionsWorldModel, "awm", "lstm", "actions world model, LSTM (width 48)"),
        _sequence_spec(ActionsWorldModel, "awm", "gru", "actions world model, GRU (width 48)"),
        _sequence_spec(ActionsWorldModel, "awm", "rnn", "actions world model, tanh RNN (width 48)"),
        _sequence_spec(
            ActionsWorldModel,
            "awm",
            "ssm",
            "actions world model, diagonal linear recurrence (LRU state-space model, 2 layers)",
        ),
        _sequence_spec(
            HistoryWorldModel,
            "hwm",
            "transformer",
            "history world model, causal transformer, teacher-forced",
        ),
        _sequence_spec(
            HistoryWorldModel, "hwm", "lstm", "history world model, LSTM, teacher-forced"
        ),
        _sequence_spec(
            HistoryWorldModel,
            "hwm",
            "ssm",
            "history world model, diagonal linear recurrence (LRU), teacher-forced",
        ),
        ModelSpec(
            SIMULATOR,
            SimulatorModel,
            "simulator",
            "the task's own differentiable dynamics (nothing to fit)",
            _simulator,
            {},
            "full",
        ),
    )
}
TRAINABLE: tuple[str, ...] = tuple(name for name, spec in MODEL_SPECS.items() if spec.trainable)


def model_spec(name: str) -> ModelSpec:
    """The spec of a model name; :class:`BadInputError` naming the choices otherwise."""
    try:
        return MODEL_SPECS[name]
    except KeyError:
        raise BadInputError(
            f"unknown model {name!r}; choose one of: {', '.join(MODEL_SPECS)}"
        ) from None


def build_model(
    name: str,
    state_size: int,
    action_size: int,
    horizon: int,
    hyper: Mapping[str, Any] | None = None,
    *,
    key: PRNGKeyArray,
    task: Task | None = None,
    ensemble: int = 1,
) -> AbstractWorldModel:
    """A freshly initialised model by name (see :meth:`ModelSpec.build`)."""
    return model_spec(name).build(
        state_size, action_size, horizon, hyper, key=key, task=task, ensemble=ensemble
    )


__all__ = [
    "MODEL_SPECS",
    "SIMULATOR",
    "TRAINABLE",
    "ModelSpec",
    "PolicyInputGrad",
    "build_model",
    "model_spec",
]
