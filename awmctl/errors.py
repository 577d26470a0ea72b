"""The project's own exceptions.

Library code raises these and never prints or exits; the CLI maps them onto exit codes
(``BadInputError`` -> 2, ``RunFailedError`` -> 1) and one-line ``Error: ...`` messages.
Every message names the problem *and* what to do about it.
"""

from __future__ import annotations


class AwmctlError(Exception):
    """Base class of every error awmctl raises on purpose."""

    exit_code: int = 1


class BadInputError(AwmctlError, ValueError):
    """The user asked for something that cannot be done: wrong name, size, kind of directory..."""

    exit_code = 2


class RunFailedError(AwmctlError, RuntimeError):
    """Something went wrong while running (non-finite numbers, a failed write, ...)."""

    exit_code = 1


class DivergedError(RunFailedError):
    """Training diverged: updates kept producing non-finite numbers (they were skipped, so the
    parameters and checkpoints stay finite)."""
