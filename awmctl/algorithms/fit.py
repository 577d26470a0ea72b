"""World-model fitting: Adam on the normalised-state MSE over whole recorded episodes.

One optimiser step (:func:`model_step`) is shared with online BPO. :class:`ModelFit` scans
``log_every`` of them (minibatches drawn inside) in one compiled call, then evaluates the
validation episodes; the state between chunks is a small pytree that resumes exactly.

An ensemble (``ensemble`` K > 1) is fitted in the same compiled step: each member on its own
minibatch (:func:`batch_indices`: its own order of the episodes), the loss the sum of the
members' losses, so that each member's gradient, and its Adam update (element-wise), is the one it
would get trained alone; its reported loss is the members' mean.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from awmctl import optim
from awmctl.algorithms.base import (
    Algorithm,
    LearningCurve,
    abstract,
    check_fields,
    compiled_once,
    masked_steps,
    over_seeds,
)
from awmctl.errors import BadInputError, DivergedError
from awmctl.models import (
    AbstractWorldModel,
    Ensemble,
    ModelSpec,
    check_context,
    check_ensemble_size,
    disagreement,
    imagine,
    member_keys,
    members_of,
    model_spec,
)
from awmctl.normalize import like
from awmctl.seeds import seed_stream
from awmctl.tasks import Episode


@dataclasses.dataclass(frozen=True)
class FitConfig:
    steps: int = 2000
    batch_size: int = 64  # whole episodes per step, as in the paper
    lr: float = 1e-3
    val_fraction: float = 0.1
    log_every: int = 50
    #: members of an ensemble of models fitted together (1: one model)
    ensemble: int = 1

    def check(self) -> None:
        check_ensemble_size(self.ensemble)
        if self.steps < 1:
            raise BadInputError(f"--steps must be at least 1, got {self.steps}")
        if self.batch_size < 1:
            raise BadInputError(f"--batch-size must be at least 1, got {self.batch_size}")
        if not self.lr > 0:
            raise BadInputError(f"--lr must be positive, got {self.lr}")
        if self.log_every < 1:
            raise BadInputError(f"--log-every must be at least 1, got {self.log_every}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise BadInputError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")


class FitState(NamedTuple):
    """Everything a resumed run needs; every leaf is an array (one row per seed)."""

    params: Any  # the model's float arrays (eqx.filter(model, eqx.is_inexact_array))
    opt_state: Any
    step: Array
    key: Array  # raw uint32 key data (Orbax stores plain arrays)


def normalised_mse(
    model: AbstractWorldModel,
    scale: Float[Array, " state"],
    observations: Float[Array, "B T obs"],
    actions: Float[Array, "B H act"],
    key: PRNGKeyArray | None = None,
) -> Float[Array, ""]:
    """Mean squared error of the one-call predictions, in units of the data's state std; of an
    ensemble, the mean of its members' (:func:`member_mse`)."""
    if isinstance(model, Ensemble):
        return jnp.mean(member_mse(model, scale, observations, actions, key))
    states = observations[..., :-1]
    keys = None if key is None else jax.random.split(key, states.shape[0])
    if keys is None:
        preds = jax.vmap(lambda s, a: model.predict(s, a))(states, actions)
    else:
        preds = jax.vmap(lambda s, a, k: model.predict(s, a, key=k))(states, actions, keys)
    return jnp.mean(jnp.square((preds - states[:, 1:]) / like(scale, preds)))


def member_mse(
    model: Ensemble,
    scale: Float[Array, " state"],
    observations: Float[Array, "*K B T obs"],
    actions: Float[Array, "*K B H act"],
    key: PRNGKeyArray | None = None,
) -> Float[Array, " K"]:
    """Each member's :func:`normalised_mse`: on the same episodes, or each on its own batch when
    ``observations`` and ``actions`` have a leading member axis."""
    if observations.ndim == 4:
        return model.map(lambda m, o, a: normalised_mse(m, scale, o, a, key), observations, actions)
    return model.map(lambda m: normalised_mse(m, scale, observations, actions, key))


def batch_indices(
    key: PRNGKeyArray,
    episodes: int,
    batch: int,
    members: int,
    sampler: Callable[[PRNGKeyArray], Int[Array, " B"]] | None = None,
) -> Int[Array, "*K B"]:
    """``batch`` of ``episodes`` indices drawn without replacement (or by ``sampler(key)``), one
    batch per member of an ensemble (``members`` > 1: a leading member axis, member k's from
    :func:`~awmctl.models.member_keys`), so that every member sees the data in its own order."""
    draw = sampler or (lambda k: jax.random.choice(k, episodes, (batch,), replace=False))
    return draw(key) if members == 1 else jax.vmap(draw)(member_keys(key, members))


def model_step(
    params: Any,
    opt_state: Any,
    static: Any,
    optimizer: optax.GradientTransformation,
    observations: Float[Array, "*K B T obs"],
    actions: Float[Array, "*K B H act"],
    key: PRNGKeyArray | None = None,
    scale: Float[Array, " state"] | None = None,
) -> tuple[Any, Any, Float[Array, ""]]:
    """One Adam step of a model (its float arrays ``params``) on a batch of whole episodes:
    ``(params, opt_state, loss)``. ``key`` only matters for models configured with dropout;
    ``scale`` is the loss's per-dimension unit (default: the model's own
    :meth:`~awmctl.models.AbstractWorldModel.state_scale`). An ensemble's batch may have a
    leading member axis (:func:`batch_indices`); its members' losses are summed for the gradient
    (each member's own) and averaged for the reported loss."""
    members = members_of(static)

    def loss_fn(p):
        model = eqx.combine(p, static)
        unit = model.state_scale() if scale is None else scale
        if members == 1:
            return normalised_mse(model, unit, observations, actions, key)
        return jnp.sum(member_mse(model, unit, observations, actions, key))

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss / members


def open_loop_metrics(
    model: AbstractWorldModel, scale: Float[Array, " state"], episodes: Episode
) -> dict[str, Array]:
    """Imagination through ``start``/``step`` with the recorded actions: final-state error."""
    obs = jnp.asarray(episodes.observations)
    imagined = jax.vmap(lambda o0, a: imagine(model, o0, a))(
        obs[:, 0], jnp.asarray(episodes.actions)
    )
    final_pred, final_true = imagined[:, -1, :-1], obs[:, -1, :-1]
    err = final_pred - final_true
    ss_res = jnp.sum(jnp.square(err), axis=0)
    ss_tot = jnp.sum(jnp.square(final_true - jnp.mean(final_true, axis=0, keepdims=True)), axis=0)
    # A constant final state (ss_tot = 0) has no variance to explain: report R^2 = 1 if it is
    # predicted exactly and 0 otherwise, rather than dividing by zero.
    r2 = jnp.where(
        ss_tot > 0,
        1.0 - ss_res / jnp.where(ss_tot > 0, ss_tot, 1.0),
        jnp.where(ss_res > 0, 0.0, 1.0),
    )
    return {
        "final_mse": jnp.mean(jnp.square(err / like(scale, err))),
        "final_r2": r2,
        "rollout_mse": jnp.mean(
            jnp.square((imagined[..., :-1] - obs[:, 1:, :-1]) / like(scale, obs[:, 1:, :-1]))
        ),
        **(
            {"disagreement": rollout_disagreement(model, scale, obs[:, 0], episodes.actions)}
            if isinstance(model, Ensemble)
            else {}
        ),
    }


def rollout_disagreement(
    model: Ensemble,
    scale: Float[Array, " state"],
    obs0: Float[Array, "N obs"],
    actions: Float[Array | np.ndarray, "N H act"],
) -> Float[Array, ""]:
    """How much an ensemble's members disagree about episodes imagined open loop from ``obs0``
    with ``actions``: the members' standard deviation of each predicted state, in units of the
    data's state std, averaged over episodes, steps and dimensions."""
    imagined = model.map(
        lambda m: jax.vmap(lambda o0, a: imagine(m, o0, a))(obs0, jnp.asarray(actions))
    )[..., :-1]
    return jnp.mean(disagreement(imagined) / like(scale, imagined[0]))


def seed_keys(seed: int | Int[Array, ""]) -> tuple[PRNGKeyArray, PRNGKeyArray]:
    """The two halves of a fitting run's seed: the model's initial weights, and the
    train/validation split."""
    model_key, split_key = jax.random.split(jax.random.key(seed))
    return model_key, split_key


def split_episodes(
    episodes: Episode, val_fraction: float, key: PRNGKeyArray
) -> tuple[Episode, Episode]:
    """Shuffle episodes and hold out ``val_fraction`` of them (at least one) for validation."""
    n = episodes.observations.shape[0]
    if not 0.0 <= val_fraction < 1.0:
        raise BadInputError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    n_val = round(n * val_fraction)
    if val_fraction > 0 and n_val == 0:
        n_val = 1
    if n - n_val < 1:
        raise BadInputError(
            f"a dataset of {n} episodes is too small to hold out {n_val} for validation"
        )
    order = np.asarray(jax.random.permutation(key, n))
    take = lambda idx: Episode(*(np.asarray(x)[idx] for x in episodes))
    return take(order[n_val:]), take(order[:n_val])


class ModelFit(Algorithm[FitState]):
    """Fit one model spec to a train/validation split (see the module docstring).

    Each seed's model is built from the first half of its key (:func:`seed_keys`) and normalises
    with the training episodes' statistics.
    """

    unit: ClassVar[str] = "step"
    score: ClassVar[str] = "val/loss"
    higher_is_better: ClassVar[bool] = False
    curve: ClassVar[LearningCurve] = LearningCurve(
        "loss.png",
        ("train/loss", "val/loss", "val/rollout_mse"),
        "normalised MSE",
        "step",
        per_seed=False,
        log_scale=True,
        legend=("training loss", "validation loss", "validation open-loop rollout MSE"),
    )

    @classmethod
    def create(
        cls,
        episodes: Episode,
        model: str | ModelSpec = "awm-lstm",
        *,
        seed: int = 0,
        context: int | None = None,
        hyper: dict[str, Any] | None = None,
        **config: Any,
    ) -> ModelFit:
        """A fit of ``model`` (a name of ``MODEL_SPECS``) to ``episodes``, as ``awmctl fit-model``
        makes it: ``config`` holds any :class:`FitConfig` field by name (``steps=600``; its
        defaults otherwise), ``val_fraction`` of the episodes are held out with ``seed``'s split
        key, ``context`` is the episodes' horizon unless given, and ``hyper`` sets the model's
        sizes (``{"width": 32}``; the paper's otherwise). Train it with
        ``run(fit, fit.init([seed]))``."""
        spec = model_spec(model) if isinstance(model, str) else model
        check_fields(FitConfig, config)
        settings = FitConfig(**config)
        hyper = dict(hyper or {})
        spec.check_sizes(hyper)
        train, val = split_episodes(episodes, settings.val_fraction, seed_keys(seed)[1])
        if val.observations.shape[0] == 0:
            val = train  # val_fraction 0: "validation" is the training set, as fit-model does
        horizon = episodes.actions.shape[1]
        return cls(spec, hyper, horizon if context is None else context, train, val, settings)

    def __init__(
        self,
        spec: ModelSpec,
        hyper: dict[str, Any],
        context: int,
        train: Episode,
        val: Episode,
        config: FitConfig,
    ):
        config.check()
        self.spec, self.hyper, self.context, self.config = spec, dict(hyper), context, config
        self.train_obs = jnp.asarray(train.observations)
        self.train_act = jnp.asarray(train.actions)
        self.val = Episode(*(jnp.asarray(x) for x in val))
        self.template, self.static = abstract(self.build, 0, self.train_obs)
        check_context(self.template, self.train_act.shape[1])
        # The loss's unit: the training states' std, the same for every seed (and a constant of
        # the compiled program, not a parameter).
        self.scale = eqx.filter_jit(lambda obs: self.build(0, obs).state_scale())(self.train_obs)
        self.optimizer = optim.adam(config.lr)
        self.batch = min(config.batch_size, self.train_obs.shape[0])
        # One seed after another (fit-model trains one): each computes exactly what it does alone.
        self.sequential_seeds = True
        self._train_chunk = over_seeds(self.train_steps, self.sequential_seeds)
        self._evaluate = over_seeds(self.evaluate, self.sequential_seeds)
        self._loss = eqx.filter_jit(self.loss)

    # ------------------------------------------------------------ the compiled parts, one seed

    def train_steps(
        self,
        state: FitState,
        train_obs: Float[Array, "N T obs"],
        train_act: Float[Array, "N H act"],
        active: Bool[Array, " n"],
    ) -> tuple[FitState, Float[Array, ""]]:
        """One optimiser step per entry of ``active`` (the inactive ones skipped), each on a batch
        of training episodes drawn without replacement; the mean loss of those made."""

        def step(params, opt_state, sub, drop):
            idx = batch_indices(sub, train_obs.shape[0], self.batch, self.config.ensemble)
            return model_step(
                params,
                opt_state,
                self.static,
                self.optimizer,
                train_obs[idx],
                train_act[idx],
                drop,
                self.scale,
            )

        params, opt_state, key, losses = masked_steps(
            step, state.params, state.opt_state, state.key, active
        )
        done = state.step + jnp.sum(active.astype(jnp.int32))
        return FitState(params, opt_state, done, key), jnp.nanmean(losses)

    def evaluate(self, params: Any, val: Episode) -> dict[str, Array]:
        """Validation loss and open-loop metrics of one seed's model."""
        model = eqx.combine(params, self.static)
        out = {"val_loss": normalised_mse(model, self.scale, val.observations, val.actions)}
        out.update(open_loop_metrics(model, self.scale, val))
        return out

    def loss(
        self, params: Any, obs: Float[Array, "N T obs"], act: Float[Array, "N H act"]
    ) -> Float[Array, ""]:
        """The training loss of one model on whole episodes."""
        return normalised_mse(eqx.combine(params, self.static), self.scale, obs, act)

    def build(self, seed: int | Array, train_obs: Float[Array, "N T obs"]) -> AbstractWorldModel:
        """The initial model of ``seed``, normalised with the training observations' statistics."""
        model = self.spec.build(
            train_obs.shape[2] - 1,
            self.train_act.shape[2],
            self.context,
            self.hyper,
            key=seed_keys(seed)[0],
            ensemble=self.config.ensemble,
        )
        return model.with_normalizers(train_obs)

    # ------------------------------------------------------------------------------ the shape

    def init(self, seeds: Sequence[int]) -> FitState:
        return self._init(jnp.asarray(seeds), self.train_obs)

    @compiled_once
    def _init(self, seeds: Array, train_obs: Float[Array, "N T obs"]) -> FitState:
        params = jax.lax.map(
            lambda s: eqx.filter(self.build(s, train_obs), eqx.is_inexact_array), seeds
        )
        keys = jax.vmap(lambda s: jax.random.key_data(seed_stream(s, "fit/steps")))(seeds)
        return FitState(
            params, jax.vmap(self.optimizer.init)(params), jnp.zeros(seeds.shape, jnp.int32), keys
        )

    def train_chunk(self, state: FitState, active: Array | None = None) -> tuple[FitState, Array]:
        """``log_every`` optimiser steps (those where ``active`` is False are skipped): the state
        and the mean training loss of each seed. One compiled call."""
        if active is None:
            active = jnp.ones((self.config.log_every,), bool)
        return self._train_chunk(state, self.train_obs, self.train_act, active)

    def run_chunk(self, state: FitState) -> tuple[FitState, dict[str, np.ndarray]]:
        remaining = self.config.steps - self.progress(state)
        state, train_loss = self.train_chunk(state, jnp.arange(self.config.log_every) < remaining)
        metrics = self._evaluate(state.params, self.val)
        if not (np.all(np.isfinite(train_loss)) and np.all(np.isfinite(metrics["val_loss"]))):
            raise DivergedError(
                f"diverged at step {self.progress(state)} (the loss is no longer finite: "
                f"{np.asarray(train_loss).tolist()}; the checkpoints keep the last finite "
                "parameters): lower --lr or check the data"
            )
        return state, {
            "train/loss": np.asarray(train_loss),
            "val/loss": np.asarray(metrics["val_loss"]),
            "val/final_mse": np.asarray(metrics["final_mse"]),
            "val/final_r2": np.asarray(metrics["final_r2"]),
            "val/rollout_mse": np.asarray(metrics["rollout_mse"]),
            **(
                {"val/disagreement": np.asarray(metrics["disagreement"])}
                if "disagreement" in metrics
                else {}
            ),
        }

    def progress(self, state: FitState) -> int:
        return int(np.asarray(state.step)[0])

    @property
    def total(self) -> int:
        return self.config.steps

    def params(self, state: FitState) -> Any:
        return state.params

    # --------------------------------------------------------------------------- the results

    def model(self, params: Any) -> AbstractWorldModel:
        """One seed's model from its float arrays."""
        return eqx.combine(params, self.static)

    def summary(self, params: Any) -> dict[str, Any]:
        """Train/validation MSE and open-loop final-state error of one seed's model."""
        metrics = self._evaluate(jax.tree_util.tree_map(lambda x: x[None], params), self.val)
        train_loss = self._loss(params, self.train_obs, self.train_act)
        return {
            "train_mse": float(train_loss),
            "val_mse": float(metrics["val_loss"][0]),
            "val_final_mse": float(metrics["final_mse"][0]),
            "val_final_r2": np.asarray(metrics["final_r2"][0]).tolist(),
            "val_rollout_mse": float(metrics["rollout_mse"][0]),
            **(
                {
                    "ensemble": self.config.ensemble,
                    "val_disagreement": float(metrics["disagreement"][0]),
                }
                if "disagreement" in metrics
                else {}
            ),
        }


__all__ = [
    "FitConfig",
    "FitState",
    "ModelFit",
    "batch_indices",
    "member_mse",
    "model_step",
    "normalised_mse",
    "open_loop_metrics",
    "rollout_disagreement",
    "seed_keys",
    "split_episodes",
]
