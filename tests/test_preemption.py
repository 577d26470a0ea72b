"""Preemption: SIGTERM (what SLURM and Kubernetes send before they kill a job) and ``kill -9``
at any point. After either, the same command line resumes, and the result is bitwise the
uninterrupted run's; no directory ever looks complete before it is.

SIGTERM is sent by the process to itself in the middle of a chunk, in-process (deterministic).
The kill matrix runs each command in a subprocess that kills itself with SIGKILL at a chosen
point (``tests/kill_at.py``); CI runs one point per command, ``make test-all`` all of them.
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import run
from test_goldens import outputs
from test_tracking import tensorboard_scalars, wandb_history

from awmctl import algorithms

HERE = Path(__file__).parent


def commands(data: Path, out: Path) -> dict[str, list]:
    """Small runs of every long command, several chunks each."""
    h8 = ["--task", "cancer", "--horizon", 8]
    return {
        "fit-model": [
            "fit-model",
            "--data",
            data,
            "--model",
            "markov-mlp",
            "--steps",
            200,
            "--log-every",
            50,
            "--out",
            out,
        ],
        "offline": [
            "optimize-policy",
            "--model",
            "simulator",
            *h8,
            "--steps",
            40,
            "--log-every",
            10,
            "--seeds",
            2,
            "--out",
            out,
        ],
        "online": [
            "optimize-policy",
            "--online",
            *h8,
            "--model",
            "markov-mlp",
            "--env-steps",
            160,
            "--warmup-steps",
            32,
            "--seeds",
            2,
            "--out",
            out,
        ],
    }


ALGORITHM = {
    "fit-model": algorithms.ModelFit,
    "offline": algorithms.BPO,
    "online": algorithms.OnlineBPO,
}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("preemption") / "data"
    assert run("collect", "--task", "cancer", "--horizon", 8, "-n", 32, "--out", out).exit_code == 0
    return out


def assert_same_outputs(a: Path, b: Path) -> None:
    got, want = outputs(a), outputs(b)
    assert sorted(got) == sorted(want)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


@pytest.fixture
def sigterm_during_chunk(monkeypatch):
    """``sigterm_during_chunk(cls, n)``: SIGTERM arrives while chunk n is computing."""

    def patch(cls, n: int):
        original = cls.run_chunk
        calls = {"n": 0}

        def chunk(self, state):
            calls["n"] += 1
            if calls["n"] == n:
                os.kill(os.getpid(), signal.SIGTERM)  # handled at once: only a flag is set
            return original(self, state)

        monkeypatch.setattr(cls, "run_chunk", chunk)
        return lambda: monkeypatch.setattr(cls, "run_chunk", original)

    yield patch
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.mark.parametrize(
    "command",
    [
        pytest.param("fit-model", marks=pytest.mark.slow),
        pytest.param("offline", marks=pytest.mark.slow),
        "online",
    ],
)
def test_sigterm_checkpoints_the_chunk_exits_143_and_the_same_command_resumes_exactly(
    tmp_path, data, command, sigterm_during_chunk
):
    whole = run(*commands(data, tmp_path / "whole")[command])
    assert whole.exit_code == 0, whole.stderr
    undo = sigterm_during_chunk(ALGORITHM[command], 2)
    # tracked in TensorBoard (always) and W&B (offline in tests): both continue on resume
    argv = [*commands(data, tmp_path / "resumed")[command], "--wandb", "awmctl-test"]
    stopped = run(*argv)
    assert stopped.exit_code == 143, stopped.stderr
    assert "Terminated (SIGTERM)" in stopped.stderr
    assert not (tmp_path / "resumed").exists()
    undo()
    resumed = run(*argv)
    assert resumed.exit_code == 0, resumed.stderr
    assert "Resuming from" in resumed.stderr  # from the chunk SIGTERM interrupted: nothing lost
    step = json.loads((tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()[1])["step"]
    assert f" {step} in " in resumed.stderr
    assert_same_outputs(tmp_path / "resumed", tmp_path / "whole")
    assert_tracked(tmp_path / "resumed", ALGORITHM[command].score)


def assert_tracked(out: Path, score: str) -> None:
    """TensorBoard's and W&B's series of ``out`` are its metrics.jsonl, each step once."""
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records]
    values = np.asarray([r[score] for r in records], np.float64)  # [steps, seeds]
    mean = tensorboard_scalars(out / "tensorboard")[score]
    assert [s for s, _ in mean] == steps
    np.testing.assert_allclose([v for _, v in mean], values.mean(axis=1), rtol=1e-6)
    last_seed = tensorboard_scalars(out / "tensorboard" / "seed_1")[score]
    np.testing.assert_allclose([v for _, v in last_seed], values[:, 1], rtol=1e-6)
    ids, rows = wandb_history(out)
    assert len(ids) == 1 and [s for s, _ in rows] == steps
    np.testing.assert_allclose([row[score] for _, row in rows], values.mean(axis=1), rtol=1e-6)


POINTS = [("compile", 1), ("chunk", 3), ("checkpoint", 2), ("rename", 1)]
# The default run keeps one kill point (online, during the final rename); an offline resume after a
# kill is also tested in test_bpo.py, a fit's in test_fit_model.py. The whole matrix: make test-all.
MATRIX = [
    pytest.param(c, p, n, marks=() if (c, p) == ("online", "rename") else pytest.mark.slow)
    for c in ("fit-model", "offline", "online")
    for p, n in POINTS
]


@pytest.mark.parametrize("command, point, n", MATRIX)
def test_kill_9_at_any_point_then_rerun_gives_the_uninterrupted_result(
    tmp_path, data, command, point, n
):
    whole = run(*commands(data, tmp_path / "whole")[command])
    assert whole.exit_code == 0, whole.stderr
    out = tmp_path / "killed"
    argv = [str(a) for a in commands(data, out)[command]]
    # the same two CPU devices as this test process (conftest), so that the bits can match
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": "2"}
    killed = subprocess.run(
        [sys.executable, str(HERE / "kill_at.py"), point, str(n), *argv],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # never a directory that looks complete
    assert (
        not out.exists() or json.loads((out / "meta.json").read_text()).get("status") != "complete"
    )
    partial = out.with_name("killed.partial")
    if point != "compile":
        assert partial.exists()  # the work so far is kept for the rerun
    resumed = run(*argv)
    assert resumed.exit_code == 0, resumed.stderr
    assert_same_outputs(out, tmp_path / "whole")
