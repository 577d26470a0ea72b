"""Names -> tasks. The one place that knows every task, its default horizon and its variants."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping

from awmctl.errors import BadInputError
from awmctl.tasks.base import ParamValue, Task


@dataclasses.dataclass(frozen=True)
class TaskInfo:
    """A registry entry: how to build a task and what to say about it in ``awmctl tasks``."""

    name: str
    build: Callable[[int, dict[str, ParamValue]], Task]
    default_horizon: int
    title: str
    param_names: tuple[str, ...]  # names --task-param accepts
    in_paper: bool = True
    variant_of: str | None = None  # set for the spec's explicitly named fixes
    notes: str = ""


_REGISTRY: dict[str, TaskInfo] = {}


def register(info: TaskInfo) -> TaskInfo:
    if info.name in _REGISTRY:
        raise ValueError(f"task {info.name!r} registered twice")
    _REGISTRY[info.name] = info
    return info


def task_names() -> list[str]:
    _load()
    return list(_REGISTRY)


def task_info(name: str) -> TaskInfo:
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise BadInputError(
            f"unknown task {name!r}; choose one of: {', '.join(_REGISTRY)} (see `awmctl tasks`)"
        ) from None


def make_task(
    name: str, horizon: int | None = None, params: Mapping[str, ParamValue] | None = None
) -> Task:
    """Build a task by CLI name. ``horizon=None`` takes the task's default.

    Raises :class:`BadInputError` for an unknown name, a horizon below 1 or an unknown parameter.
    """
    info = task_info(name)
    horizon = info.default_horizon if horizon is None else horizon
    if int(horizon) != horizon or horizon < 1:
        raise BadInputError(f"horizon must be an integer >= 1, got {horizon!r}")
    params = dict(params or {})
    unknown = sorted(set(params) - set(info.param_names))
    if unknown:
        raise BadInputError(
            f"task {name!r} has no parameter {', '.join(map(repr, unknown))}; "
            f"it accepts: {', '.join(info.param_names)}"
        )
    try:
        return info.build(int(horizon), params)
    except (TypeError, ValueError) as err:
        if isinstance(err, BadInputError):
            raise
        raise BadInputError(f"bad parameter for task {name!r}: {err}") from None


def parse_task_params(items: list[str] | None) -> dict[str, ParamValue]:
    """Parse ``--task-param`` values like ``goal=0.3,-0.5``, ``T=10`` or ``terminal_on=final``.

    A comma-separated list of numbers becomes a tuple, one number a float, anything else stays
    a string. Several ``key=value`` pairs may also be joined with ``;``.
    """
    out: dict[str, ParamValue] = {}
    for item in items or []:
        for part in item.split(";"):
            if not part.strip():
                continue
            key, sep, raw = part.partition("=")
            if not sep or not key.strip() or not raw.strip():
                raise BadInputError(f"cannot parse task parameter {part!r}; write it as NAME=VALUE")
            out[key.strip()] = _parse_value(raw.strip())
    return out


def _parse_value(raw: str) -> ParamValue:
    pieces = [p.strip() for p in raw.split(",")]
    try:
        numbers = tuple(float(p) for p in pieces)
    except ValueError:
        return raw
    return numbers if len(numbers) > 1 or raw.endswith(",") else numbers[0]


def _load() -> None:
    # Importing the task modules registers them; done lazily so that importing this module
    # alone stays cheap and free of import cycles.
    if not _REGISTRY:
        from awmctl.tasks import catalogue  # noqa: F401


def with_horizon(task: Task, horizon: int) -> Task:
    """The same task over ``horizon`` steps of the *same* length ``dt``.

    Horizon sweeps (gradient norm against H) must keep the per-step dynamics a model was fitted
    on. Tasks whose ``dt`` is its own parameter (double pendulum, bounce) keep it when rebuilt;
    Myriad tasks derive ``dt = T / H``, so their duration ``T`` is rescaled to ``dt * horizon``.
    """
    if horizon == task.horizon:
        return task
    params = dict(task.params)
    rebuilt = make_task(task.name, horizon, params)
    if not math.isclose(rebuilt.dt, task.dt, rel_tol=1e-12) and "T" in params:
        rebuilt = make_task(task.name, horizon, {**params, "T": task.dt * horizon})
    if not math.isclose(rebuilt.dt, task.dt, rel_tol=1e-9):
        raise BadInputError(f"cannot rebuild {task.name} at H={horizon} with the same step dt={task.dt}")
    return rebuilt
