"""The SLURM array example (docs/examples/slurm_sweep.sh), run as SLURM would run it, without
SLURM: one row per array task, complete rows skipped, SIGTERM passed on to awmctl, which
checkpoints and exits 143, and the same task resumes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent.parent / "docs" / "examples" / "slurm_sweep.sh"


def sweep(tmp_path, rows: str, task: int, **popen):
    (tmp_path / "rows.txt").write_text(rows)
    env = {
        **os.environ,
        "ROWS": str(tmp_path / "rows.txt"),
        "OUT": str(tmp_path / "sweep"),
        "AWMCTL": f"{sys.executable} -m awmctl",
        "SLURM_ARRAY_TASK_ID": str(task),
        "AWMCTL_CHECKPOINT_SECONDS": "0",
    }
    return subprocess.Popen(
        ["bash", str(SCRIPT)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


ROWS = (
    "# name  arguments\n"
    "data     collect --task cancer --horizon 8 -n 4\n"
    "online   optimize-policy --online --model markov-mlp --task cancer --horizon 8 "
    "--env-steps 64 --warmup-steps 32\n"
)


def test_each_array_task_runs_its_row_and_a_complete_row_is_skipped(tmp_path):
    for task in (0, 1):
        process = sweep(tmp_path, ROWS, task)
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
    for name in ("data", "online"):
        assert (
            json.loads((tmp_path / "sweep" / name / "meta.json").read_text())["status"]
            == "complete"
        )
        assert json.loads((tmp_path / "sweep" / f"{name}.json").read_text())["out"].endswith(name)
    again = sweep(tmp_path, ROWS, 1)
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0 and "online: already complete" in err
    missing = sweep(tmp_path, ROWS, 7)
    _, err = missing.communicate(timeout=60)
    assert missing.returncode == 2 and "no row 7" in err


@pytest.mark.slow  # awmctl's own SIGTERM handling is in the default run (test_preemption.py)
def test_sigterm_to_the_job_checkpoints_and_the_requeued_task_resumes(tmp_path):
    rows = (
        "long optimize-policy --online --model markov-mlp --task cancer --horizon 8 "
        "--env-steps 1600 --warmup-steps 32\n"
    )
    job = sweep(tmp_path, rows, 0)
    partial = tmp_path / "sweep" / "long.partial"
    deadline = time.monotonic() + 240
    while not (partial / "checkpoints").exists() or not any(
        p.name.isdigit() for p in (partial / "checkpoints").iterdir()
    ):
        assert time.monotonic() < deadline and job.poll() is None, job.communicate()[1]
        time.sleep(0.2)
    job.send_signal(signal.SIGTERM)  # what SLURM sends the batch shell (--signal=B:TERM@120)
    _, err = job.communicate(timeout=120)
    assert job.returncode == 143, err
    assert "checkpointed on SIGTERM" in err and not (tmp_path / "sweep" / "long").exists()
    requeued = sweep(tmp_path, rows, 0)
    _, err = requeued.communicate(timeout=600)
    assert requeued.returncode == 0, err
    assert "Resuming from env step" in err
    assert (
        json.loads((tmp_path / "sweep" / "long" / "meta.json").read_text())["status"] == "complete"
    )
