"""Experiment tracking: a training run's metrics as TensorBoard event files, and on request in
Weights & Biases, besides ``metrics.jsonl``.

TensorBoard (written with tensorboardX, which needs only protobuf and numpy, both already here):

* ``OUT/tensorboard/`` holds one series per metric, the mean over the run's seeds, at the
  run's own steps (environment steps online, updates offline), and the run's configuration as
  hparams (comparable across runs in TensorBoard's HPARAMS tab) and as text;
* ``OUT/tensorboard/seed_<S>/`` (runs of several seeds) holds each seed's own series under the
  same names, so that TensorBoard overlays a run's seeds on its mean (filter them out with the
  regular expression ``^((?!seed_).)*$``).

A metric with more values per seed (a fitted model's R^2 per observation dimension) gets one
series per value (``val/final_r2/0``, ...). A resumed run rewrites the event files from the
records it keeps (those up to its latest checkpoint) and continues them, so that no step appears
twice.

Weights & Biases (``awmctl[wandb]``): the same series (the mean and each seed), the config, one
W&B run per awmctl run. Its id is kept in ``OUT/wandb/awmctl-run.json`` with the last step sent,
so that a resumed run continues the same W&B run and sends no step twice. W&B's own settings
(``WANDB_MODE=offline``, ``WANDB_ENTITY``, ``WANDB_API_KEY``) apply as usual; its local files go
under ``OUT/wandb/`` (``wandb sync OUT/wandb/offline-run-*`` uploads an offline run).
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from awmctl import store
from awmctl.errors import BadInputError

TENSORBOARD_DIR = "tensorboard"
WANDB_DIR = "wandb"
_WANDB_STATE = "awmctl-run.json"


def check_wandb_available() -> None:
    """Refuse ``--wandb`` before any work when the optional package is missing."""
    try:
        import wandb  # noqa: F401
    except ImportError:
        raise BadInputError(
            "--wandb (or WANDB_PROJECT) needs the wandb package: pip install 'awmctl[wandb]', "
            "or unset WANDB_PROJECT"
        ) from None


def series(
    record: dict[str, Any], per_seed: bool
) -> tuple[dict[str, float], list[dict[str, float]]]:
    """One logged record as scalar series: the mean over seeds, and each seed's own.

    ``per_seed``: each metric's first axis runs over the seeds (False: the run trains one thing
    and its values are that thing's). Values past the seed axis become ``name/i`` series; a
    single number in a per-seed record is the run's, not a seed's.
    """
    mean: dict[str, float] = {}
    seeds: list[dict[str, float]] = []
    for name, raw in record.items():
        if name == "step":
            continue
        values = np.asarray(raw, np.float64)
        if not per_seed:
            values = values[None]
        elif values.ndim == 0:  # one value for the whole run: the mean's series only
            mean[name] = float(values)
            continue
        per = values.reshape(values.shape[0], -1)  # [seeds, values]
        names = [name] if per.shape[1] == 1 else [f"{name}/{i}" for i in range(per.shape[1])]
        while len(seeds) < per.shape[0]:
            seeds.append({})
        for j, tag in enumerate(names):
            mean[tag] = float(np.mean(per[:, j]))
            for s in range(per.shape[0]):
                seeds[s][tag] = float(per[s, j])
    return mean, seeds


def _flat_config(config: dict[str, Any], prefix: str = "") -> dict[str, bool | int | float | str]:
    """The config as hparams (TensorBoard takes flat scalars): nested keys joined by '/', lists
    and None as their JSON text."""
    flat: dict[str, bool | int | float | str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flat_config(value, name + "/"))
        elif isinstance(value, bool | int | float | str):
            flat[name] = value
        else:
            flat[name] = json.dumps(value)
    return flat


class TensorBoardLog:
    """The event files under ``work/tensorboard`` (see the module's docstring)."""

    def __init__(
        self, work: Path, seeds: Sequence[int], per_seed: bool, config: dict[str, Any], score: str
    ):
        from tensorboardX import SummaryWriter
        from tensorboardX.summary import hparams

        root = Path(work) / TENSORBOARD_DIR
        shutil.rmtree(root, ignore_errors=True)  # rewritten from the kept records (resume)
        # flush_secs: a live run shows in TensorBoard within half a minute
        self.writer = SummaryWriter(str(root), flush_secs=30)
        self.seed_writers = (
            [SummaryWriter(str(root / f"seed_{s}"), flush_secs=30) for s in seeds]
            if per_seed and len(seeds) > 1
            else []
        )
        self.per_seed = per_seed
        for summary in hparams(_flat_config(config), {score: 0.0}):
            self.writer.file_writer.add_summary(summary)
        text = "```\n" + json.dumps(config, indent=2, sort_keys=True) + "\n```"
        self.writer.add_text("config", text)

    def log(self, record: dict[str, Any]) -> None:
        step = int(record["step"])
        mean, seeds = series(record, self.per_seed)
        for tag, value in mean.items():
            self.writer.add_scalar(tag, value, step)
        for writer, values in zip(self.seed_writers, seeds, strict=False):
            for tag, value in values.items():
                writer.add_scalar(tag, value, step)

    def close(self, failed: bool = False) -> None:
        for writer in [self.writer, *self.seed_writers]:
            writer.close()


class WandbLog:
    """One W&B run per awmctl run, continued when the awmctl run resumes."""

    def __init__(
        self,
        work: Path,
        project: str,
        name: str,
        seeds: Sequence[int],
        per_seed: bool,
        config: dict[str, Any],
    ):
        import wandb

        self.directory = Path(work) / WANDB_DIR
        self.directory.mkdir(exist_ok=True)
        state_file = self.directory / _WANDB_STATE
        try:
            state = json.loads(state_file.read_text())
        except (OSError, ValueError):
            state = {"id": uuid.uuid4().hex[:12], "last_step": -1}
        self.state_file, self.state = state_file, state
        self.per_seed, self.seeds = per_seed, list(seeds)
        self.run = wandb.init(
            project=project,
            name=name,
            id=state["id"],
            resume="allow",
            dir=str(work),  # W&B adds its own wandb/ folder: OUT/wandb/
            config=config,
            # W&B's console capture and system sampling are not awmctl's to turn on: the CLI
            # owns the terminal, and a batch job's log stays awmctl's
            settings=wandb.Settings(console="off", silent=True, x_disable_stats=True),
        )
        self._save_state()

    def _save_state(self) -> None:
        store.write_json_atomic(self.state_file, self.state)

    def log(self, record: dict[str, Any]) -> None:
        step = int(record["step"])
        if step <= self.state["last_step"]:
            return  # sent before the run was interrupted (a resumed run makes it again)
        mean, seeds = series(record, self.per_seed)
        data: dict[str, float] = dict(mean)
        if self.per_seed and len(self.seeds) > 1:
            for seed, values in zip(self.seeds, seeds, strict=False):
                data.update({f"seed_{seed}/{tag}": v for tag, v in values.items()})
        self.run.log(data, step=step)
        self.state["last_step"] = step
        self._save_state()

    def close(self, failed: bool = False) -> None:
        # a failed or interrupted run shows as such in W&B (a resumed one continues it)
        self.run.finish(exit_code=1 if failed else 0)


class Tracking:
    """Every tracker of a run: TensorBoard always, W&B when ``wandb_project`` is given.

    ``records``: the records the run already holds (a resumed run's, up to its latest
    checkpoint), written first so that the series continue where they stopped.
    """

    def __init__(
        self,
        work: Path,
        *,
        seeds: Sequence[int],
        per_seed: bool,
        config: dict[str, Any],
        score: str,
        records: Sequence[dict[str, Any]] = (),
        wandb_project: str | None = None,
    ):
        self.trackers: list[TensorBoardLog | WandbLog] = [
            TensorBoardLog(work, seeds, per_seed, config, score)
        ]
        try:
            if wandb_project:
                name = Path(work).name.removesuffix(".partial")
                self.trackers.append(WandbLog(work, wandb_project, name, seeds, per_seed, config))
            for record in records:
                self.log(record)
        except BaseException:
            self.close(failed=True)
            raise

    def log(self, record: dict[str, Any]) -> None:
        for tracker in self.trackers:
            tracker.log(record)

    def close(self, failed: bool = False) -> None:
        for tracker in self.trackers:
            tracker.close(failed)


__all__ = [
    "TENSORBOARD_DIR",
    "WANDB_DIR",
    "TensorBoardLog",
    "Tracking",
    "WandbLog",
    "check_wandb_available",
    "series",
]
