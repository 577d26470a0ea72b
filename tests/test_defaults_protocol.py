"""benchmarks/defaults.py: the held-out protocol's sets, its rows and its verdicts (no runs)."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
import defaults

import awmctl


def test_the_two_sets_are_disjoint_and_every_task_builds_at_both_horizons():
    dev, held = (
        set(map(defaults.short, defaults.SETS["dev"])),
        set(map(defaults.short, defaults.SETS["heldout"])),
    )
    assert not dev & held and len(dev) == 11 and len(held) == 6
    paper = {
        name
        for name in awmctl.tasks.task_names(include_entry_points=False)
        if awmctl.tasks.task_info(name).in_paper
    }
    assert (
        set(defaults.PAPER_TASKS) <= dev and not held & paper
    )  # the held-out set is outside the paper's grid
    for task in (*defaults.SETS["dev"], *defaults.SETS["heldout"]):
        for horizon in defaults.HORIZONS:
            built = awmctl.make_task(task, horizon)
            assert (
                built.horizon == horizon
                and np.isfinite(
                    np.asarray(
                        built.initial_state(awmctl.tasks.reset_key(__import__("jax").random.key(0)))
                    )
                ).all()
            )


def row(task, horizon, method, candidate, scores):
    return {
        "task": task,
        "horizon": horizon,
        "method": method,
        "candidate": candidate,
        "scores": scores,
        "score_mean": float(np.mean(scores)),
    }


def test_the_grid_comparison_calls_lower_only_beyond_the_paper_rows_interval():
    rows = [
        row("cancer", 20, "awm-lstm", "paper", [0.90, 0.91, 0.92]),
        row("cancer", 20, "awm-lstm", "converged", [0.99, 0.99, 0.99]),  # higher
        row("cancer", 100, "awm-lstm", "paper", [0.5, 0.9, 0.7]),
        row(
            "cancer", 100, "awm-lstm", "converged", [0.6, 0.6, 0.6]
        ),  # -0.1, inside the paper row's interval
        row("glucose", 20, "simulator", "paper", [0.95, 0.95, 0.96]),
        row("glucose", 20, "simulator", "converged", [0.5, 0.5, 0.5]),
    ]  # lower
    text = defaults.grid_comparison(rows)
    verdicts = [line.rsplit("|", 2)[-2].strip() for line in text.splitlines()[2:5]]
    assert verdicts == ["higher", "lower", "same"]  # H 20 first, tasks in the paper's order
    assert "higher: 1, same: 1, lower: 1 (of 3 rows)" in text


def test_paper_rows_of_the_paper_tasks_are_the_grids_own(tmp_path, monkeypatch):
    """Candidate 'paper' on a paper task reads the Figure 5 grid's row (never runs anything)."""
    grid = tmp_path / "grid"
    grid.mkdir()
    (grid / "cancer-h4-awm-lstm.json").write_text(
        '{"returns": [-30.0, -25.0], "curves": [[-35.0, -36.0], [-30.0, -25.0]], "wall_s": 1.0}'
    )
    monkeypatch.setattr(defaults, "REPRODUCE_ROWS", grid)
    import reproduce

    monkeypatch.setattr(
        reproduce.subprocess, "run", lambda *a, **k: (_ for _ in ()).throw(AssertionError("ran"))
    )
    monkeypatch.setattr(
        defaults,
        "load_or_compute",
        lambda task, cache: awmctl.algorithms.references.References(
            -40.0, -20.0, (-20.0,), awmctl.algorithms.references.ReferenceSettings()
        ),
    )
    got = defaults.run_row("cancer", 4, "awm-lstm", "paper", 2, tmp_path / "out")
    assert got["from_grid"] and got["scores"] == [0.5, 0.75] and got["score_mean"] == 0.625
    assert defaults.grid_row("cancer", 4, "awm-lstm", "converged") is None
