"""Storage: atomic output directories, meta checks, damaged checkpoints, non-finite data."""

import json
import shutil

import jax
import numpy as np
import pytest

from awmctl import artifacts, store
from awmctl.errors import BadInputError
from awmctl.rollouts import collect, random_controller
from awmctl.tasks import make_task


@pytest.fixture
def dataset_dir(tmp_path):
    task = make_task("cancer", 6)
    batch = collect(task, random_controller(task), 4, jax.random.key(0))
    out = tmp_path / "ds"
    artifacts.save_dataset(out, batch, task, {"policy": "random", "seed": 0})
    return out, batch


def test_save_and_restore_are_exact(dataset_dir):
    out, batch = dataset_dir
    loaded, meta = artifacts.load_dataset(out)
    for a, b in zip(batch, loaded):
        np.testing.assert_array_equal(a, b)
    assert meta["leaves"]["['observations']"] == {"shape": [4, 7, 2], "dtype": "float32"}


def test_missing_and_foreign_directories_are_refused(tmp_path):
    with pytest.raises(BadInputError, match="does not exist"):
        store.read_meta(tmp_path / "missing")
    (tmp_path / "foreign").mkdir()
    with pytest.raises(BadInputError, match="has no meta.json"):
        store.read_meta(tmp_path / "foreign")
    (tmp_path / "foreign" / "meta.json").write_text("{not json")
    with pytest.raises(BadInputError, match="damaged"):
        store.read_meta(tmp_path / "foreign")


def test_wrong_kind_and_unfinished_runs_are_refused(dataset_dir):
    out, _ = dataset_dir
    with pytest.raises(BadInputError, match="holds a dataset, but a model is expected"):
        store.read_meta(out, "model")
    meta = json.loads((out / "meta.json").read_text())
    meta["status"] = "running"
    (out / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(BadInputError, match="unfinished dataset run"):
        artifacts.load_dataset(out)


def test_truncated_checkpoint_is_reported_as_damaged(dataset_dir):
    out, _ = dataset_dir
    for child in (out / "arrays").iterdir():
        if child.is_dir():
            shutil.rmtree(child)
    with pytest.raises(BadInputError, match="damaged or incomplete"):
        artifacts.load_dataset(out)


def test_shape_mismatch_names_the_leaf(dataset_dir):
    out, _ = dataset_dir
    meta = json.loads((out / "meta.json").read_text())
    meta["episodes"] = 5  # claims more episodes than the arrays hold
    (out / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(
        BadInputError,
        match=r"array \['actions'\] is float32\[4, 6, 1\], expected float32\[5, 6, 1\]",
    ):
        artifacts.load_dataset(out)


def test_nan_in_data_is_refused(tmp_path):
    task = make_task("cancer", 3)
    batch = collect(task, random_controller(task), 2, jax.random.key(0))
    obs = np.array(batch.observations)
    obs[1, 2, 0] = np.nan
    artifacts.save_dataset(tmp_path / "nan", batch._replace(observations=obs), task, {})
    with pytest.raises(BadInputError, match="observations contain NaN or Inf"):
        artifacts.load_dataset(tmp_path / "nan")


def test_failed_write_leaves_nothing_and_keeps_the_old_directory(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError), store.atomic_output_dir(out) as staging:
        (staging / "half").write_text("x")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    out.mkdir()
    (out / "keep").write_text("old")
    with pytest.raises(RuntimeError), store.atomic_output_dir(out, overwrite=True):
        raise RuntimeError("killed")
    assert (out / "keep").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_run_resumes_across_added_settings_and_checkouts_but_not_other_numbers(tmp_path):
    """An unfinished run resumes when its config differs only in what does not change its
    numbers: a setting added since (at the value older runs had) or the directory its task
    file lies in. A changed value, or a task file with other content, is refused by name."""
    task = {"name": "mine", "source": "/old/checkout/mine.py:Mine", "fingerprint": "sha256 aa"}
    old = {"task": task, "online": {"policy_lr": 1e-3}}
    added = {"online.trust_check": "completed", "bpo.seed_mode": "vmap"}  # no bpo: not filled
    store.ResumableRun(tmp_path / "run", "policy", old).close()

    def reopen(online, source="/new/place/mine.py:Mine", fingerprint="sha256 aa"):
        config = {"task": {**task, "source": source, "fingerprint": fingerprint}, "online": online}
        run = store.ResumableRun(tmp_path / "run", "policy", config, added=added)
        run.close()
        return run.resuming

    assert reopen({"policy_lr": 1e-3, "trust_check": "completed"})
    with pytest.raises(BadInputError, match=r"other settings \(online\.trust_check\)"):
        reopen({"policy_lr": 1e-3, "trust_check": "in-progress"})
    # The refused attempt left the run untouched; a file of other content is another task.
    with pytest.raises(BadInputError, match=r"other settings \(task\.fingerprint\)"):
        reopen({"policy_lr": 1e-3, "trust_check": "completed"}, fingerprint="sha256 bb")
    with pytest.raises(BadInputError, match=r"other settings \(task\.source\)"):
        reopen({"policy_lr": 1e-3, "trust_check": "completed"}, source="/new/theirs.py:Mine")
    assert store.comparable_config(old, added) == {
        "task": {**task, "source": "mine.py:Mine"},
        "online": {"policy_lr": 1e-3, "trust_check": "completed"},
    }
