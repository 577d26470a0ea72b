"""Everything the commands exchange on disk: Orbax checkpoints of pytrees plus a ``meta.json``.

Layout of every output directory::

    DIR/meta.json          what made it (kind, command, task, sizes, versions, ...) + "leaves"
    DIR/arrays/            Orbax checkpoint of the main pytree (dataset arrays, model params)
    DIR/metrics.jsonl      (commands that train) one JSON object per logging step
    DIR/checkpoints/       (resumable commands) an Orbax CheckpointManager of training states

Atomicity: one-shot outputs are built in a hidden sibling directory and renamed into place
(:func:`atomic_output_dir`), so a killed command never leaves a directory that looks complete.
Resumable commands write ``meta.json`` with ``"status": "running"`` first and flip it to
``"complete"`` last; Orbax itself commits each checkpoint step by temp-then-rename.

Restoring is defensive: Orbax will happily restore part of a mismatched checkpoint, so the kind
and every leaf's name, shape and dtype recorded in ``meta.json`` are checked first, and any
error reading the arrays is reported as a damaged directory, not a traceback.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import importlib.metadata
import json
import os
import shutil
import socket
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from awmctl.errors import BadInputError, RunFailedError
from awmctl.tasks import task_identity

#: the layout of output directories; a directory of another format is refused, naming the
#: awmctl that wrote it (format 1: every version so far)
FORMAT_VERSION = 1
OLDEST_READABLE_FORMAT = 1
META_FILE = "meta.json"
ARRAYS_DIR = "arrays"
METRICS_FILE = "metrics.jsonl"


# ------------------------------------------------------------------------------- meta.json


def environment() -> dict[str, Any]:
    """Versions and numerics settings that decide whether numbers are reproducible."""
    versions = {}
    for pkg in ("awmctl", "jax", "jaxlib", "equinox", "optax", "orbax-checkpoint", "numpy"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "versions": versions,
        "python": sys.version.split()[0],
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "x64": bool(jax.config.jax_enable_x64),
        "prng_impl": str(jax.config.jax_default_prng_impl),
        "matmul_precision": str(jax.config.jax_default_matmul_precision),
        "awmctl_commit": source_commit(),
    }


def source_commit() -> str | None:
    """The git commit of awmctl's source when it runs from a checkout (an editable install), read
    from ``.git`` directly (no git process); None for an installed wheel. A checkout with local
    changes is not told apart from its commit."""
    git = Path(__file__).resolve().parent.parent / ".git"
    try:
        if git.is_file():  # a worktree: "gitdir: PATH"
            git = Path(git.read_text().split(":", 1)[1].strip())
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head
        ref = head[5:]
        roots = [git]  # a worktree keeps its branches in the repository's common directory
        if (git / "commondir").is_file():
            roots.append(git / (git / "commondir").read_text().strip())
        for root in roots:
            if (root / ref).is_file():
                return (root / ref).read_text().strip()
            if (root / "packed-refs").is_file():
                for line in (root / "packed-refs").read_text().splitlines():
                    if line.endswith(" " + ref):
                        return line.split()[0]
    except (OSError, IndexError):
        return None
    return None


def base_meta(kind: str, **fields: Any) -> dict[str, Any]:
    """The fields every ``meta.json`` starts with."""
    return {
        "kind": kind,
        "format_version": FORMAT_VERSION,
        "status": "complete",
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": sys.argv[:],
        "environment": environment(),
        **fields,
    }


def write_json_atomic(path: Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(jsonable(obj), indent=2, sort_keys=False) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` whole (a temporary file renamed over it): a kill leaves the
    old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_meta(
    directory: str | os.PathLike, kind: str | tuple[str, ...] | None = None
) -> dict[str, Any]:
    """Read and check ``DIR/meta.json``. ``kind`` restricts what is accepted.

    Raises :class:`BadInputError` with a one-line reason for a missing directory, a directory
    that awmctl did not write, an unfinished run, or a directory of the wrong kind.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise BadInputError(f"{directory} does not exist or is not a directory")
    meta_path = directory / META_FILE
    if not meta_path.is_file():
        raise BadInputError(
            f"{directory} has no {META_FILE}: it was not written by awmctl (or is incomplete)"
        )
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise BadInputError(f"{meta_path} is damaged ({err}); re-create {directory}") from None
    if not isinstance(meta, dict) or "kind" not in meta:
        raise BadInputError(f"{meta_path} is not an awmctl meta file; re-create {directory}")
    version = meta.get("format_version", 0)
    if not (isinstance(version, int) and OLDEST_READABLE_FORMAT <= version <= FORMAT_VERSION):
        writer = (meta.get("environment") or {}).get("versions", {}).get(
            "awmctl"
        ) or "an unknown version"
        advice = (
            "upgrade awmctl"
            if isinstance(version, int) and version > FORMAT_VERSION
            else "re-create it with this awmctl"
        )
        raise BadInputError(
            f"{directory} was written by awmctl {writer} in directory format {version}; this "
            f"awmctl reads formats {OLDEST_READABLE_FORMAT}..{FORMAT_VERSION}: {advice}"
        )
    wanted = (kind,) if isinstance(kind, str) else kind
    if wanted is not None and meta["kind"] not in wanted:
        raise BadInputError(
            f"{directory} holds a {meta['kind']}, but a {' or '.join(wanted)} is expected here"
        )
    if meta.get("status") != "complete":
        raise BadInputError(
            f"{directory} is an unfinished {meta['kind']} run (status {meta.get('status')!r}); "
            "rerun the command that made it to resume, or remove it"
        )
    return meta


# -------------------------------------------------------------------------- output folders


class OutputLock:
    """An exclusive lock on one ``--out`` path, so that two processes never write it at once.

    A ``flock`` on ``.NAME.lock`` beside the output: the kernel releases it when its process
    ends, however it ends (``kill -9`` included), so a lock is never left stuck. (On network
    file systems without ``flock`` support it is a no-op; give each array task its own --out.)
    """

    def __init__(self, out: Path):
        import fcntl

        out.parent.mkdir(parents=True, exist_ok=True)
        self.path = out.parent / f".{out.name}.lock"
        self._file = open(self.path, "a+")  # noqa: SIM115 (held until release)
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            holder = self._file.read().strip() or "another process"
            self._file.close()
            raise BadInputError(
                f"--out {out} is being written by {holder}; wait for it to finish or choose "
                "another --out"
            ) from None
        except OSError:  # no flock on this file system
            pass
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"awmctl pid {os.getpid()} on {socket.gethostname()}")
        self._file.flush()

    def release(self) -> None:
        if not self._file.closed:
            with contextlib.suppress(OSError):
                self.path.unlink()  # while still held: a waiting process never locks a stale file
            self._file.close()


def check_output_dir(out: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse, before any work is done, to clobber a non-empty directory without ``overwrite``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BadInputError(f"--out {out} exists and is not a directory; choose another path")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise BadInputError(f"--out {out} exists and is not empty; pass --overwrite to replace it")
    return out


@contextlib.contextmanager
def atomic_output_dir(out: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a hidden staging directory that replaces ``out`` only if the block succeeds.

    The old ``out`` (with ``overwrite``) is removed only after the new one is in place, so a
    failure at any point loses nothing.
    """
    out = check_output_dir(out, overwrite).absolute()
    lock = OutputLock(out)
    try:
        staging = out.parent / f".{out.name}.partial-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        try:
            yield staging
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        trash = None
        if out.exists():
            trash = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, trash)
        os.replace(staging, out)
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)
    finally:
        lock.release()


# ----------------------------------------------------------------------- pytrees of arrays


def _this_process_only() -> Any:
    """Orbax's multi-process settings: in a run spread over several processes only process 0
    writes (it has gathered every seed's arrays), so no Orbax call waits for the others."""
    import orbax.checkpoint as ocp

    if jax.process_count() == 1:
        return ocp.options.MultiprocessingOptions()
    return ocp.options.MultiprocessingOptions(
        primary_host=0, active_processes={jax.process_index()}
    )


def is_shape(leaf: Any) -> bool:
    """A leaf of a structure built abstractly (``eqx.filter_eval_shape``): the arrays a
    checkpoint restores into it."""
    return isinstance(leaf, jax.ShapeDtypeStruct)


def leaf_specs(tree: Any) -> dict[str, dict[str, Any]]:
    """``{"path.to.leaf": {"shape": [...], "dtype": "float32"}}`` for every array leaf."""
    specs = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        specs[jax.tree_util.keystr(path)] = {
            "shape": list(np.shape(leaf)),
            "dtype": str(leaf.dtype),
        }
    return specs


def save_arrays(directory: str | os.PathLike, tree: Any) -> dict[str, dict[str, Any]]:
    """Write a pytree of arrays to ``directory/arrays`` (synchronously); its leaf specs."""
    import orbax.checkpoint as ocp

    path = Path(directory).absolute() / ARRAYS_DIR
    tree = jax.tree_util.tree_map(np.asarray, tree)
    try:
        with ocp.StandardCheckpointer(multiprocessing_options=_this_process_only()) as checkpointer:
            checkpointer.save(path, tree)
            checkpointer.wait_until_finished()
    except OSError as err:
        raise RunFailedError(f"could not write {path}: {err}") from err
    return leaf_specs(tree)


def restore_arrays(directory: str | os.PathLike, like: Any, meta: dict[str, Any]) -> Any:
    """Restore the pytree saved by :func:`save_arrays` into the structure of ``like``.

    ``like`` may hold arrays or ``jax.ShapeDtypeStruct``s. Every leaf is checked against the
    specs recorded in ``meta["leaves"]`` first, so a mismatched checkpoint is refused by name.
    """
    import orbax.checkpoint as ocp

    directory = Path(directory)
    expected = leaf_specs(like)
    recorded = meta.get("leaves")
    if not isinstance(recorded, dict):
        raise BadInputError(f"{directory}/{META_FILE} lists no arrays; re-create {directory}")
    for name, spec in expected.items():
        got = recorded.get(name)
        if got is None:
            raise BadInputError(
                f"{directory} has no array {name}; it was written by an incompatible model or "
                "version"
            )
        if list(got["shape"]) != spec["shape"] or got["dtype"] != spec["dtype"]:
            raise BadInputError(
                f"{directory}: array {name} is {got['dtype']}{got['shape']}, "
                f"expected {spec['dtype']}{spec['shape']}"
            )
    extra = sorted(set(recorded) - set(expected))
    if extra:
        raise BadInputError(
            f"{directory} holds arrays this reader does not know ({', '.join(extra[:3])})"
        )
    abstract = jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype), like)
    path = directory.absolute() / ARRAYS_DIR
    try:
        with ocp.StandardCheckpointer(multiprocessing_options=_this_process_only()) as checkpointer:
            restored = checkpointer.restore(path, abstract)
    except Exception as err:  # noqa: BLE001  (Orbax raises many types for a damaged checkpoint)
        raise BadInputError(
            f"the checkpoint in {path} is damaged or incomplete ({type(err).__name__}); re-create "
            f"{directory}"
        ) from None
    return jax.tree_util.tree_map(jax.numpy.asarray, restored)


# ---------------------------------------------------------------------------------- metrics


def append_metrics(directory: str | os.PathLike, record: dict[str, Any]) -> None:
    with open(Path(directory) / METRICS_FILE, "a") as f:
        f.write(json.dumps(jsonable(record)) + "\n")


def read_metrics(directory: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of ``metrics.jsonl``, one per logging step. A torn last line (a process
    killed or a disk filled mid-write) is left out, as every append-only log's reader does
    (:func:`torn_metrics` says whether there is one); a bad line before the last is damage:
    :class:`BadInputError` naming it."""
    return _metrics(directory)[0]


def torn_metrics(directory: str | os.PathLike) -> bool:
    """Whether ``metrics.jsonl``'s last line is torn (see :func:`read_metrics`)."""
    return _metrics(directory)[1]


def _metrics(directory: str | os.PathLike) -> tuple[list[dict[str, Any]], bool]:
    path = Path(directory) / METRICS_FILE
    if not path.is_file():
        return [], False
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    records = []
    for n, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict):
            if n == len(lines):
                return records, True
            raise BadInputError(
                f"{path} line {n} is not a JSON record (the file is damaged); pass --overwrite to "
                "start over"
            )
        records.append(record)
    return records, False


def jsonable(obj: Any) -> Any:
    """Numbers from JAX/NumPy, tuples and paths as plain JSON values."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.ndarray | jax.Array):
        return jsonable(np.asarray(obj).tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None if np.isnan(obj) else (1e308 if obj > 0 else -1e308)
    return obj


# ------------------------------------------------------------------------- resumable runs


def differing_keys(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    """The keys whose values differ between ``a`` and ``b``, dotted into nested dicts
    (``bpo.seed_mode``), sorted."""
    found = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            found += differing_keys(x, y, f"{prefix}{key}.")
        elif x != y:
            found.append(f"{prefix}{key}")
    return found


def comparable_config(
    config: dict[str, Any], added: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A run's config as resuming compares it: a setting named in ``added`` (a dotted key, e.g.
    ``online.trust_check``, mapped to the value runs had before awmctl recorded it) that the
    config lacks is filled in, and the task is compared by :func:`awmctl.tasks.task_identity`.
    So a run left unfinished by an older awmctl, or started from another checkout of the same task
    file, resumes; a run whose numbers would differ does not."""
    config = copy.deepcopy(config)
    for dotted, value in (added or {}).items():
        *parents, leaf = dotted.split(".")
        node = config
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and leaf not in node:
            node[leaf] = value
    if isinstance(config.get("task"), dict):
        config["task"] = task_identity(config["task"])
    return config


class ResumableRun:
    """The working directory of a long command that can resume after being killed.

    Work happens in ``OUT.partial`` (an Orbax ``CheckpointManager`` under ``checkpoints/``,
    ``metrics.jsonl``, a ``meta.json`` with ``"status": "running"`` and the run's config). Only
    :meth:`finish` moves it to ``OUT``, so ``OUT`` never looks complete while it is not. Rerunning
    the same command finds ``OUT.partial`` and continues from its latest checkpoint; a different
    config is refused unless ``overwrite`` (which starts over); configs are compared by
    :func:`comparable_config`, with the settings ``added`` since earlier versions.
    """

    def __init__(
        self,
        out: str | os.PathLike,
        kind: str,
        config: dict[str, Any],
        overwrite: bool = False,
        added: Mapping[str, Any] | None = None,
    ):
        self.out = check_output_dir(out, overwrite).absolute()
        self.lock = OutputLock(self.out)  # before the working directory is read or touched
        try:
            self._open(kind, config, overwrite, added)
        except BaseException:
            self.lock.release()
            raise

    def _open(
        self, kind: str, config: dict[str, Any], overwrite: bool, added: Mapping[str, Any] | None
    ) -> None:
        import orbax.checkpoint as ocp

        self.work = self.out.with_name(self.out.name + ".partial")
        self.kind = kind
        self.config = jsonable(config)
        self.resuming = False
        self._closed = False
        if self.work.exists():
            previous, current = self._previous_config(), comparable_config(self.config, added)
            if previous is not None:
                previous = comparable_config(previous, added)
            if previous == current and not overwrite:
                self.resuming = True
            elif overwrite or previous is None:
                shutil.rmtree(self.work)
            else:
                changed = differing_keys(previous, current)
                raise BadInputError(
                    f"{self.work} holds an unfinished run with other settings "
                    f"({', '.join(changed)}); rerun with the same arguments to resume it, or pass "
                    "--overwrite to start over"
                )
        if self.resuming:
            # A run killed while it wrote its results (after its last chunk) left them half
            # written: they are made again, from the checkpoints and metrics kept here.
            for child in self.work.iterdir():
                if child.name not in ("checkpoints", METRICS_FILE, META_FILE, "wandb"):
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
        else:
            self.work.mkdir(parents=True)
        write_json_atomic(
            self.work / META_FILE, base_meta(kind, status="running", config=self.config)
        )
        (self.work / "checkpoints").mkdir(
            exist_ok=True
        )  # Orbax may not create it when one process of several writes
        self.manager = ocp.CheckpointManager(
            self.work / "checkpoints",
            options=ocp.CheckpointManagerOptions(
                max_to_keep=2,
                create=jax.process_count() == 1,
                cleanup_tmp_directories=True,
                multiprocessing_options=_this_process_only(),
            ),
        )

    def _previous_config(self) -> dict[str, Any] | None:
        try:
            meta = json.loads((self.work / META_FILE).read_text())
            return meta["config"] if meta.get("kind") == self.kind else None
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def restore_latest(self, like: Any) -> tuple[Any, int] | None:
        """The latest saved state (structure of ``like``) and its step, or None if there is none."""
        import orbax.checkpoint as ocp

        step = self.manager.latest_step()
        if step is None:
            if torn_metrics(self.work):  # appends must not follow a torn line
                self._write_metrics(read_metrics(self.work))
            return None
        abstract = jax.tree_util.tree_map(
            lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype), like
        )
        try:
            state = self.manager.restore(step, args=ocp.args.StandardRestore(abstract))
        except Exception as err:  # noqa: BLE001  (Orbax raises many types for a damaged checkpoint)
            raise BadInputError(
                f"the checkpoint at step {step} in {self.work} is damaged ({type(err).__name__}); "
                "pass --overwrite to start over"
            ) from None
        # Drop metrics logged after that checkpoint: they will be produced again.
        self._write_metrics([r for r in read_metrics(self.work) if r.get("step", 0) <= step])
        return state, step

    def _write_metrics(self, records: list[dict[str, Any]]) -> None:
        write_text_atomic(self.work / METRICS_FILE, "".join(json.dumps(r) + "\n" for r in records))

    def save(self, step: int, state: Any) -> None:
        import orbax.checkpoint as ocp

        self.manager.save(step, args=ocp.args.StandardSave(state))

    def log(self, record: dict[str, Any]) -> None:
        append_metrics(self.work, record)

    def metrics(self) -> list[dict[str, Any]]:
        return read_metrics(self.work)

    def close(self) -> None:
        """Wait for checkpoint writes in flight (also on Ctrl-C, so that they are not lost)."""
        if not self._closed:
            self.manager.wait_until_finished()
            self.manager.close()
            self._closed = True

    def release(self) -> None:
        """Give up the run (it stays resumable): completes checkpoints, frees ``--out``."""
        self.close()
        self.lock.release()

    def discard(self) -> None:
        """Give up a run refused for bad input: a new run that saved no checkpoint leaves nothing
        behind (its working directory goes); one with work to resume from is only released."""
        self.close()
        if not self.resuming and self.manager.latest_step() is None:
            shutil.rmtree(self.work, ignore_errors=True)
        self.lock.release()

    def finish(self, meta: dict[str, Any]) -> Path:
        """Mark the run complete and move it into place (replacing an old ``OUT``)."""
        self.close()
        write_json_atomic(
            self.work / META_FILE, {**meta, "status": "complete", "config": self.config}
        )
        trash = None
        if self.out.exists():
            trash = self.out.with_name(f".{self.out.name}.old-{os.getpid()}")
            os.replace(self.out, trash)
        os.replace(self.work, self.out)
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)
        self.lock.release()
        return self.out
