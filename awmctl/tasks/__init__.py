"""Differentiable JAX tasks: the paper's Myriad problems, the double pendulum, the bounce block."""

from awmctl.tasks.base import ActFn, Episode, Task, open_loop_return, returns_of, rollout
from awmctl.tasks.registry import TaskInfo, make_task, parse_task_params, task_info, task_names, with_horizon

__all__ = [
    "ActFn",
    "Episode",
    "Task",
    "TaskInfo",
    "make_task",
    "open_loop_return",
    "parse_task_params",
    "returns_of",
    "rollout",
    "task_info",
    "task_names",
    "with_horizon",
]
