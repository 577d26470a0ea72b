"""The models an analysis command compares: ``--model DIR`` (repeatable) or ``simulator``.

All of them must describe the same task with the same step length; the simulator is rebuilt
for whatever horizon the analysis asks for.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from jaxtyping import Array, Float

from awmctl.analysis import initial_observation
from awmctl.artifacts import load_model
from awmctl.errors import BadInputError
from awmctl.models import (
    SIMULATOR,
    AbstractWorldModel,
    SimulatorModel,
    check_context,
    members_of,
)
from awmctl.tasks import ParamValue, Task, make_task, with_horizon


@dataclasses.dataclass(frozen=True)
class Subject:
    label: str  # legend name: the model's name, or the directory when names repeat
    model: AbstractWorldModel | None  # None for the simulator (rebuilt per horizon)
    record: dict[str, Any]  # what meta.json records about it

    @classmethod
    def simulator(cls) -> Subject:
        """The true simulator (the reference every model is compared with)."""
        return cls(SIMULATOR, None, {"name": SIMULATOR})

    def at(self, task: Task) -> AbstractWorldModel:
        """This subject as a world model of ``task`` (a horizon of the shared task)."""
        return SimulatorModel(task) if self.model is None else self.model


def load_subjects(
    specs: list[str], task_name: str | None, horizon: int | None, params: dict[str, ParamValue]
) -> tuple[Task, list[Subject], Float[Array, " obs"]]:
    """Load every ``--model``, the task they share (at ``horizon`` if given), and the first
    observation to imagine from.

    That observation is the one of the task the models were *fitted* on, whatever the horizon
    asked for: the double pendulum's reset placeholder depends on the horizon, and a model must
    not be asked about a first state it never saw (the simulator ignores it: step 0 sets it).
    """
    if not specs:
        raise BadInputError("give at least one --model (a fitted model directory, or simulator)")
    loaded: list[tuple[str, AbstractWorldModel | None, dict[str, Any], Task | None]] = []
    for spec in specs:
        if spec == SIMULATOR:
            loaded.append((SIMULATOR, None, {"name": SIMULATOR}, None))
            continue
        model, task, meta = load_model(spec)
        # an ensemble is named with its members, so that it and one model of the kind differ
        name = model.name if members_of(model) == 1 else f"{model.name} x{members_of(model)}"
        loaded.append((name, model, {"path": str(Path(spec).absolute()), **meta["model"]}, task))
    tasks = [t for *_, t in loaded if t is not None]
    if tasks:
        base = tasks[0]
        for _, _, record, t in loaded:
            if t is not None and (
                t.name != base.name
                or t.obs_size != base.obs_size
                or not math.isclose(t.dt, base.dt)
            ):
                raise BadInputError(
                    f"{record['path']} was fitted on {t.name} (dt={t.dt:g}), but "
                    f"{loaded[0][2].get('path', 'the first model')} on {base.name} "
                    f"(dt={base.dt:g}); compare models of one task"
                )
        if task_name is not None and task_name != base.name:
            raise BadInputError(
                f"the models were fitted on {base.name}, not {task_name}; drop --task or pass "
                f"models of {task_name}"
            )
        if params:
            raise BadInputError(
                "--task-param applies only when every --model is simulator; fitted models carry "
                "their task"
            )
        obs0 = initial_observation(base)
        if horizon is not None:
            base = with_horizon(base, horizon)
    else:
        if task_name is None:
            raise BadInputError(
                "with only --model simulator, say which task: --task NAME (and optionally "
                "--horizon)"
            )
        base = make_task(task_name, horizon, params)
        obs0 = initial_observation(base)
    names = [name for name, *_ in loaded]
    subjects = []
    for spec, (name, model, record, _) in zip(specs, loaded):
        label = name if names.count(name) == 1 else f"{name} ({Path(spec).name})"
        subjects.append(Subject(label, model, record))
    if len({s.label for s in subjects}) != len(subjects):
        raise BadInputError("the same --model is given twice")
    return base, subjects, obs0


def check_contexts(subjects: list[Subject], horizon: int) -> None:
    """Refuse, in one line, a horizon longer than a sequence model's context."""
    for s in subjects:
        if s.model is not None:
            check_context(s.model, horizon, f"{s.record.get('path', s.label)} ({s.label})")
