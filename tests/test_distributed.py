"""Seeds across processes: ``optimize-policy --processes K``, or ``AWMCTL_DISTRIBUTED=1`` under a
multi-process launcher (srun: two local processes with the environment it gives its tasks) splits
``--seeds N`` between the processes, and process 0 writes the run, which equals the
one-process run."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from test_goldens import outputs

ARGS = [
    "optimize-policy",
    "--online",
    "--task",
    "cancer",
    "--horizon",
    "8",
    "--model",
    "markov-mlp",
    "--env-steps",
    "96",
    "--warmup-steps",
    "32",
    "--seeds",
    "2",
    "--json",
]


def awmctl(*args, **env):
    return subprocess.Popen(
        [sys.executable, "-m", "awmctl", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )


# 73 s of two processes compiling; with make test-all like the other multi-process tests
@pytest.mark.slow
def test_two_local_processes_share_the_seeds_and_write_the_one_process_run(tmp_path):
    # --processes 2 starts the multi-process job itself (a coordinator on localhost)
    one = awmctl(*ARGS, "--out", str(tmp_path / "one"))
    scratch = tmp_path / "scratch"  # the processes' temporary directory: nothing is left in it
    scratch.mkdir()
    local = awmctl(*ARGS, "--processes", "2", "--out", str(tmp_path / "local"), TMPDIR=str(scratch))
    (_, err_one), (out, err) = one.communicate(timeout=300), local.communicate(timeout=300)
    assert one.returncode == 0, err_one
    assert local.returncode == 0, err
    assert json.loads(out)["seeds"] == 2  # process 0 reports, once
    assert list(scratch.iterdir()) == []
    got, want = outputs(tmp_path / "local"), outputs(tmp_path / "one")
    assert sorted(got) == sorted(want)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    refused = awmctl(
        *ARGS[:-3], "--seeds", "3", "--processes", "2", "--out", str(tmp_path / "three")
    )
    assert (
        refused.wait(timeout=120) == 2
        and "--seeds 3 cannot be shared by --processes 2" in refused.communicate()[1]
    )


@pytest.mark.slow
def test_a_clusters_launcher_environment_makes_the_same_job(tmp_path):
    """srun's environment, which JAX reads (two local processes with SLURM's variables)."""
    one = awmctl(*ARGS, "--out", str(tmp_path / "one"))
    _, err = one.communicate(timeout=300)
    assert one.returncode == 0, err
    job = str(random.randrange(10_000, 99_999))  # its coordinator port comes from the job id
    slurm = {
        "AWMCTL_DISTRIBUTED": "1",
        "SLURM_JOB_ID": job,
        "SLURM_STEP_NODELIST": "localhost",
        "SLURM_NTASKS": "2",
    }
    tasks = [
        awmctl(
            *ARGS,
            "--out",
            str(tmp_path / "two"),
            **slurm,
            SLURM_PROCID=str(i),
            SLURM_LOCALID=str(i),
        )
        for i in range(2)
    ]
    results = [t.communicate(timeout=300) for t in tasks]
    for task, (_, err) in zip(tasks, results):
        assert task.returncode == 0, err
    assert (
        json.loads(results[0][0])["seeds"] == 2 and results[1][0].strip() == ""
    )  # process 0 reports
    got, want = outputs(tmp_path / "two"), outputs(tmp_path / "one")
    assert sorted(got) == sorted(want)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    # a share that does not divide is refused in one line by every process
    bad = [
        awmctl(
            *ARGS[:-3],
            "--seeds",
            "3",
            "--out",
            str(tmp_path / "three"),
            **{**slurm, "SLURM_JOB_ID": str(int(job) + 1)},
            SLURM_PROCID=str(i),
            SLURM_LOCALID=str(i),
        )
        for i in range(2)
    ]
    for b in bad:
        _, err = b.communicate(timeout=300)
        assert b.returncode == 2 and "--seeds 3 cannot be shared by the 2 processes" in err, err


@pytest.mark.slow
def test_sigterm_to_one_process_stops_both_and_the_rerun_resumes_to_the_one_process_run(tmp_path):
    args = [*ARGS[:-7], "--env-steps", "1600", "--warmup-steps", "32", "--seeds", "2"]
    one = awmctl(*args, "--out", str(tmp_path / "one"))
    assert one.wait(timeout=300) == 0, one.communicate()[1]

    def job(number: int):
        slurm = {
            "AWMCTL_DISTRIBUTED": "1",
            "SLURM_JOB_ID": str(number),
            "SLURM_STEP_NODELIST": "localhost",
            "SLURM_NTASKS": "2",
        }
        return [
            awmctl(
                *args,
                "--out",
                str(tmp_path / "two"),
                **slurm,
                SLURM_PROCID=str(i),
                SLURM_LOCALID=str(i),
            )
            for i in range(2)
        ]

    number = random.randrange(10_000, 99_999)
    tasks = job(number)
    checkpoints = tmp_path / "two.partial" / "checkpoints"
    deadline = time.monotonic() + 240
    while not (checkpoints.is_dir() and any(p.name.isdigit() for p in checkpoints.iterdir())):
        assert time.monotonic() < deadline and all(t.poll() is None for t in tasks)
        time.sleep(0.2)
    tasks[1].send_signal(signal.SIGTERM)  # the follower only: both stop at the same chunk
    for t in tasks:
        assert t.wait(timeout=120) == 143, t.communicate()[1]
    resumed = job(number + 1)
    errs = [t.communicate(timeout=600)[1] for t in resumed]
    assert all(t.returncode == 0 for t in resumed), errs
    assert "Resuming from env step" in errs[0]
    got, want = outputs(tmp_path / "two"), outputs(tmp_path / "one")
    assert sorted(got) == sorted(want)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
