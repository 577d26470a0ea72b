"""Online BPO, the paper's Algorithm 1: interact, store whole episodes, fit the model, improve
the policy through the model, in one loop.

Schedule (defaults are the paper's): every env step acts in the real task (uniform random
actions during the first ``warmup_steps``, the stochastic policy afterwards); every
``model_every`` env steps one model update on ``model_batch`` stored whole episodes; every
``policy_every`` env steps one policy update from ``policy_batch`` stored initial observations
with a full-horizon imagined rollout (no critic); evaluation every ``eval_every`` env steps.

One compiled *block* runs ``policy_every`` env steps with their model updates and then the policy
update (scans inside; no Python loop over env steps). The block is ``vmap``-ed over a leading seed
axis. Normalisation statistics of the model and of the policy's input are set from the first
complete episode (collected with random actions) at the moment it is stored.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from awmctl import optim
from awmctl.bpo import imagined_return, true_return
from awmctl.errors import BadInputError
from awmctl.fit import normalised_mse
from awmctl.models import WorldModel, fit_normalizers, state_scale
from awmctl.policies import Policy, with_obs_normalizer
from awmctl.tasks import Task
from awmctl.trees import select_tree


@dataclasses.dataclass(frozen=True)
class OnlineConfig:
    env_steps: int = 5000
    warmup_steps: int = 1500
    model_every: int = 2
    policy_every: int = 16
    eval_every: int = 32
    model_batch: int = 64
    policy_batch: int = 16
    model_lr: float = 1e-3
    policy_lr: float = 1e-4
    clip: float = 100.0
    entropy: float = 0.1
    policy_input_grad: str = "stop"

    def check(self) -> None:
        if min(self.env_steps, self.model_every, self.policy_every, self.eval_every, self.model_batch, self.policy_batch) < 1:
            raise BadInputError("--env-steps, --model-every, --policy-every and --eval-every must be at least 1")
        if self.policy_every % self.model_every:
            raise BadInputError(f"--policy-every ({self.policy_every}) must be a multiple of --model-every ({self.model_every})")
        if self.eval_every % self.policy_every:
            raise BadInputError(f"--eval-every ({self.eval_every}) must be a multiple of --policy-every ({self.policy_every})")

    @property
    def steps_run(self) -> int:
        """Env steps actually taken: --env-steps rounded up to whole evaluation periods (the
        paper's 5000 with evaluation every 32 gives 5024)."""
        return math.ceil(self.env_steps / self.eval_every) * self.eval_every


class OnlineState(NamedTuple):
    model: Any  # model float arrays (normalisers included)
    model_opt: Any
    policy: Any  # policy float arrays
    policy_opt: Any
    buffer_obs: jax.Array  # [capacity, H+1, obs] complete episodes
    buffer_act: jax.Array  # [capacity, H, act]
    count: jax.Array  # episodes stored so far (slot = count % capacity)
    episode_obs: jax.Array  # the episode in progress
    episode_act: jax.Array
    env_state: jax.Array
    k: jax.Array  # step index within the episode in progress
    t: jax.Array  # env steps taken
    key: jax.Array  # raw key data


class Online:
    """Compiled Algorithm 1 for one task, model family and policy family (vmapped over seeds)."""

    def __init__(self, task: Task, model: WorldModel, policy: Policy, config: OnlineConfig):
        config.check()
        if model.max_horizon is not None and task.horizon > model.max_horizon:
            raise BadInputError(f"{model.name} has a context of {model.max_horizon} steps; the task has {task.horizon}")
        self.task, self.config = task, config
        self.capacity = math.ceil(config.steps_run / task.horizon) + 1
        model_static = eqx.partition(model, eqx.is_inexact_array)[1]
        policy_static = eqx.partition(policy, eqx.is_inexact_array)[1]
        self.model_static, self.policy_static = model_static, policy_static
        model_tx, policy_tx = optim.adam(config.model_lr), optim.adam(config.policy_lr, config.clip)
        self.model_tx, self.policy_tx = model_tx, policy_tx
        H, stop = task.horizon, config.policy_input_grad == "stop"
        capacity = self.capacity
        x0 = task.initial_state()

        def env_step(s: OnlineState, key) -> OnlineState:
            policy = eqx.combine(s.policy, policy_static)
            ka, kr = jax.random.split(key)
            obs = task.observe(s.env_state, s.k)
            random_action = jax.random.uniform(kr, (task.action_size,), obs.dtype, -1.0, 1.0)
            action = jnp.where(s.t < config.warmup_steps, random_action, policy.sample(obs, ka)[0])
            next_state = task.transition(s.env_state, action, s.k)
            episode_obs = s.episode_obs.at[s.k].set(obs).at[s.k + 1].set(task.observe(next_state, s.k + 1))
            episode_act = s.episode_act.at[s.k].set(action)
            done = s.k + 1 == H
            slot = s.count % capacity
            first = done & (s.count == 0)
            # The first stored episode sets the normalisation statistics of model and policy.
            refit_model = eqx.filter(fit_normalizers(eqx.combine(s.model, model_static), episode_obs[None]), eqx.is_inexact_array)
            refit_policy = eqx.filter(with_obs_normalizer(policy, episode_obs), eqx.is_inexact_array)
            return s._replace(
                model=select_tree(first, refit_model, s.model),
                policy=select_tree(first, refit_policy, s.policy),
                buffer_obs=jnp.where(done, s.buffer_obs.at[slot].set(episode_obs), s.buffer_obs),
                buffer_act=jnp.where(done, s.buffer_act.at[slot].set(episode_act), s.buffer_act),
                count=s.count + done.astype(jnp.int32),
                episode_obs=episode_obs,
                episode_act=episode_act,
                env_state=jnp.where(done, x0.astype(next_state.dtype), next_state),
                k=jnp.where(done, 0, s.k + 1),
                t=s.t + 1,
            )

        def model_update(s: OnlineState, key) -> OnlineState:
            stored = jnp.minimum(s.count, capacity)
            idx = jax.random.randint(key, (config.model_batch,), 0, jnp.maximum(stored, 1))

            def loss(params):
                model = eqx.combine(params, model_static)
                return normalised_mse(model, state_scale(model), s.buffer_obs[idx], s.buffer_act[idx])

            grads = jax.grad(loss)(s.model)
            updates, opt = model_tx.update(grads, s.model_opt, s.model)
            ready = s.count > 0
            return s._replace(model=select_tree(ready, optax.apply_updates(s.model, updates), s.model),
                              model_opt=select_tree(ready, opt, s.model_opt))

        def policy_update(s: OnlineState, key) -> OnlineState:
            kb, kl = jax.random.split(key)
            stored = jnp.minimum(s.count, capacity)
            idx = jax.random.randint(kb, (config.policy_batch,), 0, jnp.maximum(stored, 1))
            obs0 = s.buffer_obs[idx, 0]
            model = eqx.combine(s.model, model_static)

            def loss(params):
                policy = eqx.combine(params, policy_static)
                keys = jax.random.split(kl, config.policy_batch)
                returns, entropy = jax.vmap(lambda o, k: imagined_return(policy, model, task, o, k, stop))(obs0, keys)
                return -(jnp.mean(returns) + config.entropy * jnp.mean(entropy))

            grads = jax.grad(loss)(s.policy)
            updates, opt = policy_tx.update(grads, s.policy_opt, s.policy)
            ready = s.count > 0
            return s._replace(policy=select_tree(ready, optax.apply_updates(s.policy, updates), s.policy),
                              policy_opt=select_tree(ready, opt, s.policy_opt))

        def block(s: OnlineState) -> OnlineState:
            """``policy_every`` env steps, a model update after every ``model_every``, then a
            policy update."""
            key = jax.random.wrap_key_data(s.key)
            key, k_env, k_model, k_policy = jax.random.split(key, 4)
            n_model = config.policy_every // config.model_every

            def model_round(s, keys):
                env_keys, model_key = keys
                s = jax.lax.fori_loop(0, config.model_every, lambda i, s: env_step(s, env_keys[i]), s)
                return model_update(s, model_key), None

            env_keys = jax.random.split(k_env, (n_model, config.model_every))
            s, _ = jax.lax.scan(model_round, s, (env_keys, jax.random.split(k_model, n_model)))
            s = policy_update(s, k_policy)
            return s._replace(key=jax.random.key_data(key))

        def evaluate(s: OnlineState):
            return true_return(eqx.combine(s.policy, policy_static), task)

        blocks_per_eval = config.eval_every // config.policy_every

        def eval_period(s: OnlineState):
            s = jax.lax.fori_loop(0, blocks_per_eval, lambda i, s: block(s), s)
            return s, evaluate(s)

        self._period = eqx.filter_jit(eqx.filter_vmap(eval_period))

    def init(self, models: Any, policies: Any, seeds: np.ndarray) -> OnlineState:
        """Initial states from stacked (leading seed axis) model and policy parameters."""
        task, n = self.task, len(seeds)
        obs_size = task.obs_size
        zeros = lambda *shape: jnp.zeros((n, *shape))  # noqa: E731
        return OnlineState(
            model=models,
            model_opt=jax.vmap(self.model_tx.init)(models),
            policy=policies,
            policy_opt=jax.vmap(self.policy_tx.init)(policies),
            buffer_obs=zeros(self.capacity, task.horizon + 1, obs_size),
            buffer_act=zeros(self.capacity, task.horizon, task.action_size),
            count=jnp.zeros((n,), jnp.int32),
            episode_obs=zeros(task.horizon + 1, obs_size),
            episode_act=zeros(task.horizon, task.action_size),
            env_state=jnp.broadcast_to(task.initial_state(), (n, task.state_size)),
            k=jnp.zeros((n,), jnp.int32),
            t=jnp.zeros((n,), jnp.int32),
            key=jax.vmap(lambda s: jax.random.key_data(jax.random.fold_in(jax.random.key(s), 3)))(jnp.asarray(seeds)),
        )

    def run_period(self, state: OnlineState) -> tuple[OnlineState, np.ndarray]:
        """``eval_every`` env steps with their updates, then the eval return of every seed."""
        state, returns = self._period(state)
        return state, np.asarray(returns)

    def done(self, state: OnlineState) -> bool:
        return int(np.asarray(state.t)[0]) >= self.config.steps_run
