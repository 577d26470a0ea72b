"""The reproduction sweep (benchmarks/reproduce.py): shards, resume, scores and the tables."""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import reproduce


def _args(out, **kw):
    base = {
        "tasks": "cancer,bacteria,glucose",
        "horizons": "20,100",
        "methods": "simulator,sac,awm-transformer",
        "variants": "clean,noise=0.1",
        "seeds": 2,
        "env_steps": 64,
        "out": str(out),
        "shard": "0/1",
        "preset": "paper",
    }
    return argparse.Namespace(**{**base, **kw})


def test_shards_split_the_grid_into_disjoint_parts_that_cover_it(tmp_path):
    whole = reproduce.planned_rows(_args(tmp_path))
    assert len(whole) == 3 * 2 * 3 * 2 == len(set(whole))
    parts = [reproduce.planned_rows(_args(tmp_path, shard=f"{i}/4")) for i in range(4)]
    assert sorted(row for part in parts for row in part) == sorted(whole)
    assert all(not set(a) & set(b) for i, a in enumerate(parts) for b in parts[i + 1 :])
    with pytest.raises(SystemExit, match="0 <= I < N"):
        reproduce.planned_rows(_args(tmp_path, shard="4/4"))


def test_a_row_runs_the_cli_scores_against_the_cached_references_and_is_never_run_twice(
    tmp_path, monkeypatch
):
    out = tmp_path / "grid"
    refs = {"random": -40.0, "opt": -5.0, "source": "test"}
    (out / "references").mkdir(parents=True)
    (out / "references" / "cancer-h4.json").write_text(json.dumps(refs))
    args = _args(out, tasks="cancer", horizons="4", methods="simulator", variants="noise=0.01")
    reproduce.sweep(args)
    row = json.loads((out / "rows" / "cancer-h4-simulator-noise0.01.json").read_text())
    assert row["variant"] == "noise=0.01" and row["seeds"] == 2 and len(row["returns"]) == 2
    np.testing.assert_allclose(row["scores"], (np.asarray(row["returns"]) + 40.0) / 35.0)
    assert row["steps"][-1] == 64 and len(row["curves"][-1]) == 2
    meta = json.loads((out / "runs" / "cancer-h4-simulator-noise0.01" / "meta.json").read_text())
    assert meta["task"]["params"]["noise"] == 0.01  # the variant reached the task
    assert "--task-param noise=0.01" in row["command"]
    # A second sweep finds the row done and runs nothing.
    monkeypatch.setattr(
        reproduce.subprocess, "run", lambda *a, **k: pytest.fail("a finished row was run again")
    )
    reproduce.sweep(args)


def test_a_row_grows_seed_by_seed_into_the_row_of_one_run_of_every_seed(tmp_path, monkeypatch):
    refs = {"random": -40.0, "opt": -5.0, "source": "test"}
    for name in ("grown", "whole"):
        (tmp_path / name / "references").mkdir(parents=True)
        (tmp_path / name / "references" / "cancer-h4.json").write_text(json.dumps(refs))
    one = {"tasks": "cancer", "horizons": "4", "methods": "simulator", "variants": "clean"}
    reproduce.sweep(_args(tmp_path / "grown", **one, seeds=2))
    # growing to 3 seeds runs seed 2 alone, next to the first run
    commands = []
    real_run = reproduce.subprocess.run
    monkeypatch.setattr(
        reproduce.subprocess, "run", lambda argv, **k: commands.append(argv) or real_run(argv, **k)
    )
    reproduce.sweep(_args(tmp_path / "grown", **one, seeds=3))
    assert len(commands) == 1
    assert commands[0][commands[0].index("--seed") + 1 : commands[0].index("--seeds") + 2] == [
        "2",
        "--seeds",
        "1",
    ]
    reproduce.sweep(_args(tmp_path / "whole", **one, seeds=3))
    grown, whole = (
        json.loads((tmp_path / name / "rows" / "cancer-h4-simulator.json").read_text())
        for name in ("grown", "whole")
    )
    for key in ("seeds", "returns", "scores", "score_mean", "score_ci95", "curves", "steps"):
        assert grown[key] == whole[key], key
    assert [(b["first_seed"], b["seeds"]) for b in grown["blocks"]] == [(0, 2), (2, 1)]
    assert grown["commit"] == whole["commit"] and "cores" in grown["machine"]
    assert len(commands) == 2  # the whole row ran once, and the grown row did not run again
    reproduce.sweep(_args(tmp_path / "grown", **one, seeds=3))
    assert len(commands) == 2


def _row(task, horizon, method, score, flag="", variant="clean"):
    return {
        "task": task,
        "horizon": horizon,
        "method": method,
        "variant": variant,
        "score_mean": score,
        "scores": [score] * 3,
        "score_ci95": 0.01,
        "flag": flag,
        "seeds": 3,
        "wall_s": 10.0,
        "run_time": {"wall_s": 9.0},
    }


def test_tables_rank_and_count_methods_except_on_flagged_and_saturated_tasks():
    rows = [
        _row("cancer", 100, "sac", 0.8),
        _row("cancer", 100, "awm-transformer", 0.96),
        _row("glucose", 100, "sac", 0.9, flag="nearly flat"),
        _row("glucose", 100, "awm-transformer", 0.1, flag="nearly flat"),
        _row("cancer", 100, "sac", 0.5, variant="noise=0.1"),
        _row("bacteria", 100, "sac", 0.905),
        _row("bacteria", 100, "awm-transformer", 0.9),
        # every BPO method at 0.97 or more: saturated, whatever the baselines score
        _row("bear-populations", 100, "sac", 0.5),
        _row("bear-populations", 100, "awm-transformer", 0.99),
    ]
    table = reproduce.grid_table(rows, ["awm-transformer", "sac"]).splitlines()
    cancer = next(line for line in table if line.startswith("| cancer |"))
    glucose = next(line for line in table if line.startswith("| glucose (flagged) |"))
    assert cancer.endswith("| AWM transformer |") and "0.96 ± 0.01" in cancer
    assert "not ranked: flagged: nearly flat" in glucose
    bear = next(line for line in table if line.startswith("| bear-populations (saturated) |"))
    assert "not ranked: saturated" in bear
    # the means count cancer and bacteria only
    summary = reproduce.summary_table(rows, ["awm-transformer", "sac"])
    assert "| 100 | AWM transformer | 2 | 0.93 | 2 of 2 |" in summary
    bacteria = next(line for line in table if line.startswith("| bacteria |"))
    assert bacteria.endswith("| tie: SAC, AWM transformer |")  # intervals overlap: no winner
    robustness = reproduce.robustness_table(rows)
    assert "| cancer | 100 | SAC | 0.80 ± 0.01 | 0.50 ± 0.01 (-0.30) |" in robustness
    summary = reproduce.summary_table(rows, ["awm-transformer", "sac"])
    # glucose is flagged: left out; cancer won by the AWM, bacteria tied
    assert "| 100 | AWM transformer | 2 | 0.93 | 2 of 2 |" in summary
    assert "| 100 | SAC | 2 | 0.85 | 1 of 2 |" in summary
    assert "| all | | 8 | | | 80 (0.02 h) |" in reproduce.time_table(
        rows, ["awm-transformer", "sac"]
    )


def test_variants_are_ordered_by_parameter_and_value():
    variants = ["noise=0.1", "distractors=16", "clean", "noise=0.01", "distractors=4"]
    assert sorted(variants, key=reproduce.variant_order) == [
        "clean",
        "distractors=4",
        "distractors=16",
        "noise=0.01",
        "noise=0.1",
    ]
