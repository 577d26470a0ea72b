"""What machine a benchmark ran on, for its rows: the CPU's model name and core count, and the
accelerator JAX would use."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or what :mod:`platform` knows elsewhere."""
    try:
        line = next(
            l for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")
        )
        return line.split(":", 1)[1].strip()
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def describe() -> str:
    """One line: CPU model, cores and JAX's backend (``AMD EPYC 7B13, 2 cores, cpu``)."""
    import jax

    backend = jax.default_backend()
    device = "" if backend == "cpu" else f" {jax.devices()[0].device_kind}"
    return f"{cpu_model()}, {os.cpu_count()} cores, {backend}{device}"
