"""The docs' commands cannot drift from the command line.

Every ``awmctl ...`` line in a fenced block of README.md and docs/*.md names a command that
exists and options that command takes (synopsis lines such as ``[--steps 2000]`` included),
checked against the CLI's own parser; this runs in the default suite and costs nothing. The
README's "Using it" block also runs as a whole, in order, at small sizes (``test
_the_readme_sequence_runs``, marked slow: ``make test-all``), each command changed only by
:func:`small`, the documented substitution.
"""

import re
import shlex
from pathlib import Path

import pytest
import typer
from conftest import run

from awmctl.cli import app

ROOT = Path(__file__).parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def fenced_commands(path: Path) -> list[str]:
    """The ``awmctl`` lines of a Markdown file's fenced blocks (continuations joined, comments
    dropped)."""
    found = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", path.read_text(), re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].strip()
            if line.startswith("awmctl "):
                found.append(line)
    return found


def test_every_documented_command_and_option_exists():
    group = typer.main.get_command(app)
    checked = 0
    for path in DOCS:
        for line in fenced_commands(path):
            words = shlex.split(line)[1:]
            where = f"{path.relative_to(ROOT)}: {line}"
            command = group.get_command(None, words[0])  # type: ignore[arg-type]
            assert command is not None, f"no command {words[0]!r} in {where}"
            known = {o for p in command.params for o in getattr(p, "opts", ())}
            known |= {o for p in command.params for o in getattr(p, "secondary_opts", ())}
            flags = re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", " ".join(words[1:]))
            unknown = sorted(set(flags) - known)
            assert not unknown, f"{unknown} not options of `awmctl {words[0]}` in {where}"
            if "[" not in line and "|" not in line:  # a real command line, not a synopsis
                command.make_context(words[0], words[1:], resilient_parsing=True)
            checked += 1
    assert checked >= 25  # the README's session, usage.md's synopses, cluster.md, tasks.md


#: The documented substitution that makes the README's commands small: shorter episodes and
#: horizons, fewer episodes, seeds and steps. Nothing else changes.
SMALL = [
    (r"--horizons 10,20,50,100", "--horizons 2,4,8"),
    (r"--horizon 100", "--horizon 8"),
    (r"--context 100", "--context 10"),  # the double pendulum's episodes are 10 steps
    (r"--episodes 512", "--episodes 32"),
    (r"-n 256", "-n 32"),
    (r"--seeds \d+", "--seeds 2"),
]


def small(line: str) -> list[str]:
    """A README command at the sizes of a test."""
    for pattern, replacement in SMALL:
        line = re.sub(pattern, replacement, line)
    words = shlex.split(line)[1:]
    command = words[0]
    if command == "fit-model":
        words += ["--steps", "20", "--log-every", "10"]
    elif command == "optimize-policy" and ("--online" in words or "--agent" in words):
        words += ["--env-steps", "64", "--warmup-steps", "32"]
    elif command == "optimize-policy":
        words += ["--steps", "20", "--log-every", "10"]
    elif command == "landscape":
        words += ["--points", "11"]
    elif command == "grad-norm":
        words += ["--samples", "4"]
    return words


def readme_session() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("## Using it", 1)[1]
    return fenced_commands_in(block)


def fenced_commands_in(text: str) -> list[str]:
    first = re.search(r"```[a-z]*\n(.*?)```", text, re.DOTALL)
    assert first is not None
    return [
        line.split(" #", 1)[0].strip()
        for line in first.group(1).splitlines()
        if line.strip().startswith("awmctl ")
    ]


@pytest.mark.slow  # about ten commands that train, at small sizes: several minutes on 2 cores
def test_the_readme_sequence_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the README writes under runs/
    commands = readme_session()
    assert len(commands) >= 10
    for line in commands:
        result = run(*small(line))
        assert result.exit_code == 0, f"{line}\n{result.stderr}"
