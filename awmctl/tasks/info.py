"""A registry entry: how to build a task and what to say about it in ``awmctl tasks``.

Built-in tasks are described by hand (their variants fix some parameters); a user's task is
described from its class alone (:meth:`TaskInfo.from_class`): the parameters it accepts and its
default horizon are read from its constructor's signature.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping

from awmctl.errors import BadInputError
from awmctl.tasks.base import ParamValue, Task
from awmctl.tasks.domains import Domain


@dataclasses.dataclass(frozen=True)
class TaskInfo:
    name: str
    build: Callable[[int, dict[str, ParamValue]], Task]
    default_horizon: int | None  # None: the user must pass --horizon
    title: str
    param_names: tuple[str, ...]  # names --task-param accepts
    in_paper: bool = True
    variant_of: str | None = None  # set for the spec's explicitly named fixes
    notes: str = ""
    #: where a user's task comes from ("module:Class", or a file path "path.py:Class"); None for
    #: the built-in ones. Saved directories record it so that later commands rebuild the task.
    source: str | None = None
    #: each parameter's domain (:mod:`awmctl.tasks.domains`); a parameter not named is any
    #: finite number
    domains: Mapping[str, Domain] = dataclasses.field(default_factory=dict)
    #: set for a task that is degenerate or nearly flat as the paper runs it: results tables show
    #: it beside the task's numbers instead of ranking methods on it
    flag: str = ""

    @classmethod
    def from_class(cls, task_class: object, name: str, source: str) -> TaskInfo:
        """Describe a user's :class:`Task` subclass, built as
        ``task_class(horizon=H, **params)``."""
        if not (isinstance(task_class, type) and issubclass(task_class, Task)):
            raise BadInputError(f"{source} is {task_class!r}, not a subclass of awmctl.Task")
        if inspect.isabstract(task_class):
            missing = (
                ", ".join(sorted(getattr(task_class, "__abstractmethods__", ())))
                or "abstract members"
            )
            raise BadInputError(f"{source} is abstract (it does not implement {missing})")
        signature = inspect.signature(task_class)
        if "horizon" not in signature.parameters:
            raise BadInputError(f"{source} must accept a `horizon` argument (the episode length H)")
        default = signature.parameters["horizon"].default
        params = tuple(
            p.name
            for p in signature.parameters.values()
            if p.name not in ("horizon", "name")
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        )

        def build(horizon: int, values: dict[str, ParamValue]) -> Task:
            return task_class(horizon=horizon, **values)

        doc = inspect.getdoc(task_class) or ""
        title = doc.splitlines()[0] if doc else task_class.__name__
        return cls(
            name=name,
            build=build,
            default_horizon=None if default is inspect.Parameter.empty else int(default),
            title=title,
            param_names=params,
            in_paper=False,
            notes=f"user task from {source}",
            source=source,
            domains=dict(getattr(task_class, "param_domains", None) or {}),
        )


__all__ = ["TaskInfo"]
