"""Progress in a batch job's log: plain lines when stderr is not a terminal."""

import os
import re
import subprocess
import sys

import pytest

from awmctl.cli.progress import ProgressLines, clock_text, progress_seconds
from awmctl.errors import BadInputError

LINE = re.compile(
    r"^\[awmctl\] (?P<what>.+): (?P<done>\d+)/(?P<total>\d+) \(\d+%\) (?P<rate>[\d.e+]+)/s "
    r"elapsed \d+:\d\d:\d\d eta (\d+:\d\d:\d\d|\?)"
)


def test_lines_come_at_most_once_per_interval_and_at_the_end_with_rate_and_eta():
    now = {"t": 100.0}
    out: list[str] = []
    # a resumed run starting at step 20: its rate counts only the steps it made
    lines = ProgressLines(
        "fit mlp on cancer", total=100, every=30.0, write=out.append, start=20, now=lambda: now["t"]
    )
    lines.update(20)
    for t, step in ((110.0, 30), (125.0, 40), (131.0, 50), (140.0, 60), (161.0, 70), (170.0, 100)):
        now["t"] = t
        lines.update(step, "loss 0.25")
    assert len(out) == 3, out  # 31 s (the first due), 61 s (the next), the last step (always)
    assert (
        out[0]
        == "[awmctl] fit mlp on cancer: 50/100 (50%) 0.968/s elapsed 0:00:31 eta 0:00:52 loss 0.25"
    )
    assert (
        out[2].startswith("[awmctl] fit mlp on cancer: 100/100 (100%)") and "eta 0:00:00" in out[2]
    )
    assert all(LINE.match(line) for line in out)


def test_clock_text():
    assert clock_text(0.0) == "0:00:00" and clock_text(3725.4) == "1:02:05"


def test_the_interval_is_read_from_the_environment_and_checked(monkeypatch):
    monkeypatch.delenv("AWMCTL_PROGRESS_SECONDS", raising=False)
    assert progress_seconds() == 30.0
    monkeypatch.setenv("AWMCTL_PROGRESS_SECONDS", "2.5")
    assert progress_seconds() == 2.5
    for bad in ("soon", "-1", "nan"):
        monkeypatch.setenv("AWMCTL_PROGRESS_SECONDS", bad)
        with pytest.raises(BadInputError, match="AWMCTL_PROGRESS_SECONDS"):
            progress_seconds()


def test_a_command_with_stderr_to_a_file_prints_progress_lines(tmp_path):
    """A run longer than the interval, its stderr a file (as in a SLURM log): progress lines in it
    while it runs, the last one at the final step."""
    log = tmp_path / "stderr.log"
    env = {**os.environ, "AWMCTL_PROGRESS_SECONDS": "0.05"}
    with open(log, "w") as stderr:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "awmctl",
                "optimize-policy",
                "--model",
                "simulator",
                "--task",
                "cancer",
                "--horizon",
                "5",
                "--steps",
                "40",
                "--log-every",
                "5",
                "--out",
                str(tmp_path / "policy"),
            ],
            check=False,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            timeout=300,
        )
    assert done.returncode == 0, log.read_text()
    lines = [m for m in map(LINE.match, log.read_text().splitlines()) if m]
    assert lines, log.read_text()
    assert all(m["what"] == "BPO simulator on cancer" and m["total"] == "40" for m in lines)
    assert lines[-1]["done"] == "40"
    assert any(int(m["done"]) < 40 for m in lines)  # while it ran, not only at the end
    assert "\x1b[" not in log.read_text()  # no terminal control characters in a log


def test_zero_turns_the_lines_off(tmp_path):
    env = {**os.environ, "AWMCTL_PROGRESS_SECONDS": "0"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "awmctl",
            "collect",
            "--task",
            "cancer",
            "--horizon",
            "5",
            "--episodes",
            "16",
            "--out",
            str(tmp_path / "data"),
        ],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "[awmctl]" not in done.stderr
