"""Test-wide settings: JAX's (``jax_settings.py``: strict promotion, two fake CPU devices), XLA's
(no backend optimisations, below), caches and checkpoints private to the session.

jaxtyping shape checks are switched on for the ``awmctl`` package through pytest's
``--jaxtyping-packages`` option (see ``pyproject.toml``).
"""

import os
import shutil
import tempfile

# The suite is compile-bound: most of its time is XLA compiling small programs that then run for
# milliseconds. Two options halve a compilation (a CLI test's 17.8 s of compiling became 8.8 s):
# no LLVM optimisations, and XLA:CPU's older loop emitters for fusions instead of its MLIR fusion
# emitters, whose pipeline is most of the rest. The programs compute the same operations; numbers
# move in the last bits (a multiply-add fused or not), which no test but the goldens can see: the
# goldens pin this build bit for bit, and the user's to the tolerance across machines
# (``test_goldens.py``). ``AWMCTL_TEST_OPTIMISED=1`` runs the whole suite with the user's flags. Set
# before JAX starts its backends, and only once: pytest-xdist's workers inherit
# the environment and import this file again.
FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false"
USER_XLA_FLAGS = "AWMCTL_TEST_USER_XLA_FLAGS"
if USER_XLA_FLAGS not in os.environ:
    os.environ[USER_XLA_FLAGS] = os.environ.get("XLA_FLAGS", "")
    if os.environ.get("AWMCTL_TEST_OPTIMISED", "") in ("", "0"):
        os.environ["XLA_FLAGS"] = f"{os.environ[USER_XLA_FLAGS]} {FAST_COMPILE}".strip()

import jax_settings  # noqa: F401

# A persistent compilation cache of this test session only (removed at the end): runs of the same
# program in different tests compile it once, and nothing is written outside the session. The
# suite is compile-bound, so pytest-xdist's workers share one cache: pytest imports this file
# before it starts them, and they inherit the directory through the environment (JAX writes a
# cache entry whole, so two processes may share one). The process that made it removes it.
_SHARED = "AWMCTL_TEST_COMPILATION_CACHE"
_OWNS_CACHE = not os.path.isdir(os.environ.get(_SHARED, ""))
if _OWNS_CACHE:
    os.environ[_SHARED] = tempfile.mkdtemp(prefix="awmctl-test-jax-cache-")
_CACHE = os.environ[_SHARED]
os.environ["AWMCTL_COMPILATION_CACHE"] = _CACHE
# Score references cached by this test process only (never the user's ~/.cache/awmctl).
_REFERENCES = tempfile.mkdtemp(prefix="awmctl-test-references-")
os.environ["AWMCTL_CACHE_DIR"] = _REFERENCES
# Checkpoint after every chunk (the default waits a minute between checkpoints), so that the
# resume tests can interrupt a tiny run between any two chunks.
os.environ["AWMCTL_CHECKPOINT_SECONDS"] = "0"
# Weights & Biases: only where a test asks for it (--wandb), never online, and nothing of the
# user's (~/.config/wandb, a WANDB_PROJECT that would turn it on for every run) read or written.
os.environ.pop("WANDB_PROJECT", None)
os.environ["WANDB_MODE"] = "offline"
os.environ["WANDB_SILENT"] = "true"
os.environ["WANDB_CONFIG_DIR"] = os.environ["WANDB_CACHE_DIR"] = os.environ["WANDB_DATA_DIR"] = (
    os.path.join(_REFERENCES, "wandb")
)


import pytest


@pytest.fixture
def interrupt_after(monkeypatch):
    """``interrupt_after(cls, "method", n)``: calls after the n-th raise KeyboardInterrupt (a
    Ctrl-C in the middle of a run); returns a function that undoes the patch."""

    def patch(cls, name: str, n: int):
        original = getattr(cls, name)
        calls = {"n": 0}

        def killed(self, *args, **kwargs):
            calls["n"] += 1
            if calls["n"] > n:
                raise KeyboardInterrupt
            return original(self, *args, **kwargs)

        monkeypatch.setattr(cls, name, killed)
        return lambda: monkeypatch.setattr(cls, name, original)

    return patch


def run(*args):
    """Invoke the ``awmctl`` CLI in-process (arguments are stringified), as a user would type it."""
    from typer.testing import CliRunner

    from awmctl.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def pytest_sessionfinish(session, exitstatus):
    if _OWNS_CACHE:
        shutil.rmtree(_CACHE, ignore_errors=True)
    shutil.rmtree(_REFERENCES, ignore_errors=True)


def pytest_collection_modifyitems(config, items):
    """The longest tests first, so that pytest-xdist does not leave one running alone at the end."""
    first = [item for item in items if item.get_closest_marker("long_running")]
    items[:] = first + [item for item in items if item not in first]
