"""How long a piece of work took, and how much of it JAX spent compiling."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator

import jax

#: JAX's own duration events for tracing, lowering and compiling (or fetching from the
#: persistent compilation cache) a program.
COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)


@dataclasses.dataclass
class Clock:
    wall_s: float = 0.0
    compile_s: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {"wall_s": round(self.wall_s, 3), "compile_s": round(self.compile_s, 3)}


@contextlib.contextmanager
def clock() -> Iterator[Clock]:
    """Measure the wall time of the block and the seconds JAX spent compiling inside it."""
    result = Clock()

    def listen(event: str, duration: float, **_: object) -> None:
        if event in COMPILE_EVENTS:
            result.compile_s += duration

    jax.monitoring.register_event_duration_secs_listener(listen)
    start = time.perf_counter()
    try:
        yield result
    finally:
        result.wall_s = time.perf_counter() - start
        jax.monitoring.unregister_event_duration_listener(listen)


__all__ = ["COMPILE_EVENTS", "Clock", "clock"]
