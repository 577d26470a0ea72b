"""What values each task parameter accepts, checked once, before a task is built.

Every parameter of every task has a domain. A number must be finite; a physical constant is
positive (or non-negative where zero means "switched off"); a count is an integer; a vector has
the task's size and, for an initial state, lies within the state's bounds; a mode is one of its
names. A parameter given on the command line outside its domain is refused with one line that
names it, the value and what to pass instead, before any work is done.

A user's task declares its own domains as a class attribute (parameters it does not name get
:data:`FINITE`)::

    class MyTask(awmctl.Task):
        param_domains = {"gain": awmctl.tasks.POSITIVE, "n": awmctl.tasks.Domain(integer=True,
        low=1)}
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

from awmctl.errors import BadInputError
from awmctl.tasks.base import ParamValue


@dataclasses.dataclass(frozen=True)
class Domain:
    """The values one parameter accepts (all conditions must hold)."""

    #: a number (default), a vector of numbers (``size`` of them; None: any length), or a name
    kind: str = "number"  # "number" | "vector" | "name"
    low: float | None = None
    low_inclusive: bool = True
    high: float | None = None
    integer: bool = False
    size: int | None = None
    choices: tuple[str, ...] = ()
    #: per-component bounds of a vector (an initial state within the state bounds)
    bounds: tuple[tuple[float, float], ...] | None = None
    #: a further check of a user's own: returns what is wrong, or None
    check: Callable[[ParamValue], str | None] | None = None
    #: what the parameter is, for the error message
    meaning: str = ""

    def describe(self) -> str:
        if self.kind == "name":
            return "one of " + ", ".join(self.choices)
        what = (
            f"{self.size if self.size is not None else 'a list of'} comma-separated numbers"
            if self.kind == "vector"
            else ("an integer" if self.integer else "a number")
        )
        if self.low is not None and self.high is not None:
            return f"{what} in {'[' if self.low_inclusive else '('}{self.low:g}, {self.high:g}]"
        if self.low is not None:
            return f"{what} {'>=' if self.low_inclusive else '>'} {self.low:g}"
        if self.bounds is not None:
            return f"{what} within the state bounds {list(map(list, self.bounds))}"
        return f"finite {what}" if self.kind == "number" else what

    def problem(self, value: ParamValue) -> str | None:
        """What is wrong with ``value``, or None when it belongs to the domain."""
        if self.kind == "name":
            return None if str(value) in self.choices else f"must be {self.describe()}"
        numbers = value if isinstance(value, tuple) else (value,)
        if any(isinstance(v, str) for v in numbers):
            return f"must be {self.describe()}"
        if self.kind == "number" and isinstance(value, tuple):
            return f"must be one number, not {len(value)}"
        if self.kind == "vector" and self.size is not None and len(numbers) != self.size:
            return f"must be {self.size} comma-separated number(s), got {len(numbers)}"
        for v in numbers:
            if not math.isfinite(v):
                return "must be finite"
            if self.integer and v != int(v):
                return f"must be {self.describe()}"
            if self.low is not None and (
                v < self.low or (v == self.low and not self.low_inclusive)
            ):
                return f"must be {self.describe()}"
            if self.high is not None and v > self.high:
                return f"must be {self.describe()}"
        if self.bounds is not None:
            for v, (lo, hi) in zip(numbers, self.bounds):
                if not lo <= v <= hi:
                    return f"must lie within the state bounds {list(map(list, self.bounds))}"
        return None if self.check is None else self.check(value)


#: any finite number (the domain of a parameter that declares none)
FINITE = Domain()
#: a physical constant that must be strictly positive (a length, a mass, a duration, a step)
POSITIVE = Domain(low=0.0, low_inclusive=False)
#: a rate or cost where zero switches the effect off
NONNEGATIVE = Domain(low=0.0)


def vector(
    size: int,
    bounds: tuple[tuple[float, float], ...] | None = None,
    low: float | None = None,
    high: float | None = None,
) -> Domain:
    return Domain(kind="vector", size=size, bounds=bounds, low=low, high=high)


def names(*choices: str) -> Domain:
    return Domain(kind="name", choices=choices)


def check_params(task: str, params: dict[str, ParamValue], domains: dict[str, Domain]) -> None:
    """Raise :class:`BadInputError` (one line) for the first parameter outside its domain."""
    for name, value in params.items():
        domain = domains.get(
            name, FINITE if not isinstance(value, str) else Domain(kind="name", choices=(value,))
        )
        problem = domain.problem(value)
        if problem is not None:
            shown = (
                ",".join(f"{v:g}" for v in value)
                if isinstance(value, tuple)
                else (f"{value:g}" if isinstance(value, float) else str(value))
            )
            meaning = f" ({domain.meaning})" if domain.meaning else ""
            raise BadInputError(
                f"task parameter {name}={shown} for {task}{meaning} {problem}; "
                f"pass --task-param {name}=VALUE with {domain.describe()}"
            )


__all__ = ["FINITE", "NONNEGATIVE", "POSITIVE", "Domain", "check_params", "names", "vector"]
