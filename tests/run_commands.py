"""Run a chain of ``awmctl`` commands in this process, under the tests' JAX settings, and report
each one's exit code, error output and wall time as JSON.

``python tests/run_commands.py COMMANDS.json RESULTS.json``: COMMANDS.json holds a list of argv
lists, run in order; the chain stops at the first command that fails. The goldens run here, in a
process of their own that the suite starts first, so that their chain overlaps the other tests.
"""

import json
import sys
import time

import jax_settings  # noqa: F401  (before anything initialises JAX's backends)
from typer.testing import CliRunner

from awmctl.cli import app


def main(commands_file: str, results_file: str) -> None:
    results = []
    with open(commands_file) as f:
        commands = json.load(f)
    for argv in commands:
        start = time.perf_counter()
        result = CliRunner().invoke(app, argv)
        seconds = round(time.perf_counter() - start, 1)
        results.append(
            {
                "argv": argv,
                "exit_code": result.exit_code,
                "stderr": result.stderr,
                "seconds": seconds,
            }
        )
        if result.exit_code != 0:
            break
    with open(results_file, "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
