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
import re
import shutil
import tempfile
import time as time_module
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from awmctl import artifacts, plots
from awmctl.algorithms import SEED_MODES, Algorithm, BestSoFar, default_seed_mode, shard_seeds
from awmctl.algorithms import run as run_to_end
from awmctl.cli.common import Terminated, deferring_termination, err_console
from awmctl.cli.progress import progress_bar
from awmctl.errors import BadInputError, RunFailedError
from awmctl.timing import Clock, clock

#: Changes whenever the layout of a run's checkpoints does, so that a run left unfinished by an
#: older awmctl is refused with a reason instead of failing to restore.
CHECKPOINT_FORMAT = 3
#: Settings a run's config gained after runs were already being made, each with the value every run
#: before it had: a run left unfinished by an older awmctl lacks the key and still resumes. A new
#: setting whose default keeps the old behaviour belongs here.
SETTINGS_ADDED = {
    "online.trust_check": "completed",
    "online.trust_restore": False,
    "online.ensemble": 1,
    "online.pessimism": 0.0,
    "online.exploration": 0.0,
    "online.explore_steps": 0,
    "online.explore_offset": 0.0,
    "online.trust_bound": False,
    "online.keep_best": 0.0,
    "bpo.pessimism": 0.0,
    "fit.ensemble": 1,
}
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
        raise BadInputError(
            f"{CHECKPOINT_SECONDS_ENV} must be a number of seconds >= 0, got {raw!r}"
        )
    return seconds


#: ``AWMCTL_SEEDS=vmap|sequential``: how the seeds of a run share a compiled call (default: one
#: after another on a CPU, vectorised on an accelerator; ``algorithms.default_seed_mode``)
SEEDS_ENV = "AWMCTL_SEEDS"


def seed_mode() -> str:
    """The seed mode a new run gets (``AWMCTL_SEEDS``, else the backend's default): every
    algorithm's config records it, so that a run resumes only with the mode it began with."""
    raw = os.environ.get(SEEDS_ENV, "").strip().lower()
    if not raw:
        return default_seed_mode()
    if raw not in SEED_MODES:
        raise BadInputError(f"{SEEDS_ENV} must be vmap or sequential, got {raw!r}")
    return raw


@dataclasses.dataclass
class Outcome:
    """A finished training run, still in its working directory ``work``."""

    state: Any
    params: Any  # the final parameters of every seed (Algorithm.params)
    best: BestSoFar
    records: list[dict[str, Any]]
    run: artifacts.Run
    time: Clock  # of this invocation (a resumed run counts only what it did itself)
    #: False in the other processes of a run spread over several (only process 0 writes)
    main: bool = True

    @property
    def work(self) -> Path:
        return self.run.work

    def final(self, key: str) -> np.ndarray:
        """Every seed's value of a metric in the last record."""
        return np.atleast_1d(np.asarray(self.records[-1][key], np.float64))


class FollowerRun:
    """What the other processes of a multi-process run hold instead of the run directory: they
    compute their seeds and hand them to process 0, which alone reads and writes the disk."""

    def __init__(self) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="awmctl-follower-"))

    def restore_latest(self, like: Any) -> None:
        return None

    def save(self, step: int, state: Any) -> None:
        pass

    def log(self, record: dict[str, Any]) -> None:
        pass

    def metrics(self) -> list[dict[str, Any]]:
        return []

    def close(self) -> None:
        pass

    def release(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)

    def discard(self) -> None:
        self.release()

    def finish(self, meta: dict[str, Any]) -> Path:
        self.release()
        return self.work


def open_run(out: Path, kind: str, config: dict[str, Any], overwrite: bool) -> artifacts.Run:
    """The working directory of a training run; ``config`` decides whether a run left unfinished
    there may be resumed (the same settings) or is refused. In a run spread over several
    processes, only process 0 opens it."""
    checkpoint_seconds()  # a bad setting is refused before anything is written
    if jax.process_index() != 0:
        return FollowerRun()  # type: ignore[return-value]
    return artifacts.Run(
        out, kind, {**config, "checkpoint_format": CHECKPOINT_FORMAT}, overwrite, SETTINGS_ADDED
    )


def train(
    algorithm: Algorithm,
    run: artifacts.Run,
    seeds: Sequence[int],
    description: str,
    title: str,
    per_seed: bool = True,
    wandb_project: str | None = None,
) -> Outcome:
    """Run ``algorithm`` for ``seeds`` to the end in ``run``, resuming from its latest checkpoint.

    ``per_seed``: log each metric as a list over seeds (False for commands that train one thing:
    the values of the only seed). ``title`` heads the learning-curve plot. Metrics go to
    ``metrics.jsonl``, TensorBoard and, given ``wandb_project``, W&B (``artifacts.tracking``).
    """
    interval = checkpoint_seconds()
    processes = Processes(len(seeds))
    tracking = None
    try:
        state, best = _start(algorithm, run, seeds, processes)
        if processes.main:
            tracking = artifacts.Tracking(
                run.work,
                seeds=seeds,
                per_seed=per_seed,
                config=run.config,
                score=algorithm.score,
                records=run.metrics(),
                wandb_project=wandb_project,
            )
        start = algorithm.progress(state)
        with (
            clock() as time,
            progress_bar(description, algorithm.total, processes.main, start) as update,
            deferring_termination() as terminating,
        ):
            update(start)
            record = ChunkRecorder(
                algorithm, run, processes, tracking, per_seed, interval, terminating, update
            )
            state, best = run_to_end(
                algorithm, shard_seeds(state, algorithm.sequential_seeds), best, record
            )
            state, best = processes.gather(state), processes.gather_best(best)
    except BaseException as err:
        if tracking is not None:
            tracking.close(failed=True)
            tracking = None
        instead = _after_failure(err, run)
        if instead is None:
            raise
        raise instead from None
    finally:
        if tracking is not None:
            tracking.close()
        run.close()
    records = run.metrics()
    if processes.main:
        _plot(algorithm, records, run.work, title)
    else:
        run.release()  # a follower writes no results: its scratch directory goes now
    return Outcome(state, algorithm.params(state), best, records, run, time, processes.main)


def _start(
    algorithm: Algorithm, run: artifacts.Run, seeds: Sequence[int], processes: Processes
) -> tuple[Any, BestSoFar]:
    """Every seed's initial state and best-so-far, or those of the run's latest checkpoint;
    this process's share of them."""
    state = algorithm.init(seeds)
    best = BestSoFar.start(algorithm.params(state), len(seeds), algorithm.higher_is_better)
    if processes.main and artifacts.torn_metrics(run.work):
        err_console.print(
            f"Note: the last line of {run.work / 'metrics.jsonl'} was torn (the run was stopped "
            "while writing it); it is dropped, and its step is made again"
        )
    restored = processes.from_main(
        run.restore_latest({"state": state, "best": best.checkpoint()}),
        ({"state": state, "best": best.checkpoint()}, 0),
    )
    if restored is not None:
        saved, step = restored
        state, best = saved["state"], best.restore(saved["best"])
        if processes.main:
            err_console.print(f"Resuming from {algorithm.unit} {step} in {run.work}")
    # Each process trains its share of the seeds (all of them in a one-process run).
    return processes.share(state), processes.share_best(best)


@dataclasses.dataclass
class ChunkRecorder:
    """What follows every chunk of a run: its metrics logged (``metrics.jsonl``, tracking), a
    checkpoint when one is due or SIGTERM came, and the progress bar moved on."""

    algorithm: Algorithm
    run: artifacts.Run
    processes: Processes
    tracking: artifacts.Tracking | None
    per_seed: bool
    interval: float  # the least seconds between two checkpoints
    terminating: Callable[[], bool]
    update: Callable[..., None]  # the progress bar's
    last_save: float = dataclasses.field(default_factory=time_module.monotonic)

    def __call__(self, state: Any, best: BestSoFar, metrics: dict[str, np.ndarray]) -> None:
        algorithm, processes = self.algorithm, self.processes
        step = algorithm.progress(state)
        metrics = processes.gather(metrics)
        logged = {
            "step": step,
            **{k: (v if self.per_seed else v[0]).tolist() for k, v in metrics.items()},
        }
        self.run.log(logged)
        if self.tracking is not None:
            self.tracking.log(logged)
        # The last chunk's state is saved with the results; a resumed run restarts from the
        # latest checkpoint and repeats the chunks after it exactly. After SIGTERM (a
        # scheduler's notice), this chunk's state is saved and the run stops. Process 0's clock
        # decides for every process, and SIGTERM to any process stops them all.
        due, stopping = processes.agree(
            time_module.monotonic() - self.last_save >= self.interval, self.terminating()
        )
        if (due or stopping) and not algorithm.done(state):
            self.run.save(step, processes.gather({"state": state, "best": best.checkpoint()}))
            self.last_save = time_module.monotonic()
        if stopping and not algorithm.done(state):
            raise Terminated
        self.update(step, f"{algorithm.score} {np.mean(metrics[algorithm.score]):.4g}")


def _after_failure(err: BaseException, run: artifacts.Run) -> BaseException | None:
    """Leave the run's directory as the failure calls for: nothing of a new run refused for bad
    input (XLA's out of memory included, which is returned as bad input to raise instead), the
    checkpoints of any other failure completed and kept (a run failure's message then says so:
    returned to raise instead). None: re-raise ``err`` as it is."""
    refused = out_of_memory(err) if isinstance(err, jax.errors.JaxRuntimeError) else None
    if refused is not None or isinstance(err, BadInputError):
        run.discard()  # a new run refused for bad input leaves nothing behind
        return refused
    run.release()  # checkpoints in flight are completed, not lost; --out is free again
    if isinstance(err, RunFailedError):
        return RunFailedError(
            f"{err} ({run.work} is kept: the same command resumes from its latest "
            "checkpoint, --overwrite starts over)"
        )
    return None


def out_of_memory(err: Exception) -> BadInputError | None:
    """XLA's out-of-memory error as bad input (the shapes asked for more than the machine has),
    or None for any other runtime error."""
    text = str(err)
    if "RESOURCE_EXHAUSTED" not in text:
        return None
    found = re.search(r"allocating (\d+) bytes", text)
    need = f" ({int(found.group(1)) / 2**30:,.1f} GiB in one buffer)" if found else ""
    return BadInputError(
        f"the run needs more memory than this machine has{need}: a shorter --horizon, a "
        "smaller --batch-size, fewer --seeds or a smaller model needs less"
    )


class Processes:
    """The processes of one run (``AWMCTL_DISTRIBUTED=1`` under a multi-process launcher): each
    trains a contiguous block of the seeds, and process 0 gathers them to log, checkpoint and
    write. With one process every method is the identity."""

    def __init__(self, seeds: int):
        self.count, self.index = jax.process_count(), jax.process_index()
        self.main = self.index == 0
        if seeds % self.count:
            raise BadInputError(
                f"--seeds {seeds} cannot be shared by the {self.count} processes of this job: "
                f"give a multiple of {self.count}"
            )
        self.block = seeds // self.count

    def share(self, tree: Any) -> Any:
        """This process's block of a pytree whose leaves have a leading seed axis."""
        if self.count == 1:
            return tree
        lo = self.index * self.block
        return jax.tree_util.tree_map(lambda x: x[lo : lo + self.block], tree)

    def share_best(self, best: BestSoFar) -> BestSoFar:
        if self.count == 1:
            return best
        return BestSoFar(
            self.share(best.params), *self.share((best.scores, best.steps)), best.higher_is_better
        )

    def gather(self, tree: Any) -> Any:
        """Every process's block, in process order (each process calls it at the same point)."""
        if self.count == 1:
            return tree
        from jax.experimental import multihost_utils

        return jax.tree_util.tree_map(
            np.asarray, multihost_utils.process_allgather(tree, tiled=True)
        )

    def gather_best(self, best: BestSoFar) -> BestSoFar:
        if self.count == 1:
            return best
        params, scores, steps = self.gather((best.params, best.scores, best.steps))
        return BestSoFar(params, scores, steps, best.higher_is_better)

    def agree(self, due: bool, stopping: bool) -> tuple[bool, bool]:
        """Process 0's checkpoint decision, and whether any process was asked to stop."""
        if self.count == 1:
            return due, stopping
        flags = self.gather(np.asarray([[due, stopping]]))
        return bool(flags[0, 0]), bool(flags[:, 1].any())

    def from_main(self, value: Any, like: Any) -> Any:
        """Process 0's ``value`` (None or a pytree shaped like ``like``) in every process."""
        if self.count == 1:
            return value
        from jax.experimental import multihost_utils

        found = bool(multihost_utils.broadcast_one_to_all(np.asarray(value is not None)))
        if not found:
            return None
        source = value if self.main else like
        tree = multihost_utils.broadcast_one_to_all((source[0], np.asarray(source[1], np.int64)))
        return jax.tree_util.tree_map(np.asarray, tree[0]), int(tree[1])


def _plot(algorithm: Algorithm, records: list[dict[str, Any]], work: Path, title: str) -> None:
    curve = algorithm.curve
    if curve.per_seed:
        values = np.asarray(
            [np.atleast_1d(r[curve.metrics[0]]) for r in records], np.float64
        )  # [points, seeds]
        plots.seed_curves(
            [r["step"] for r in records],
            values,
            work / curve.file,
            title,
            ylabel=curve.ylabel,
            xlabel=curve.xlabel,
        )
    else:
        plots.learning_curves(
            records,
            curve.metrics,
            work / curve.file,
            title,
            log_y=curve.log_scale,
            xlabel=curve.xlabel,
            ylabel=curve.ylabel,
            legend=curve.legend,
        )


__all__ = ["Outcome", "open_run", "train"]
