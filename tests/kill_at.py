"""Run the awmctl CLI and ``kill -9`` itself at a chosen point (a test helper for the kill
matrix in ``test_preemption.py``, never used by awmctl itself).

    python tests/kill_at.py POINT N awmctl-arguments...

POINT: ``compile`` (as the first chunk starts: JAX is about to compile), ``chunk`` (as chunk N
starts, mid-run), ``checkpoint`` (just after checkpoint N was handed to Orbax: its write is in
flight) or ``rename`` (just before the finished run is renamed into place).
"""

import os
import signal
import sys


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    point, n, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    from awmctl import store
    from awmctl.algorithms import base

    calls = {"n": 0}

    def nth() -> bool:
        calls["n"] += 1
        return calls["n"] >= n

    if point in ("compile", "chunk"):
        original_run = base.run

        def run(algorithm, state, best=None, on_chunk=None):
            cls = type(algorithm)
            original_chunk = cls.run_chunk

            def run_chunk(self, state):
                if point == "compile" or nth():
                    die()
                return original_chunk(self, state)

            cls.run_chunk = run_chunk
            return original_run(algorithm, state, best, on_chunk)

        from awmctl.cli import driver

        driver.run_to_end = run
    elif point == "checkpoint":
        original_save = store.ResumableRun.save

        def save(self, step, state):
            original_save(self, step, state)
            if nth():
                die()

        store.ResumableRun.save = save
    elif point == "rename":
        original_replace = os.replace

        def replace(src, dst):
            if str(src).endswith(".partial"):
                die()
            original_replace(src, dst)

        store.os.replace = replace  # the os module store uses: only its renames are watched
    else:
        raise SystemExit(f"unknown point {point}")
    from awmctl.cli import app

    sys.argv = ["awmctl", *argv]
    app()


if __name__ == "__main__":
    main()
