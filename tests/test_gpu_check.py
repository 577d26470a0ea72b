"""The GPU benchmark (``benchmarks/gpu_check.sh``) at tiny sizes on this CPU, so that it works the
first time it meets a GPU, which is lent only for minutes at a time."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.long_running
def test_the_gpu_check_runs_every_part_and_reports_its_figures(tmp_path):
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "JAX_PLATFORMS": "cpu",
        "GPU_CHECK_TINY": "1",
    }
    out = tmp_path / "gpu"
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), str(out)],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = (out / "log.txt").read_text() if (out / "log.txt").exists() else ""
    assert done.returncode == 0, done.stdout + done.stderr + log
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    parts = [r["part"] for r in rows]
    assert sorted(set(parts)) == ["device", "fit", "online", "precision", "tests"], log
    assert rows[0]["part"] == "device" and rows[0]["platform"] == "cpu"

    online = {
        (r["preset"], r["matmul_precision"], r["ensemble"]): r
        for r in rows
        if r["part"] == "online"
    }
    assert set(online) == {
        ("paper", "default", 1),
        ("paper", "highest", 1),
        ("converged", "default", 1),
        ("converged", "default", 3),
    }
    for r in online.values():
        # every seed vectorised in one program, the whole (tiny) run done, and a real return
        assert r["seeds"] == 2 and r["seed_mode"] == "vmap" and r["completed"], r
        assert r["periods_done"] == r["periods"] == 3 and r["env_steps"] == 96
        assert r["model_updates"] > 0 and r["policy_updates"] > 0
        assert len(r["final_returns"]) == 2 and all(map(math.isfinite, r["final_returns"]))
        assert r["run_s"] >= r["loop_s"] > 0
    # A CPU has no TF32: both precisions compute the same run.
    default, highest = online["paper", "default", 1], online["paper", "highest", 1]
    assert default["final_returns"] == highest["final_returns"]

    (fit,) = (r for r in rows if r["part"] == "fit")
    assert fit["steps_per_s"] > 0 and math.isfinite(fit["train_loss"])
    (precision,) = (r for r in rows if r["part"] == "precision")
    for name in ("model_update", "policy_update"):
        assert precision[name]["rel_l2"] == 0.0 and precision[name]["norm"] > 0
    (tests,) = (r for r in rows if r["part"] == "tests")
    assert tests["counts"].get("PASSED", 0) > 0 and not tests["not_passed"], tests

    report = (out / "report.md").read_text()
    assert "| markov-mlp | 2 | 3 | converged | default |" in report
    assert "fit-model | steps/s" in report and "Tests on the device:" in report
