"""Test-wide JAX settings: fail loudly on silent promotion/broadcasting, fake two CPU devices.

The device count must be set before JAX initialises its backends, hence at import time here.
jaxtyping shape checks are switched on for the ``awmctl`` package through pytest's
``--jaxtyping-packages`` option (see ``pyproject.toml``).
"""

import os
import shutil
import tempfile

import jax

jax.config.update("jax_num_cpu_devices", 2)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")

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


import pytest  # noqa: E402


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
