"""`awmctl collect` and the dataset store: values, determinism, round trips and bad input."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import run

from awmctl import artifacts, store
from awmctl.errors import BadInputError
from awmctl.rollouts import collect
from awmctl.tasks import make_task, open_loop_return


def test_collect_constant_policy_matches_open_loop_return():
    task = make_task("cancer", 20)
    act = artifacts.behaviour(artifacts.parse_policy("constant:0.3"), task)
    batch = collect(task, act, 3, jax.random.key(0))
    assert batch.observations.shape == (3, 21, 2)
    assert batch.actions.shape == (3, 20, 1)
    assert batch.rewards.shape == (3, 20)
    np.testing.assert_allclose(batch.actions, 0.3, rtol=1e-6)
    expected = open_loop_return(task, jnp.full((20, 1), 0.3, dtype=jnp.float32))
    np.testing.assert_allclose(batch.rewards.sum(-1), float(expected), rtol=1e-5)
    # Observations carry the step index exactly and start from the task's x0.
    np.testing.assert_array_equal(batch.observations[0, :, -1], np.arange(21))
    np.testing.assert_allclose(batch.observations[:, 0, 0], 0.975, rtol=1e-6)


def test_random_policy_is_uniform_in_unit_box_and_chunking_does_not_change_results():
    task = make_task("bear-populations", 10)
    act = artifacts.behaviour(artifacts.parse_policy("random"), task)
    whole = collect(task, act, 7, jax.random.key(3))
    chunked = collect(task, act, 7, jax.random.key(3), chunk=3)
    for a, b in zip(whole, chunked):
        np.testing.assert_array_equal(a, b)
    assert whole.actions.shape == (7, 10, 2)
    assert np.all(np.abs(whole.actions) <= 1.0)
    assert whole.actions.std() > 0.4  # U[-1, 1] has std 0.577; not a constant
    other = collect(task, act, 7, jax.random.key(4))
    assert not np.array_equal(whole.actions, other.actions)


def test_parse_policy_rejects_garbage_and_wrong_sizes():
    with pytest.raises(BadInputError, match="constant:V"):
        artifacts.parse_policy("constant:abc")
    with pytest.raises(BadInputError, match="cannot parse policy"):
        artifacts.parse_policy("greedy")
    with pytest.raises(BadInputError, match="2 action dimensions"):
        artifacts.behaviour(
            artifacts.parse_policy("constant:0.1,0.2,0.3"), make_task("bear-populations", 5)
        )


def test_cli_collect_round_trip_and_json_summary(tmp_path):
    out = tmp_path / "data"
    result = run(
        "collect",
        "--task",
        "cancer",
        "--horizon",
        12,
        "--episodes",
        9,
        "--seed",
        5,
        "--out",
        out,
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    episodes, meta = artifacts.load_dataset(out)
    assert episodes.observations.shape == (9, 13, 2)
    assert (
        meta["kind"] == "dataset"
        and meta["task"]["name"] == "cancer"
        and meta["task"]["horizon"] == 12
    )
    assert meta["seed"] == 5 and meta["policy"] == "random" and meta["episodes"] == 9
    assert meta["environment"]["versions"]["jax"] == jax.__version__
    returns = episodes.rewards.sum(-1)
    assert summary["mean_return"] == pytest.approx(float(returns.mean()), rel=1e-6)
    assert summary["min_return"] == pytest.approx(float(returns.min()), rel=1e-6)
    # The task can be rebuilt exactly from the directory.
    assert artifacts.task_from_meta(meta) == make_task("cancer", 12)
    assert "Collected 9 episodes" in result.stderr


def test_same_seed_gives_byte_identical_arrays(tmp_path):
    for name in ("a", "b"):
        assert (
            run(
                "collect",
                "--task",
                "bacteria",
                "--horizon",
                8,
                "-n",
                5,
                "--seed",
                1,
                "--out",
                tmp_path / name,
            ).exit_code
            == 0
        )
    (ea, _), (eb, _) = (
        artifacts.load_dataset(tmp_path / "a"),
        artifacts.load_dataset(tmp_path / "b"),
    )
    for a, b in zip(ea, eb):
        assert a.tobytes() == b.tobytes()


def test_task_params_are_applied_and_recorded(tmp_path):
    out = tmp_path / "d"
    result = run(
        "collect", "--task", "cancer", "--horizon", 5, "-n", 2, "--task-param", "T=10", "--out", out
    )
    assert result.exit_code == 0, result.stderr
    meta = store.read_meta(out, "dataset")
    assert meta["task"]["params"]["T"] == 10.0
    assert meta["task"]["dt"] == pytest.approx(2.0)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--task", "nope"], "unknown task 'nope'; choose one of: cancer"),
        (["--task", "cancer", "--horizon", "0"], "horizon must be an integer >= 1"),
        (["--task", "cancer", "--episodes", "0"], "--episodes must be at least 1"),
        (["--task", "cancer", "--policy", "constant:x"], "cannot parse policy"),
        (["--task", "cancer", "--task-param", "bogus=1"], "has no parameter 'bogus'"),
        (["--task", "cancer", "--task-param", "T"], "NAME=VALUE"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "out"
    result = run("collect", *args, "--out", out)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stderr.strip().count("\n") == 0 or "Error:" in result.stderr.splitlines()[0]
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_existing_out_needs_overwrite_and_is_replaced_only_when_complete(tmp_path):
    out = tmp_path / "d"
    assert run("collect", "--task", "cancer", "--horizon", 4, "-n", 2, "--out", out).exit_code == 0
    before = (out / "meta.json").read_text()
    result = run("collect", "--task", "cancer", "--horizon", 4, "-n", 3, "--out", out)
    assert result.exit_code == 2 and "--overwrite" in result.stderr
    assert (out / "meta.json").read_text() == before
    assert (
        run(
            "collect", "--task", "cancer", "--horizon", 4, "-n", 3, "--out", out, "--overwrite"
        ).exit_code
        == 0
    )
    assert store.read_meta(out)["episodes"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # no staging or trash left behind


def test_policy_dir_of_wrong_kind_is_refused(tmp_path):
    out = tmp_path / "d"
    assert run("collect", "--task", "cancer", "--horizon", 4, "-n", 2, "--out", out).exit_code == 0
    result = run(
        "collect",
        "--task",
        "cancer",
        "--horizon",
        4,
        "-n",
        2,
        "--policy",
        out,
        "--out",
        tmp_path / "e",
    )
    assert result.exit_code == 2
    assert "holds a dataset, but a policy is expected" in result.stderr


def test_split_keys_are_fold_ins_so_chunks_need_no_full_key_array():
    from awmctl.rollouts import episode_keys

    key = jax.random.key(11)
    np.testing.assert_array_equal(
        jax.random.key_data(episode_keys(key, 100, 140)),
        jax.random.key_data(jax.random.split(key, 1000)[100:140]),
    )


def test_a_dataset_written_in_parts_under_a_memory_cap_equals_the_one_written_at_once(tmp_path):
    from awmctl.artifacts import load_dataset

    whole = run(
        "collect",
        "--task",
        "cancer",
        "--horizon",
        20,
        "-n",
        100,
        "--seed",
        4,
        "--out",
        tmp_path / "whole",
        "--json",
    )
    parts = run(
        "collect",
        "--task",
        "cancer",
        "--horizon",
        20,
        "-n",
        100,
        "--seed",
        4,
        "--max-memory",
        0.01,
        "--out",
        tmp_path / "parts",
        "--json",
    )
    assert whole.exit_code == 0 and parts.exit_code == 0, parts.stderr
    a, meta_a = load_dataset(tmp_path / "whole")
    b, meta_b = load_dataset(tmp_path / "parts")
    assert "parts" not in meta_a and meta_b["parts"] == [15] * 6 + [
        10
    ]  # 0.01 MB / 2 = 15 episodes of 332 bytes
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    sa, sb = json.loads(whole.stdout), json.loads(parts.stdout)
    for k in ("mean_return", "std_return", "min_return", "max_return"):  # streamed statistics
        assert sa[k] == pytest.approx(sb[k], rel=1e-9)
    assert (
        run(
            "fit-model",
            "--data",
            tmp_path / "parts",
            "--model",
            "markov-mlp",
            "--steps",
            20,
            "--log-every",
            10,
            "--out",
            tmp_path / "model",
        ).exit_code
        == 0
    )


@pytest.mark.slow
def test_collecting_stays_within_its_memory_cap(tmp_path):
    """Peak memory of a 645 MB collection with a 32 MB cap stays far below the data's size."""
    import subprocess
    import sys

    code = (
        "import resource, sys; from awmctl.cli import app; sys.argv = ['awmctl'] + sys.argv[1:]\n"
        "try:\n    app()\nexcept SystemExit as e:\n    assert e.code in (0, None)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )

    def peak_mb(*args) -> float:
        out = subprocess.run(
            [sys.executable, "-c", code, "collect", "--task", "cancer", "--horizon", "100", *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert out.returncode == 0, out.stderr
        return int(out.stdout.strip().splitlines()[-1]) / 1024  # ru_maxrss is in KB on Linux

    baseline = peak_mb("-n", "4096", "--out", str(tmp_path / "small"))
    capped = peak_mb("-n", "400000", "--max-memory", "32", "--out", str(tmp_path / "big"))
    assert (tmp_path / "big" / "parts").is_dir()
    assert capped < baseline + 200, (baseline, capped)  # the data alone is 645 MB
