"""World-model training: Adam on the normalised-state MSE over whole recorded episodes.

The training run is a pure function of its inputs. :class:`Fitter` compiles two programs: a
chunk of ``log_every`` optimiser steps as one ``lax.scan`` (minibatches are drawn inside it), and
one evaluation of the validation set. The state between chunks is a small pytree
(:class:`TrainState`) that can be checkpointed and resumed exactly: a resumed run ends with the
same numbers as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from awmctl import optim
from awmctl.errors import BadInputError, RunFailedError
from awmctl.models import WorldModel, imagine, state_scale
from awmctl.models.base import like
from awmctl.tasks import Episode
from awmctl.trees import select_tree


@dataclasses.dataclass(frozen=True)
class FitConfig:
    steps: int = 2000
    batch_size: int = 64  # whole episodes per step, as in the paper
    lr: float = 1e-3
    val_fraction: float = 0.1
    log_every: int = 50
    seed: int = 0

    def check(self) -> None:
        if self.steps < 1:
            raise BadInputError(f"--steps must be at least 1, got {self.steps}")
        if self.batch_size < 1:
            raise BadInputError(f"--batch-size must be at least 1, got {self.batch_size}")
        if not self.lr > 0:
            raise BadInputError(f"--lr must be positive, got {self.lr}")
        if self.log_every < 1:
            raise BadInputError(f"--log-every must be at least 1, got {self.log_every}")


class TrainState(NamedTuple):
    """Everything a resumed run needs. All leaves are arrays (checkpointable as they are)."""

    params: Any  # the model's float arrays (eqx.filter(model, eqx.is_inexact_array))
    opt_state: Any
    step: Array
    key: Array  # raw uint32 key data (Orbax stores plain arrays)
    best_params: Any
    best_val: Array
    best_step: Array


def normalised_mse(
    model: WorldModel,
    scale: Float[Array, " state"],
    observations: Float[Array, "B T obs"],
    actions: Float[Array, "B H act"],
    key: PRNGKeyArray | None = None,
) -> Float[Array, ""]:
    """Mean squared error of the one-call predictions, in units of the data's state std."""
    states = observations[..., :-1]
    keys = None if key is None else jax.random.split(key, states.shape[0])
    if keys is None:
        preds = jax.vmap(lambda s, a: model.predict(s, a))(states, actions)
    else:
        preds = jax.vmap(lambda s, a, k: model.predict(s, a, key=k))(states, actions, keys)
    return jnp.mean(jnp.square((preds - states[:, 1:]) / like(scale, preds)))


def open_loop_metrics(
    model: WorldModel, scale: Float[Array, " state"], episodes: Episode
) -> dict[str, Array]:
    """Imagination through ``start``/``step`` with the recorded actions: final-state error."""
    obs = jnp.asarray(episodes.observations)
    imagined = jax.vmap(lambda o0, a: imagine(model, o0, a))(obs[:, 0], jnp.asarray(episodes.actions))
    final_pred, final_true = imagined[:, -1, :-1], obs[:, -1, :-1]
    err = final_pred - final_true
    ss_res = jnp.sum(jnp.square(err), axis=0)
    ss_tot = jnp.sum(jnp.square(final_true - jnp.mean(final_true, axis=0, keepdims=True)), axis=0)
    # A constant final state (ss_tot = 0) has no variance to explain: report R^2 = 1 if it is
    # predicted exactly and 0 otherwise, rather than dividing by zero.
    r2 = jnp.where(ss_tot > 0, 1.0 - ss_res / jnp.where(ss_tot > 0, ss_tot, 1.0), jnp.where(ss_res > 0, 0.0, 1.0))
    return {
        "final_mse": jnp.mean(jnp.square(err / like(scale, err))),
        "final_r2": r2,
        "rollout_mse": jnp.mean(jnp.square((imagined[..., :-1] - obs[:, 1:, :-1]) / like(scale, obs[:, 1:, :-1]))),
    }


class Fitter:
    """Compiled training of one model on one train/validation split."""

    def __init__(self, model: WorldModel, train: Episode, val: Episode, config: FitConfig):
        config.check()
        if model.max_horizon is not None and train.actions.shape[1] > model.max_horizon:
            raise BadInputError(
                f"{model.name} has a context of {model.max_horizon} steps but the episodes have "
                f"{train.actions.shape[1]}; build the model for this horizon"
            )
        self.config = config
        self.params, self.static = eqx.partition(model, eqx.is_inexact_array)
        self.scale = state_scale(model)
        self.train_obs = jnp.asarray(train.observations)
        self.train_act = jnp.asarray(train.actions)
        self.val = Episode(*(jnp.asarray(x) for x in val))
        self.optimizer = optim.adam(config.lr)
        self.batch = min(config.batch_size, self.train_obs.shape[0])

        static, scale, optimizer, batch = self.static, self.scale, self.optimizer, self.batch

        def loss_fn(params, obs, act, key):
            # The key only matters for models configured with dropout.
            return normalised_mse(eqx.combine(params, static), scale, obs, act, key)

        @jax.jit
        def run_chunk(state: TrainState, train_obs, train_act, n_steps_mask):
            def one(carry, active):
                params, opt_state, key = carry
                key, sub, drop = jax.random.split(jax.random.wrap_key_data(key), 3)
                idx = jax.random.choice(sub, train_obs.shape[0], (batch,), replace=False)
                loss, grads = jax.value_and_grad(loss_fn)(params, train_obs[idx], train_act[idx], drop)
                updates, new_opt = optimizer.update(grads, opt_state, params)
                new_params = optax.apply_updates(params, updates)
                # Steps past the requested total (the last chunk may be partial) are no-ops,
                # so one compiled chunk serves every chunk of a run.
                carry = (select_tree(active, new_params, params), select_tree(active, new_opt, opt_state),
                         jax.random.key_data(key))
                return carry, jnp.where(active, loss, jnp.nan)

            (params, opt_state, key), losses = jax.lax.scan(
                one, (state.params, state.opt_state, state.key), n_steps_mask
            )
            return state._replace(
                params=params, opt_state=opt_state, key=key,
                step=state.step + jnp.sum(n_steps_mask.astype(jnp.int32)),
            ), jnp.nanmean(losses)

        @jax.jit
        def evaluate(params, val: Episode):
            model = eqx.combine(params, static)
            out = {"val_loss": normalised_mse(model, scale, val.observations, val.actions)}
            out.update(open_loop_metrics(model, scale, val))
            return out

        self._run_chunk = run_chunk
        self._evaluate = evaluate

    def init(self) -> TrainState:
        key = jax.random.key_data(jax.random.fold_in(jax.random.key(self.config.seed), 1))
        return TrainState(
            params=self.params,
            opt_state=self.optimizer.init(self.params),
            step=jnp.zeros((), jnp.int32),
            key=key,
            best_params=self.params,
            best_val=jnp.asarray(jnp.inf, dtype=jnp.float32),
            best_step=jnp.zeros((), jnp.int32),
        )

    def run_chunk(self, state: TrainState) -> tuple[TrainState, dict[str, Any]]:
        """``log_every`` optimiser steps (fewer at the end), then a validation evaluation."""
        remaining = self.config.steps - int(state.step)
        mask = jnp.arange(self.config.log_every) < remaining
        state, train_loss = self._run_chunk(state, self.train_obs, self.train_act, mask)
        metrics = self._evaluate(state.params, self.val)
        val_loss = metrics["val_loss"]
        if not bool(jnp.isfinite(train_loss)) or not bool(jnp.isfinite(val_loss)):
            raise RunFailedError(
                f"training diverged at step {int(state.step)} (loss {float(train_loss)}); "
                "lower --lr or check the data"
            )
        better = val_loss < state.best_val
        state = state._replace(
            best_params=select_tree(better, state.params, state.best_params),
            best_val=jnp.where(better, val_loss, state.best_val).astype(state.best_val.dtype),
            best_step=jnp.where(better, state.step, state.best_step),
        )
        record = {
            "step": int(state.step),
            "train/loss": float(train_loss),
            "val/loss": float(val_loss),
            "val/final_mse": float(metrics["final_mse"]),
            "val/final_r2": np.asarray(metrics["final_r2"]).tolist(),
            "val/rollout_mse": float(metrics["rollout_mse"]),
        }
        return state, record

    def done(self, state: TrainState) -> bool:
        return int(state.step) >= self.config.steps

    def model(self, params: Any) -> WorldModel:
        return eqx.combine(params, self.static)

    def summary(self, state: TrainState) -> dict[str, Any]:
        """Train/validation MSE and open-loop final-state error of the best model."""
        best = state.best_params
        metrics = self._evaluate(best, self.val)
        train_loss = normalised_mse(self.model(best), self.scale, self.train_obs, self.train_act)
        return {
            "best_step": int(state.best_step),
            "train_mse": float(train_loss),
            "val_mse": float(metrics["val_loss"]),
            "val_final_mse": float(metrics["final_mse"]),
            "val_final_r2": np.asarray(metrics["final_r2"]).tolist(),
            "val_rollout_mse": float(metrics["rollout_mse"]),
        }
