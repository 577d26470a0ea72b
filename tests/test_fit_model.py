"""`awmctl fit-model`: CLI round trip through checkpoints, resume after a kill, bad input."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import run

from awmctl import algorithms, artifacts
from awmctl.artifacts import load_model
from awmctl.models import imagine

SMALL = ["--width", "12", "--heads", "2", "--mlp-width", "24"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "cancer"
    result = run(
        "collect", "--task", "cancer", "--horizon", 10, "-n", 24, "--seed", 0, "--out", out
    )
    assert result.exit_code == 0, result.stderr
    return out


def fit_args(dataset, out, *extra):
    return (
        "fit-model",
        "--data",
        dataset,
        "--model",
        "awm-transformer",
        *SMALL,
        "--steps",
        40,
        "--log-every",
        10,
        "--batch-size",
        8,
        "--seed",
        2,
        "--out",
        out,
        *extra,
    )


def test_round_trip_restores_identical_predictions(dataset, tmp_path):
    out = tmp_path / "m"
    result = run(*fit_args(dataset, out, "--json"))
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["model"] == "awm-transformer" and summary["steps"] == 40
    assert 0 < summary["val_mse"] < 10 and len(summary["val_final_r2"]) == 1
    model, task, meta = load_model(out)
    assert meta["kind"] == "model" and meta["model"]["hyper"]["width"] == 12
    assert task.name == "cancer" and task.horizon == 10
    assert (out / "loss.png").stat().st_size > 1000
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [10, 20, 30, 40]
    # The restored model reproduces the reported validation loss exactly.
    episodes, _ = artifacts.load_dataset(dataset)
    _, val = algorithms.split_episodes(episodes, 0.1, jax.random.split(jax.random.key(2))[1])
    loss = algorithms.normalised_mse(
        model, model.norm.std, jnp.asarray(val.observations), jnp.asarray(val.actions)
    )
    assert float(loss) == pytest.approx(summary["val_mse"], rel=1e-5)
    imagined = imagine(model, jnp.asarray(val.observations[0, 0]), jnp.asarray(val.actions[0]))
    assert imagined.shape == (10, 2) and np.all(np.isfinite(imagined))


def test_resumed_run_equals_uninterrupted_run(dataset, tmp_path, monkeypatch):
    assert run(*fit_args(dataset, tmp_path / "whole")).exit_code == 0

    original = algorithms.ModelFit.run_chunk
    calls = {"n": 0}

    def killed_after_two(self, state):
        calls["n"] += 1
        if calls["n"] > 2:
            raise KeyboardInterrupt
        return original(self, state)

    monkeypatch.setattr(algorithms.ModelFit, "run_chunk", killed_after_two)
    interrupted = run(*fit_args(dataset, tmp_path / "resumed"))
    assert interrupted.exit_code == 130
    assert not (tmp_path / "resumed").exists()  # nothing that looks complete
    assert (tmp_path / "resumed.partial" / "checkpoints").is_dir()
    monkeypatch.setattr(algorithms.ModelFit, "run_chunk", original)

    resumed = run(*fit_args(dataset, tmp_path / "resumed"))
    assert resumed.exit_code == 0, resumed.stderr
    assert "Resuming from step 20" in resumed.stderr
    whole, _, _ = load_model(tmp_path / "whole")
    again, _, _ = load_model(tmp_path / "resumed")
    for a, b in zip(
        jax.tree_util.tree_leaves(eqx.filter(whole, eqx.is_array)),
        jax.tree_util.tree_leaves(eqx.filter(again, eqx.is_array)),
    ):
        np.testing.assert_array_equal(a, b)
    steps = [
        json.loads(l)["step"]
        for l in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == [10, 20, 30, 40]
    assert not (tmp_path / "resumed.partial").exists()


def test_partial_run_with_other_settings_is_refused(dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(
        algorithms.ModelFit,
        "run_chunk",
        lambda self, state: (_ for _ in ()).throw(KeyboardInterrupt),
    )
    assert run(*fit_args(dataset, tmp_path / "m")).exit_code == 130
    monkeypatch.undo()
    result = run(*fit_args(dataset, tmp_path / "m", "--lr", "0.01"))
    assert result.exit_code == 2 and "unfinished run with other settings (fit.lr)" in result.stderr


def test_bad_input(dataset, tmp_path):
    result = run("fit-model", "--data", dataset, "--model", "gpt", "--out", tmp_path / "a")
    assert (
        result.exit_code == 2 and "unknown model 'gpt'; choose one of: markov-mlp" in result.stderr
    )
    result = run(
        "fit-model", "--data", tmp_path / "nothing", "--model", "awm-lstm", "--out", tmp_path / "a"
    )
    assert result.exit_code == 2 and "does not exist" in result.stderr
    result = run(*fit_args(dataset, tmp_path / "m", "--context", "5"))
    assert result.exit_code == 2 and "shorter than the data's horizon 10" in result.stderr
    result = run("fit-model", "--data", dataset, "--model", "simulator", "--out", tmp_path / "a")
    assert result.exit_code == 2 and "nothing to fit" in result.stderr
    result = run(
        "fit-model",
        "--data",
        dataset,
        "--model",
        "awm-lstm",
        "--heads",
        "2",
        "--out",
        tmp_path / "a",
    )
    assert result.exit_code == 2 and "transformers only" in result.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "a.partial").exists()


def test_a_model_directory_is_not_a_dataset(dataset, tmp_path):
    assert run(*fit_args(dataset, tmp_path / "m")).exit_code == 0
    result = run(
        "fit-model", "--data", tmp_path / "m", "--model", "awm-lstm", "--out", tmp_path / "b"
    )
    assert result.exit_code == 2 and "holds a model, but a dataset is expected" in result.stderr


def test_nan_in_dataset_is_refused(tmp_path):
    from awmctl.rollouts import collect, random_controller
    from awmctl.tasks import make_task

    task = make_task("cancer", 4)
    batch = collect(task, random_controller(task), 4, jax.random.key(0))
    obs = np.array(batch.observations)
    obs[0, 1, 0] = np.inf
    artifacts.save_dataset(tmp_path / "bad", batch._replace(observations=obs), task, {})
    result = run(
        "fit-model", "--data", tmp_path / "bad", "--model", "markov-mlp", "--out", tmp_path / "m"
    )
    assert result.exit_code == 2 and "contain NaN or Inf" in result.stderr


def test_every_curve_drawn_one_line_per_metric_names_each_line_for_a_reader():
    from awmctl.algorithms import BPO, SAC, ModelFit, OnlineBPO, OnlineDT

    for algorithm in (ModelFit, BPO, OnlineBPO, SAC, OnlineDT):
        curve = algorithm.curve
        assert curve.ylabel and curve.xlabel
        if not curve.per_seed:
            assert len(curve.legend) == len(curve.metrics)
            assert not any("/" in name for name in curve.legend)  # no raw keys


def test_a_torn_last_metrics_line_is_dropped_on_resume_and_said(dataset, tmp_path, interrupt_after):
    assert run(*fit_args(dataset, tmp_path / "whole")).exit_code == 0
    undo = interrupt_after(algorithms.ModelFit, "run_chunk", 2)
    assert run(*fit_args(dataset, tmp_path / "m")).exit_code == 130
    undo()
    metrics = tmp_path / "m.partial" / "metrics.jsonl"
    with open(metrics, "a") as f:
        f.write('{"step": 30, "train/lo')  # killed mid-write
    shown = run("show", tmp_path / "m.partial")
    assert shown.exit_code == 0, shown.stderr
    resumed = run(*fit_args(dataset, tmp_path / "m"))
    assert resumed.exit_code == 0, resumed.stderr
    assert "last line of" in resumed.stderr and "was torn" in resumed.stderr
    lines = (tmp_path / "m" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(l)["step"] for l in lines] == [10, 20, 30, 40]
    whole = (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(l)["val/loss"] for l in lines] == [json.loads(l)["val/loss"] for l in whole]


def test_a_metrics_file_damaged_before_its_last_line_is_refused(dataset, tmp_path, interrupt_after):
    undo = interrupt_after(algorithms.ModelFit, "run_chunk", 2)
    assert run(*fit_args(dataset, tmp_path / "m")).exit_code == 130
    undo()
    metrics = tmp_path / "m.partial" / "metrics.jsonl"
    metrics.write_text("not json\n" + metrics.read_text())
    result = run(*fit_args(dataset, tmp_path / "m"))
    assert result.exit_code == 2 and "line 1 is not a JSON record" in result.stderr
