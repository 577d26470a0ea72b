"""The one shape every training algorithm has (model fitting, offline and online BPO; model-free
agents next), so that one driver runs any of them.

An algorithm is built from an immutable config (a frozen dataclass: the one source of its
defaults) and the fixed inputs of a run (task, data, model). Then, in the PureJaxRL style:

* ``init(seeds)`` -> a state pytree whose every leaf has a leading seed axis, built from the seeds
  alone (a seed inside ``--seeds N`` is that seed run alone);
* ``run_chunk(state)`` -> ``(state, metrics)``: one compiled call, vmapped over the seed axis, for
  a chunk of training steps and the evaluation that ends it; ``metrics`` maps namespaced keys
  (``train/...``, ``val/...``, ``eval/...``) to per-seed NumPy arrays;
* ``progress(state)`` / ``total`` / ``done(state)``: how far it is, in its own unit;
* ``params(state)``: what is kept of a seed when it scores best (``score`` in the metrics ranks
  chunks; ``higher_is_better`` says which way);
* ``sequential_seeds``: whether the seeds run one after another inside the compiled call
  (:func:`over_seeds`) or are vectorised, and then sharded over the devices (:func:`shard_seeds`).

The state is a pytree of arrays only, so a checkpoint of it resumes the run exactly.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import inspect
import types
import typing
import weakref
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Generic, Literal, NamedTuple, TypeVar, get_args, get_origin

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from awmctl.errors import BadInputError, DivergedError
from awmctl.optim import skipped_updates
from awmctl.trees import select_rows, select_tree

State = TypeVar("State")


@dataclasses.dataclass(frozen=True)
class LearningCurve:
    """What the driver draws when a run ends (the algorithm never imports a plotting library)."""

    file: str
    metrics: tuple[str, ...]
    ylabel: str
    xlabel: str
    #: True: one line per seed of ``metrics[0]`` with the mean and a 95% interval; False: one
    #: line per metric (of the first seed)
    per_seed: bool = True
    log_scale: bool = False
    #: the legend's names of ``metrics`` (when one line per metric); the keys themselves if empty
    legend: tuple[str, ...] = ()


class Algorithm(abc.ABC, Generic[State]):
    config: Any
    #: what :meth:`progress` counts ("step", "update", "env step")
    unit: ClassVar[str]
    #: the per-seed metric that ranks chunks for the best-so-far parameters
    score: ClassVar[str]
    higher_is_better: ClassVar[bool]
    curve: ClassVar[LearningCurve]
    #: seeds run one after another in the compiled call (not sharded over devices) or vectorised
    sequential_seeds: bool

    @abc.abstractmethod
    def init(self, seeds: Sequence[int]) -> State:
        """The initial state of each seed, stacked along a leading axis."""

    @abc.abstractmethod
    def run_chunk(self, state: State) -> tuple[State, dict[str, np.ndarray]]:
        """One compiled chunk of training and its evaluation; per-seed metrics."""

    @abc.abstractmethod
    def progress(self, state: State) -> int:
        """Units done (the same for every seed)."""

    @property
    @abc.abstractmethod
    def total(self) -> int:
        """Units in the whole run."""

    @abc.abstractmethod
    def params(self, state: State) -> Any:
        """The parameters a run keeps (seed axis first): the model's or the policy's."""

    def done(self, state: State) -> bool:
        return self.progress(state) >= self.total


class Config:
    """What every algorithm's config (a frozen dataclass) shares: its closed sets of values are
    ``Literal`` types, and a value outside one is refused when the config is made
    (:class:`BadInputError` naming the option), so no config ever holds one.

    The command line hands its options over as they were typed, so the runtime type checker the
    tests run (jaxtyping's) leaves the configs' constructors to this check."""

    __no_type_check__ = True

    def __post_init__(self) -> None:
        for field, allowed in closed_sets(type(self)).items():
            value = getattr(self, field.name)
            if value not in allowed:
                option = field.metadata.get("option", "--" + field.name.replace("_", "-"))
                named = [str(a) for a in allowed if a is not None]
                choices = ", ".join(named[:-1]) + " or " + named[-1] if len(named) > 1 else named[0]
                raise BadInputError(f"{option} must be {choices}, got {value!r}")


@functools.cache
def closed_sets(cls: type) -> dict[dataclasses.Field, tuple[Any, ...]]:
    """Each field of the dataclass ``cls`` typed with a ``Literal`` (or an optional one: None
    allowed too) -> the values it takes."""
    # (typing.get_type_hints reads nothing from a class marked __no_type_check__)
    hints = {
        k: v
        for c in reversed(cls.__mro__)
        for k, v in inspect.get_annotations(c, eval_str=True).items()
    }
    out = {}
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        members = get_args(hint) if get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
        values = [v for m in members if get_origin(m) is Literal for v in get_args(m)]
        if values:
            out[field] = (*values, *((None,) if type(None) in members else ()))
    return out


def check_fields(cls: type, given: dict[str, Any]) -> None:
    """Refuse keyword arguments that are not fields of the config dataclass ``cls``, with the
    names it takes (the keyword constructors' check, before any config is built)."""
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(given) - fields)
    if unknown:
        raise BadInputError(
            f"{cls.__name__} has no {', '.join(unknown)}; it takes: {', '.join(sorted(fields))}"
        )


class BestSoFar(NamedTuple):
    """Per seed, the best score so far, the progress at which it was reached and the parameters."""

    params: Any  # leading seed axis
    scores: np.ndarray  # float64 [seeds]
    steps: np.ndarray  # int64 [seeds]
    higher_is_better: bool

    @classmethod
    def start(cls, params: Any, seeds: int, higher_is_better: bool) -> BestSoFar:
        worst = -np.inf if higher_is_better else np.inf
        return cls(params, np.full(seeds, worst), np.zeros(seeds, np.int64), higher_is_better)

    def update(self, params: Any, scores: np.ndarray, step: int) -> BestSoFar:
        scores = np.asarray(scores, np.float64)
        improved = scores > self.scores if self.higher_is_better else scores < self.scores
        # On the host: once per chunk, and without compiling a program per parameter shape.
        return BestSoFar(
            select_rows(improved, params, self.params),
            np.where(improved, scores, self.scores),
            np.where(improved, step, self.steps),
            self.higher_is_better,
        )

    def of_seed(self, index: int) -> Any:
        """The best parameters of the ``index``-th seed of the run (no seed axis): what an
        algorithm's ``model(...)`` or ``policy(...)`` takes."""
        # JAX arrays: the best parameters are kept on the host (NumPy), which jitted code takes
        # but a model's or policy's shape-checked methods called directly do not
        return jax.tree_util.tree_map(lambda x: jnp.asarray(x[index]), self.params)

    def checkpoint(self) -> dict[str, Any]:
        """As arrays for an Orbax checkpoint (inverse: :meth:`restore`)."""
        return {
            "params": self.params,
            "scores": jnp.asarray(self.scores, jnp.float32),
            "steps": jnp.asarray(self.steps, jnp.int32),
        }

    def restore(self, saved: dict[str, Any]) -> BestSoFar:
        return BestSoFar(
            saved["params"],
            np.asarray(saved["scores"], np.float64),
            np.asarray(saved["steps"], np.int64),
            self.higher_is_better,
        )


ChunkCallback = Callable[[Any, BestSoFar, dict[str, np.ndarray]], None]


#: updates skipped in a row (non-finite gradients) after which a run counts as diverged
DIVERGED_AFTER = 10


def run(
    algorithm: Algorithm[State],
    state: State,
    best: BestSoFar | None = None,
    on_chunk: ChunkCallback | None = None,
) -> tuple[State, BestSoFar]:
    """Run ``algorithm`` from ``state`` to the end, keeping each seed's best parameters;
    ``on_chunk(state, best, metrics)`` after every chunk (to log, checkpoint, report).

    Every optimiser skips updates with non-finite gradients (:mod:`awmctl.optim`); their count
    is logged as ``train/nonfinite_updates``. When a seed's last :data:`DIVERGED_AFTER` updates
    were all skipped, the run has diverged: :class:`DivergedError`, after ``on_chunk`` has seen
    the chunk (whose state is still finite).
    """
    if best is None:
        seeds = jax.tree_util.tree_leaves(state)[0].shape[0]
        best = BestSoFar.start(algorithm.params(state), seeds, algorithm.higher_is_better)
    while not algorithm.done(state):
        state, metrics = algorithm.run_chunk(state)
        skipped, in_a_row = skipped_updates(state)
        metrics = {
            **metrics,
            "train/nonfinite_updates": np.broadcast_to(skipped, np.shape(metrics[algorithm.score])),
        }
        best = best.update(
            algorithm.params(state), metrics[algorithm.score], algorithm.progress(state)
        )
        if on_chunk is not None:
            on_chunk(state, best, metrics)
        if np.any(in_a_row >= DIVERGED_AFTER):
            seeds = np.flatnonzero(np.atleast_1d(in_a_row) >= DIVERGED_AFTER).tolist()
            raise DivergedError(
                f"diverged at {algorithm.unit} {algorithm.progress(state)} (seed index {seeds}: "
                f"the last {int(np.max(in_a_row))} updates had non-finite gradients and were "
                "skipped; the checkpoints keep the last finite parameters): lower the learning "
                "rate (--lr)"
            )
    return state, best


#: how the seeds of a run share a compiled call (a config field of every algorithm with seeds)
SeedMode = Literal["vmap", "sequential"]
SEED_MODES: tuple[str, ...] = get_args(SeedMode)


def default_seed_mode() -> str:
    """``sequential`` on a CPU, ``vmap`` on an accelerator (see :func:`over_seeds`).

    On a CPU, vectorising seeds turns every small matrix product into a batched one that XLA
    runs far less efficiently (8 seeds of a transformer policy update cost 13 times one seed),
    while the cores are already busy with one seed's work: running them in sequence costs exactly
    N single runs. An accelerator has room for every seed at once, so there they are vectorised.
    """
    return "sequential" if jax.default_backend() == "cpu" else "vmap"


def seeds_in_sequence(mode: str | None = None) -> bool:
    """Whether seeds run one after another inside a compiled call: ``mode`` (one of
    :data:`SEED_MODES`), or :func:`default_seed_mode` when None."""
    mode = default_seed_mode() if mode is None else mode
    if mode not in SEED_MODES:
        raise BadInputError(f"the seed mode must be vmap or sequential, got {mode!r}")
    return mode == "sequential"


def over_seeds(fn: Callable[..., Any], sequential: bool | None = None) -> Callable[..., Any]:
    """``fn(state, *shared)`` of one seed -> one compiled function of every seed's state (leading
    axis), ``shared`` inputs broadcast.

    ``sequential=True`` runs one seed after another inside the compiled call (``lax.map``), so N
    seeds cost N single runs and each computes exactly what it computes alone; ``False``
    vectorises them (``vmap``); None: :func:`default_seed_mode`.
    """
    if sequential is None:
        sequential = seeds_in_sequence()

    def mapped(state, *shared):
        one = lambda s: fn(s, *shared)
        return jax.lax.map(one, state) if sequential else eqx.filter_vmap(one)(state)

    return eqx.filter_jit(mapped)


#: XLA options of a program that runs once (see :func:`compiled_once`)
_RUNS_ONCE = {"xla_backend_optimization_level": 0}


def compiled_once(method: Callable[..., Any]) -> Callable[..., Any]:
    """Compile an algorithm's method that runs once per command (its ``_init(self, ...)``: every
    seed's networks, optimiser states and buffers) as one program, without XLA's backend
    optimisations.

    Initialisation is one program rather than eager operations (which would compile once per
    operation of every layer's initialiser), but it runs once, so optimising its machine code
    only costs time: threefry's many integer operations for every parameter make it the second
    largest compilation of a run (online BPO with the LSTM AWM: 1.9 s, against 4.1 s for the
    training program). Unoptimised, it compiles in 0.9 s (docs/benchmarks.md). The values can
    differ in the last bit from an optimised build (a multiply-add fused or not), and are the
    same on every run.

    JAX accepts compiler options only on an outermost ``jit``, so the options go to an
    ahead-of-time compilation, kept per instance and argument shapes; called inside another
    transformation (``jax.eval_shape``, an enclosing ``jit``), the method is an ordinary nested
    ``jit``.
    """
    plain = jax.jit(method, static_argnums=0)
    compiled: weakref.WeakKeyDictionary[Any, dict[Any, Any]] = weakref.WeakKeyDictionary()

    @functools.wraps(method)
    def call(self: Any, *args: Any) -> Any:
        leaves, structure = jax.tree_util.tree_flatten(args)
        if any(isinstance(x, jax.core.Tracer) for x in leaves):
            return plain(self, *args)
        signature = (structure, *((jnp.shape(x), jnp.result_type(x)) for x in leaves))
        mine = compiled.setdefault(self, {})
        if signature not in mine:
            mine[signature] = plain.lower(self, *args).compile(_RUNS_ONCE)
        return mine[signature](*args)

    return call


def is_parameter(x: Any) -> bool:
    """A float array, or the shape of one (a leaf of an ``eqx.filter_eval_shape`` skeleton)."""
    if isinstance(x, jax.ShapeDtypeStruct):
        return bool(jnp.issubdtype(x.dtype, jnp.inexact))
    return eqx.is_inexact_array(x)


#: ``(params, opt_state, key_a, key_b) -> (params, opt_state, outputs)``: one optimiser step
Step = Callable[[Any, Any, jax.Array, jax.Array], tuple[Any, Any, Any]]


def masked_steps(
    step: Step, params: Any, opt_state: Any, key: jax.Array, active: jax.Array
) -> tuple[Any, Any, jax.Array, Any]:
    """``step`` once per entry of ``active`` (a scan), the inactive ones no-ops: the last chunk
    of a run may be partial, and one compiled chunk serves every chunk (model fitting and
    offline BPO). Each step splits the raw key data ``key`` three ways: the next key and the
    step's two keys. Returns the parameters, optimiser state, key data and each step's outputs
    (NaN where inactive, for a ``nanmean``)."""

    def one(carry: tuple[Any, Any, jax.Array], is_active: jax.Array):
        params, opt_state, key = carry
        key, k_a, k_b = jax.random.split(jax.random.wrap_key_data(key), 3)
        new_params, new_opt, outputs = step(params, opt_state, k_a, k_b)
        carry = (
            select_tree(is_active, new_params, params),
            select_tree(is_active, new_opt, opt_state),
            jax.random.key_data(key),
        )
        return carry, jax.tree.map(lambda x: jnp.where(is_active, x, jnp.nan), outputs)

    (params, opt_state, key), outputs = jax.lax.scan(one, (params, opt_state, key), active)
    return params, opt_state, key, outputs


def abstract(build: Callable[..., Any], *args: Any) -> tuple[Any, Any]:
    """``build(*args)`` traced, not run: ``(skeleton, static)``, where ``static`` is everything
    but the float arrays (what ``eqx.combine`` needs to turn parameters back into a module).
    Building a template this way costs no computation and no compilation."""
    skeleton = eqx.filter_eval_shape(build, *args)
    return skeleton, eqx.partition(skeleton, is_parameter)[1]


def shard_seeds(state: Any, sequential: bool = False) -> Any:
    """Spread the leading seed axis of vectorised seeds over all local devices when it divides
    evenly (else, or for seeds run in sequence, leave the state where it is): ``--seeds N`` uses
    every device of the machine."""
    devices = jax.local_devices()
    if sequential:
        return state
    seeds = jax.tree_util.tree_leaves(state)[0].shape[0]
    if len(devices) < 2 or seeds % len(devices):
        return state
    mesh = jax.sharding.Mesh(np.asarray(devices), ("seed",))
    return jax.device_put(
        state, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("seed"))
    )


__all__ = [
    "DIVERGED_AFTER",
    "SEED_MODES",
    "Algorithm",
    "BestSoFar",
    "Config",
    "LearningCurve",
    "SeedMode",
    "State",
    "abstract",
    "closed_sets",
    "compiled_once",
    "default_seed_mode",
    "is_parameter",
    "over_seeds",
    "run",
    "seeds_in_sequence",
    "shard_seeds",
]
