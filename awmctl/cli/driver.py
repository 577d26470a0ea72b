"""The one resumable driver: it runs any :class:`~awmctl.algorithms.Algorithm` to the end.

It owns what every training command shares: the working directory (``OUT.partial`` until the
run is complete), resuming from the latest checkpoint, sharding the seeds over the devices, the
progress bar, ``metrics.jsonl``, the best-so-far parameters of each seed, completing checkpoints
in flight on Ctrl-C, and the learning-curve plot. Each command builds its algorithm, calls
:func:`train`, then writes its own results into ``outcome.work`` and finishes the run.
"""

from __future__ import annotations

import dataclasses
import os
import time as time_module
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from awmctl import artifacts, plots
from awmctl.algorithms import Algorithm, BestSoFar, shard_seeds
from awmctl.algorithms import run as run_to_end
from awmctl.cli.common import Terminated, deferring_termination, err_console, progress_bar
from awmctl.errors import BadInputError
from awmctl.timing import Clock, clock

#: Changes whenever the layout of a run's checkpoints does, so that a run left unfinished by an
#: older awmctl is refused with a reason instead of failing to restore.
CHECKPOINT_FORMAT = 3
#: ``AWMCTL_CHECKPOINT_SECONDS``: the least time between two checkpoints of a run (default 60;
#: 0 checkpoints after every chunk). An Orbax save costs tens of milliseconds, which adds up
#: over the 157 evaluation periods of an online run; a killed run loses at most this much work.
CHECKPOINT_SECONDS_ENV = "AWMCTL_CHECKPOINT_SECONDS"


def checkpoint_seconds() -> float:
    raw = os.environ.get(CHECKPOINT_SECONDS_ENV, "60")
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise BadInputError(f"{CHECKPOINT_SECONDS_ENV} must be a number of seconds >= 0, got {raw!r}")
    return seconds


@dataclasses.dataclass
class Outcome:
    """A finished training run, still in its working directory ``work``."""

    state: Any
    params: Any  # the final parameters of every seed (Algorithm.params)
    best: BestSoFar
    records: list[dict[str, Any]]
    run: artifacts.Run
    time: Clock  # of this invocation (a resumed run counts only what it did itself)

    @property
    def work(self) -> Path:
        return self.run.work

    def final(self, key: str) -> np.ndarray:
        """Every seed's value of a metric in the last record."""
        return np.atleast_1d(np.asarray(self.records[-1][key], np.float64))


def open_run(out: Path, kind: str, config: dict[str, Any], overwrite: bool) -> artifacts.Run:
    """The working directory of a training run; ``config`` decides whether a run left unfinished
    there may be resumed (the same settings) or is refused."""
    checkpoint_seconds()  # a bad setting is refused before anything is written
    return artifacts.Run(out, kind, {**config, "checkpoint_format": CHECKPOINT_FORMAT}, overwrite)


def train(algorithm: Algorithm, run: artifacts.Run, seeds: Sequence[int], description: str, title: str,
          per_seed: bool = True) -> Outcome:
    """Run ``algorithm`` for ``seeds`` to the end in ``run``, resuming from its latest checkpoint.

    ``per_seed``: log each metric as a list over seeds (False for commands that train one thing:
    the values of the only seed). ``title`` heads the learning-curve plot.
    """
    interval = checkpoint_seconds()
    try:
        state = algorithm.init(seeds)
        best = BestSoFar.start(algorithm.params(state), len(seeds), algorithm.higher_is_better)
        restored = run.restore_latest({"state": state, "best": best.checkpoint()})
        if restored is not None:
            saved, step = restored
            state, best = saved["state"], best.restore(saved["best"])
            err_console.print(f"Resuming from {algorithm.unit} {step} in {run.work}")
        with clock() as time, progress_bar(description, algorithm.total) as update, \
                deferring_termination() as terminating:
            update(algorithm.progress(state))

            last_save = time_module.monotonic()

            def record(state: Any, best: BestSoFar, metrics: dict[str, np.ndarray]) -> None:
                nonlocal last_save
                step = algorithm.progress(state)
                run.log({"step": step, **{k: (v if per_seed else v[0]).tolist() for k, v in metrics.items()}})
                # The last chunk's state is saved with the results; a resumed run restarts from
                # the latest checkpoint and repeats the chunks after it exactly. After SIGTERM
                # (a scheduler's notice), this chunk's state is saved and the run stops.
                due = time_module.monotonic() - last_save >= interval or terminating()
                if due and not algorithm.done(state):
                    run.save(step, {"state": state, "best": best.checkpoint()})
                    last_save = time_module.monotonic()
                if terminating() and not algorithm.done(state):
                    raise Terminated
                update(step, f"{algorithm.score} {np.mean(metrics[algorithm.score]):.4g}")

            state, best = run_to_end(algorithm, shard_seeds(state, algorithm.sequential_seeds), best, record)
    except BaseException:
        run.release()  # checkpoints in flight are completed, not lost; --out is free again
        raise
    finally:
        run.close()
    records = run.metrics()
    _plot(algorithm, records, run.work, title)
    return Outcome(state, algorithm.params(state), best, records, run, time)


def _plot(algorithm: Algorithm, records: list[dict[str, Any]], work: Path, title: str) -> None:
    curve = algorithm.curve
    if curve.per_seed:
        values = np.asarray([np.atleast_1d(r[curve.metrics[0]]) for r in records], np.float64)  # [points, seeds]
        plots.seed_curves([r["step"] for r in records], values, work / curve.file, title,
                          ylabel=curve.ylabel, xlabel=curve.xlabel)
    else:
        plots.learning_curves(records, curve.metrics, work / curve.file, title, log_y=curve.log_scale,
                              xlabel=curve.xlabel)


__all__ = ["Outcome", "open_run", "train"]
