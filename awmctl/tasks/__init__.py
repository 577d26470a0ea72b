"""Differentiable JAX tasks: the paper's Myriad problems, the double pendulum, the bounce block,
and users' own tasks (see :mod:`awmctl.tasks.registry`)."""

from awmctl.tasks.base import (
    ActFn,
    Episode,
    ParamValue,
    Task,
    observation,
    open_loop_return,
    reset_key,
    returns_of,
    rollout,
    step_index,
)
from awmctl.tasks.info import TaskInfo
from awmctl.tasks.registry import (
    ENTRY_POINT_GROUP,
    make_task,
    parse_task_params,
    register,
    remake,
    task_from_record,
    task_info,
    task_names,
    task_record,
    task_source,
    with_horizon,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "ActFn",
    "Episode",
    "ParamValue",
    "Task",
    "TaskInfo",
    "make_task",
    "observation",
    "open_loop_return",
    "parse_task_params",
    "register",
    "remake",
    "reset_key",
    "returns_of",
    "rollout",
    "step_index",
    "task_from_record",
    "task_info",
    "task_names",
    "task_record",
    "task_source",
    "with_horizon",
]
