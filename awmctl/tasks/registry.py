"""Names -> tasks: the built-in tasks, tasks registered from Python, installed packages' tasks
(the ``awmctl.tasks`` entry-point group) and tasks given by import path.

``--task`` accepts any of:

* a built-in name (``cancer``, ``double-pendulum``, ...: always there, whatever else is registered);
* a name registered from Python with :func:`register`, or by an installed package under the
  entry-point group ``awmctl.tasks`` (``name = "my_pkg.tasks:MyTask"``);
* an import path ``my_pkg.my_module:MyTask`` (a module importable from the current directory or
  ``PYTHONPATH``) or a file ``path/to/tasks.py:MyTask``.

A user's task is a :class:`~awmctl.tasks.base.Task` subclass built as ``MyTask(horizon=H,
**params)``
(:meth:`TaskInfo.from_class`). Saved directories record where it came from (:func:`task_record`)
so that later commands rebuild it (:func:`task_from_record`).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from awmctl.errors import BadInputError
from awmctl.tasks import bounce, myriad, pendulum
from awmctl.tasks.base import ParamValue, Task
from awmctl.tasks.domains import check_params
from awmctl.tasks.info import TaskInfo
from awmctl.tasks.perturbed import ROBUSTNESS_PARAMS, PerturbedTask, split_robustness

ENTRY_POINT_GROUP = "awmctl.tasks"

_BUILTIN: dict[str, TaskInfo] = {
    info.name: info for info in (*myriad.TASKS, *pendulum.TASKS, *bounce.TASKS)
}
_BUILTIN_CLASSES = (myriad.MyriadTask, pendulum.DoublePendulumTask, bounce.BounceTask)
#: registered from Python with register()
_USER: dict[str, TaskInfo] = {}
#: entry points and import paths resolved so far (a cache: they are looked up by name on demand)
_RESOLVED: dict[str, TaskInfo] = {}
#: classes loaded from a file, which no import path names: class -> "path.py:Class"
_FILE_SOURCES: dict[type, str] = {}


def register(task: type[Task] | TaskInfo, name: str | None = None) -> TaskInfo:
    """Make a user's task available by ``name`` (a :class:`Task` subclass, or a full
    :class:`TaskInfo`). A built-in name cannot be taken."""
    info = (
        task
        if isinstance(task, TaskInfo)
        else TaskInfo.from_class(task, name or _class_path(task), _class_path(task))
    )
    if name is not None and info.name != name:
        info = TaskInfo(**{**info.__dict__, "name": name})
    if info.name in _BUILTIN:
        raise BadInputError(
            f"task name {info.name!r} is built in; register yours under another name"
        )
    _USER[info.name] = info
    return info


def unregister(name: str) -> None:
    """Forget a task registered with :func:`register` (built-in names cannot be removed)."""
    if name not in _USER:
        raise BadInputError(f"no task {name!r} was registered")
    del _USER[name]


def task_names(include_entry_points: bool = True) -> list[str]:
    """Every task by name: built-in first, then registered and installed ones."""
    names = list(_BUILTIN) + list(_USER)
    if include_entry_points:
        names += [ep.name for ep in _entry_points() if ep.name not in names]
    return names


def task_info(name: str) -> TaskInfo:
    """The registry entry of a task name, entry-point name or import path."""
    if name in _BUILTIN:
        return _BUILTIN[name]
    if name in _USER:
        return _USER[name]
    if name in _RESOLVED:
        return _RESOLVED[name]
    for ep in _entry_points():
        if ep.name == name:
            _RESOLVED[name] = _info_from_object(
                _load_entry_point(ep), name, f"entry point {name!r}"
            )
            return _RESOLVED[name]
    if ":" in name:
        _RESOLVED[name] = _info_from_object(_import_object(name), name, name)
        return _RESOLVED[name]
    raise BadInputError(
        f"unknown task {name!r}; choose one of: {', '.join(task_names())} (see `awmctl tasks`), "
        "or give your own as my_module:MyTask"
    )


def make_task(
    name: str, horizon: int | None = None, params: Mapping[str, ParamValue] | None = None
) -> Task:
    """Build a task by name (see the module docstring). ``horizon=None`` takes the task's default.

    Raises :class:`BadInputError` for an unknown name, a horizon below 1 or an unknown parameter.
    """
    info = task_info(name)
    if horizon is None:
        if info.default_horizon is None:
            raise BadInputError(f"task {name!r} has no default horizon; pass --horizon")
        horizon = info.default_horizon
    if int(horizon) != horizon or horizon < 1:
        raise BadInputError(f"horizon must be an integer >= 1, got {horizon!r}")
    params, robustness = split_robustness(dict(params or {}))
    unknown = sorted(set(params) - set(info.param_names))
    if unknown:
        accepted = ", ".join((*info.param_names, *ROBUSTNESS_PARAMS))
        raise BadInputError(
            f"task {name!r} has no parameter {', '.join(map(repr, unknown))}; it accepts: "
            f"{accepted}"
        )
    check_params(name, params, dict(info.domains))
    try:
        task = info.build(int(horizon), params)
    except (TypeError, ValueError) as err:
        if isinstance(err, BadInputError):
            raise
        raise BadInputError(f"bad parameter for task {name!r}: {err}") from None
    source = task_source(task)
    if source is not None:
        check_contract(task, source)
    # Given explicitly (even as 0), the robustness parameters are part of the task and its record.
    return task if robustness is None else PerturbedTask(task, **robustness)


def check_contract(task: Task, source: str) -> None:
    """Refuse, in one line naming the task's source and the method, a user's task whose methods
    do not return what its declared sizes say (``initial_state`` and ``transition`` a float
    vector of ``state_size``, ``reward`` a float scalar), or raise when traced. Run once when the
    task is made, abstractly (``jax.eval_shape``: nothing is computed or compiled), so that a
    vector reward is never summed into a wrong return and a shape error is never met deep in a
    training loop."""
    state = jax.ShapeDtypeStruct((task.state_size,), jnp.float32)
    action = jax.ShapeDtypeStruct((task.action_size,), jnp.float32)
    k = jax.ShapeDtypeStruct((), jnp.int32)
    calls = {
        "initial_state": (lambda: task.initial_state(jax.random.key(0)), (task.state_size,)),
        "transition": (
            lambda: jax.eval_shape(task.transition, state, action, k),
            (task.state_size,),
        ),
        "reward": (lambda: jax.eval_shape(task.reward, state, action, k, state), ()),
    }
    for method, (call, shape) in calls.items():
        try:
            out = jax.eval_shape(call) if method == "initial_state" else call()
        except Exception as err:  # noqa: BLE001  (a user's method: whatever it raises is its own)
            raise BadInputError(
                f"{source}: {method} failed when traced ({type(err).__name__}: "
                f"{str(err).splitlines()[0] if str(err) else 'no message'})"
            ) from None
        if not hasattr(out, "shape") or not hasattr(out, "dtype"):
            raise BadInputError(
                f"{source}: {method} returns {type(out).__name__}, not one JAX array; return "
                f"jnp arrays of shape {shape}"
            )
        if tuple(out.shape) != shape or not jnp.issubdtype(out.dtype, jnp.floating):
            what = "a float scalar" if shape == () else f"a float vector of {shape[0]} (state_size)"
            raise BadInputError(
                f"{source}: {method} returns {out.dtype}{list(out.shape)}, but it must return "
                f"{what}"
            )


def task_record(task: Task) -> dict[str, Any]:
    """What ``meta.json`` records about a task: its description, for a user's task where its
    class comes from, and the fingerprint of the code that defines it
    (:func:`source_fingerprint`)."""
    record = task.describe()
    source = task_source(task)
    if source is not None:
        record["source"] = source
    record["fingerprint"] = source_fingerprint(source)
    return record


def task_identity(record: dict[str, Any]) -> dict[str, Any]:
    """A task record (:func:`task_record`) with what does not decide the task's numbers left out:
    a user's task file whose content is fingerprinted is named by its file name, not by the
    directory it lies in, so the same file in another checkout (or given by another path) is the
    same task."""
    record = dict(record)
    source, fingerprint = record.get("source"), record.get("fingerprint", "")
    if source and fingerprint.startswith("sha256 "):
        module, _, name = source.rpartition(":")
        record["source"] = f"{Path(module).name}:{name}"
    return record


def source_fingerprint(source: str | None) -> str:
    """What a task's numbers depend on beyond its parameters: for a user's task the hash of its
    module's file (``sha256 <16 hex digits>``), for a built-in one (``source`` None) awmctl's
    version."""
    if source is None:
        return f"awmctl {importlib.metadata.version('awmctl')}"
    path = source_file(source)
    if path is None:
        return f"source {source}"
    return "sha256 " + hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def source_file(source: str) -> Path | None:
    """The file a user's task source (``file.py:Class`` or ``package.module:Class``) is read
    from, resolved; None if there is none."""
    module = source.rsplit(":", 1)[0]
    path = Path(module) if module.endswith(".py") else _module_file(module)
    return path.resolve() if path is not None and path.is_file() else None


def _module_file(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    return None if spec is None or spec.origin is None else Path(spec.origin)


def task_from_record(record: Mapping[str, Any]) -> Task:
    """Rebuild the exact task (name or source, horizon, every parameter) a record describes."""
    params = {
        k: tuple(v) if isinstance(v, list) else v for k, v in record.get("params", {}).items()
    }
    return make_task(record.get("source") or record["name"], record["horizon"], params)


def task_source(task: Task) -> str | None:
    """None for a built-in task; otherwise the import path (or file) of its class."""
    if isinstance(task, PerturbedTask):
        return task_source(task.inner)
    if isinstance(task, _BUILTIN_CLASSES) and task.name in _BUILTIN:
        return None
    return _FILE_SOURCES.get(type(task)) or _class_path(type(task))


def remake(task: Task, horizon: int) -> Task:
    """The same task with every parameter as it is, over ``horizon`` steps (for Myriad tasks,
    whose ``dt = T / H``, the same duration in steps of another length)."""
    return make_task(task_source(task) or task.name, horizon, task.params)


def with_horizon(task: Task, horizon: int) -> Task:
    """The same task over ``horizon`` steps of the *same* length ``dt``.

    Horizon sweeps (gradient norm against H) must keep the per-step dynamics a model was fitted
    on. Tasks whose ``dt`` is its own parameter (double pendulum, bounce) keep it when rebuilt;
    Myriad tasks derive ``dt = T / H``, so their duration ``T`` is rescaled to ``dt * horizon``.
    """
    if horizon == task.horizon:
        return task
    name = task_source(task) or task.name
    params = dict(task.params)
    rebuilt = make_task(name, horizon, params)
    if not math.isclose(rebuilt.dt, task.dt, rel_tol=1e-12) and "T" in params:
        rebuilt = make_task(name, horizon, {**params, "T": task.dt * horizon})
    if not math.isclose(rebuilt.dt, task.dt, rel_tol=1e-9):
        raise BadInputError(
            f"cannot rebuild {task.name} at H={horizon} with the same step dt={task.dt}"
        )
    return rebuilt


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


# ------------------------------------------------------------------------------ internals


def _parse_value(raw: str) -> ParamValue:
    pieces = [p.strip() for p in raw.split(",")]
    try:
        numbers = tuple(float(p) for p in pieces)
    except ValueError:
        return raw
    return numbers if len(numbers) > 1 or raw.endswith(",") else numbers[0]


def _class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _info_from_object(obj: Any, name: str, where: str) -> TaskInfo:
    if isinstance(obj, TaskInfo):
        return obj if obj.name == name else TaskInfo(**{**obj.__dict__, "name": name})
    return TaskInfo.from_class(
        obj, name, _FILE_SOURCES.get(obj) or (_class_path(obj) if isinstance(obj, type) else where)
    )


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def _load_entry_point(ep: importlib.metadata.EntryPoint) -> Any:
    try:
        return ep.load()
    except Exception as err:  # noqa: BLE001  (a broken installed package: say which, in one line)
        raise BadInputError(
            f"task entry point {ep.name!r} ({ep.value}) does not load: {type(err).__name__}: {err}"
        ) from None


def _import_object(source: str) -> Any:
    """``module.path:Name`` or ``path/to/file.py:Name`` -> the object."""
    target, _, attribute = source.rpartition(":")
    if not target or not attribute:
        raise BadInputError(
            f"cannot read task {source!r}; write my_module:MyTask or path/to/file.py:MyTask"
        )
    if target.endswith(".py"):
        module = _import_file(Path(target), source)
    else:
        # A console script does not put the current directory on sys.path; a user's module
        # next to their data is the common case, so look there too (as uvicorn and others do).
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))
        try:
            module = importlib.import_module(target)
        except ImportError as err:
            raise BadInputError(
                f"cannot import {target!r} for task {source!r} ({err}); run from its directory or "
                "add it to PYTHONPATH"
            ) from None
    obj: Any = module
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise BadInputError(f"{target} has no {attribute!r} (task {source!r})") from None
    return obj


def _import_file(path: Path, source: str):
    path = path.expanduser().absolute()
    if not path.is_file():
        raise BadInputError(f"task file {path} does not exist (task {source!r})")
    module_name = f"awmctl_user_tasks.{path.stem}_{abs(hash(str(path))):x}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise BadInputError(f"cannot load {path} as a Python module (task {source!r})")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # noqa: BLE001  (whatever a user's file raises: one line naming it)
        del sys.modules[module_name]
        raise BadInputError(f"{path} fails to import: {type(err).__name__}: {err}") from None
    for value in vars(module).values():
        if isinstance(value, type) and value.__module__ == module_name:
            _FILE_SOURCES[value] = f"{path}:{value.__qualname__}"
    return module


__all__ = [
    "ENTRY_POINT_GROUP",
    "TaskInfo",
    "make_task",
    "parse_task_params",
    "register",
    "remake",
    "source_file",
    "source_fingerprint",
    "task_from_record",
    "task_identity",
    "task_info",
    "task_names",
    "task_record",
    "task_source",
    "unregister",
    "with_horizon",
]
