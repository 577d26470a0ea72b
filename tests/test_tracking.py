"""Experiment tracking: TensorBoard event files (read back with TensorBoard's own reader) and
Weights & Biases in offline mode (its run file read back record by record), continued without a
repeated step when a run resumes.

The command-line round trip (a run stopped by SIGTERM and resumed, with ``--wandb``) is in
``test_preemption.py``; these tests check the trackers themselves, without JAX.
"""

import json
import struct
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from awmctl.artifacts.tracking import Tracking, series


def tensorboard_scalars(directory: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series of the event files in ``directory`` (not its subdirectories)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(directory))
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }


def tensorboard_plugin_tags(directory: Path, plugin: str) -> list[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(directory))
    events.Reload()
    return sorted(events.PluginTagToContent(plugin))


_BLOCK = 32768  # W&B's run file is a LevelDB-style log: 32 KiB blocks of framed records


def wandb_records(path: Path):
    """The protobuf records of one W&B run file (``run-ID.wandb``)."""
    from wandb.proto import wandb_internal_pb2

    raw = path.read_bytes()
    assert raw[:4] == b":W&B"
    pos, pending = 7, b""  # after the file's header: ':W&B', a magic number, a version
    while pos + 7 <= len(raw):
        left = _BLOCK - pos % _BLOCK
        if left < 7:  # a block's tail too short for a record header is padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", raw[pos : pos + 7])
        if kind == 0 and length == 0:  # zero padding to the end of the block
            pos += left
            continue
        pending += raw[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a whole record, or the last piece of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def wandb_history(run_dir: Path) -> tuple[set[str], list[tuple[int, dict[str, float]]]]:
    """The W&B run ids under ``run_dir/wandb`` and every history row they hold, in order."""
    ids, rows = set(), []
    for path in sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb")):
        for record in wandb_records(path):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                ids.add(record.run.run_id)
            elif kind == "history":
                items = {
                    item.key or "/".join(item.nested_key): json.loads(item.value_json)
                    for item in record.history.item
                }
                rows.append((int(items.pop("_step")), items))
    return ids, rows


def test_series_are_the_mean_and_each_seed_and_name_extra_values():
    record = {"step": 3, "loss": [1.0, 3.0], "r2": [[0.5, 0.7], [0.1, 0.3]], "lr": 0.5}
    mean, seeds = series(record, per_seed=True)
    assert mean == {"loss": 2.0, "r2/0": pytest.approx(0.3), "r2/1": pytest.approx(0.5), "lr": 0.5}
    assert seeds == [
        {"loss": 1.0, "r2/0": 0.5, "r2/1": 0.7},
        {"loss": 3.0, "r2/0": 0.1, "r2/1": 0.3},
    ]
    # one thing trained: its values as they are
    mean, seeds = series({"step": 3, "loss": 0.25, "r2": [0.9]}, per_seed=False)
    assert mean == {"loss": 0.25, "r2": 0.9}
    assert seeds == [mean]


RECORDS = [{"step": s, "ret": [float(s), 2.0 * s], "loss": 1.0 / s} for s in (10, 20, 30, 40)]
CONFIG = {"lr": 1e-3, "sizes": {"width": 64}, "seeds": [3, 4], "note": None}


def track(work: Path, kept, new, failed=False, wandb=True):
    tracking = Tracking(
        work,
        seeds=[3, 4],
        per_seed=True,
        config=CONFIG,
        score="ret",
        records=kept,
        wandb_project="awmctl-test" if wandb else None,
    )
    for record in new:
        tracking.log(record)
    tracking.close(failed=failed)


def test_a_resumed_run_continues_its_series_without_a_repeated_step(tmp_path):
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    whole.mkdir(), resumed.mkdir()
    track(whole, [], RECORDS)
    # interrupted after step 30 was logged; its latest checkpoint was at step 20, so the rerun
    # keeps records 10 and 20 and makes 30 and 40 again
    track(resumed, [], RECORDS[:3], failed=True)
    track(resumed, RECORDS[:2], RECORDS[2:])

    for run in (whole, resumed):
        scalars = tensorboard_scalars(run / "tensorboard")
        assert scalars["ret"] == [(s, 1.5 * s) for s in (10, 20, 30, 40)]  # the mean of the seeds
        assert [v for _, v in scalars["loss"]] == pytest.approx([0.1, 0.05, 1 / 30, 0.025])
        assert tensorboard_scalars(run / "tensorboard" / "seed_4")["ret"] == [
            (s, 2.0 * s) for s in (10, 20, 30, 40)
        ]
        # the config: as hparams (TensorBoard's HPARAMS tab) and as text
        assert "_hparams_/experiment" in tensorboard_plugin_tags(run / "tensorboard", "hparams")
        assert tensorboard_plugin_tags(run / "tensorboard", "text") == ["config/text_summary"]

        ids, rows = wandb_history(run)
        assert len(ids) == 1  # the resumed run continued the same W&B run
        assert [step for step, _ in rows] == [10, 20, 30, 40]  # each step sent once
        assert [row["ret"] for _, row in rows] == [1.5 * s for s in (10, 20, 30, 40)]
        assert [row["seed_3/ret"] for _, row in rows] == [float(s) for s in (10, 20, 30, 40)]


def wandb_config(work: Path) -> tuple[dict, set[str]]:
    """The config W&B recorded for the run under ``work`` and the projects its run records name.
    W&B writes the config given to ``init`` in the run record or in config records of its own,
    whichever its service gets to first: both are read."""
    found, projects = {}, set()
    for path in work.glob("wandb/offline-run-*/run-*.wandb"):
        for record in wandb_records(path):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                projects.add(record.run.project)
                found.update({i.key: json.loads(i.value_json) for i in record.run.config.update})
            elif kind == "config":
                found.update({i.key: json.loads(i.value_json) for i in record.config.update})
    return found, projects


def test_wandb_gets_the_project_and_the_config(tmp_path):
    track(tmp_path, [], RECORDS[:1])
    # W&B's service may still be writing the run file when finish() returns: read until the
    # config is there (a few seconds at most), then check it
    deadline = time.monotonic() + 30
    found, projects = wandb_config(tmp_path)
    while "lr" not in found and time.monotonic() < deadline:
        time.sleep(0.5)
        found, projects = wandb_config(tmp_path)
    assert projects == {"awmctl-test"}
    assert found["lr"] == 1e-3
    assert found["sizes"] == {"width": 64}


def test_without_wandb_only_tensorboard_is_written(tmp_path):
    track(tmp_path, [], RECORDS, wandb=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tensorboard"]
    assert np.allclose(
        [v for _, v in tensorboard_scalars(tmp_path / "tensorboard")["ret"]], [15, 30, 45, 60]
    )


def test_wandb_without_its_package_is_refused_in_one_line_before_any_work(tmp_path, monkeypatch):
    from conftest import run

    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb fails
    out = tmp_path / "policy"
    result = run(
        "optimize-policy", "--model", "simulator", "--task", "cancer", "--horizon", 8,
        "--out", out, "--wandb", "awmctl-test",
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "pip install 'awmctl[wandb]'" in result.stderr
    assert not out.exists() and not out.with_name("policy.partial").exists()
