"""Backpropagation-based policy optimisation (BPO) through any world model.

One policy update: from a batch of initial observations, roll the policy out in the model for
the whole horizon (``start``/``step`` under ``lax.scan``), score the imagined trajectory with the
task's *true* reward function on the predicted states and the known step index, and ascend the
return plus an entropy bonus with Adam (global-norm clipping). With ``stop_input`` the policy's
input is gradient-stopped, so the gradient reaches the parameters only through the actions (the
paper's direct path for AWMs).

The run is a pure function of its key, in the PureJaxRL style: :class:`BPO` compiles a chunk of
``log_every`` updates and an evaluation, both ``vmap``-ed over a leading seed axis, so ``--seeds
N`` trains N independent seeds in one program (sharded over local devices when there are
several).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float, PRNGKeyArray

from awmctl import optim
from awmctl.errors import BadInputError
from awmctl.models import SequenceWorldModel, SimulatorModel, WorldModel
from awmctl.policies import Policy, build_policy, with_obs_normalizer
from awmctl.tasks import Task, rollout
from awmctl.trees import select_tree

PolicyInputGrad = Literal["stop", "full"]


@dataclasses.dataclass(frozen=True)
class BPOConfig:
    steps: int = 1000
    batch_size: int = 16
    lr: float = 1e-4
    clip: float = 100.0
    entropy: float = 0.1
    policy_input_grad: PolicyInputGrad = "stop"
    log_every: int = 50

    def check(self) -> None:
        for name in ("steps", "batch_size", "log_every"):
            if getattr(self, name) < 1:
                raise BadInputError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise BadInputError(f"--lr must be positive, got {self.lr}")
        if self.policy_input_grad not in ("stop", "full"):
            raise BadInputError(f"--policy-input-grad must be stop or full, got {self.policy_input_grad!r}")


def imagined_return(
    policy: Policy,
    model: WorldModel,
    task: Task,
    obs0: Float[Array, " obs"],
    key: PRNGKeyArray,
    stop_input: bool,
    deterministic: bool = False,
) -> tuple[Float[Array, ""], Float[Array, ""]]:
    """Return of one imagined episode under ``policy`` and its mean per-step entropy estimate."""
    keys = jax.random.split(key, task.horizon)
    if stop_input and isinstance(model, SequenceWorldModel) and model.family == "awm":
        return _awm_direct_path_return(policy, model, task, obs0, keys, deterministic)
    return _stepwise_return(policy, model, task, obs0, keys, stop_input, deterministic)


def _stepwise_return(policy, model, task, obs0, keys, stop_input, deterministic):
    """The closed loop step by step under ``lax.scan``: works for every model."""

    def body(carry, inputs):
        model_carry, obs = carry
        k, sub = inputs
        seen = jax.lax.stop_gradient(obs) if stop_input else obs
        if deterministic:
            action, logp = policy.deterministic(seen), jnp.zeros((), obs.dtype)
        else:
            action, logp = policy.sample(seen, sub)
        model_carry, next_obs = model.step(model_carry, action)
        reward = task.reward(obs[:-1], action, k, next_obs[:-1])
        return (model_carry, next_obs), (reward, -logp)

    _, (rewards, neg_logp) = jax.lax.scan(body, (model.start(obs0), obs0), (jnp.arange(task.horizon), keys))
    return jnp.sum(rewards), jnp.mean(neg_logp)


def _awm_direct_path_return(policy, model, task, obs0, keys, deterministic):
    """The same value and gradient as the step-by-step rollout, computed in parallel.

    An AWM's prediction of s_{t+1} reads only s_0 and a_0..a_t, and with a gradient-stopped
    policy input the gradient reaches the parameters only through the actions. So: run the
    closed loop once with the key-value cache *without* differentiating it, to get the
    observations the policy saw; re-evaluate the policy on those (constant) observations, which
    gives the same actions, now differentiable; and predict every state from s_0 and those
    actions in one parallel forward pass (the training pass), whose backward is far cheaper than
    backpropagating through H cache updates.
    """
    steps = jnp.arange(task.horizon)
    seen = jax.lax.stop_gradient(_closed_loop_observations(policy, model, obs0, keys, deterministic))
    if deterministic:
        actions, logp = jax.vmap(policy.deterministic)(seen), jnp.zeros((task.horizon,), obs0.dtype)
    else:
        actions, logp = jax.vmap(policy.sample)(seen, keys)
    predicted = model.predict(jnp.concatenate([obs0[None, :-1], seen[1:, :-1]]), actions)
    states = jnp.concatenate([obs0[None, :-1], predicted[:-1]])
    rewards = jax.vmap(task.reward)(states, actions, steps, predicted)
    return jnp.sum(rewards), jnp.mean(-logp)


def _closed_loop_observations(policy, model, obs0, keys, deterministic):
    """Observations o_0..o_{H-1} the policy acts on in imagination (cache-based rollout)."""

    def body(carry, key):
        model_carry, obs = carry
        action = policy.deterministic(obs) if deterministic else policy.sample(obs, key)[0]
        model_carry, next_obs = model.step(model_carry, action)
        return (model_carry, next_obs), obs

    _, seen = jax.lax.scan(body, (model.start(obs0), obs0), keys)
    return seen


def true_return(policy: Policy, task: Task) -> Float[Array, ""]:
    """Return of the deterministic policy on the real task (tasks are deterministic)."""
    episode = rollout(task, lambda obs, k, key: policy.deterministic(obs), jax.random.key(0))
    return jnp.sum(episode.rewards)


def initial_policies(
    kind: str, task: Task, observations: Float[Array, "N T obs"], seeds: np.ndarray
) -> tuple[Policy, Any]:
    """A template policy and the stacked float parameters of one fresh policy per seed.

    Each seed's policy is initialised from ``jax.random.key(seed)`` (so a seed inside a sweep is
    that seed run alone) and normalises its inputs with statistics of ``observations``.
    """
    template = build_policy(kind, task.obs_size, task.action_size, task.horizon, key=jax.random.key(0))
    policies = eqx.filter_vmap(
        lambda s: with_obs_normalizer(
            build_policy(kind, task.obs_size, task.action_size, task.horizon, key=jax.random.key(s)), observations
        )
    )(jnp.asarray(seeds))
    return template, eqx.filter(policies, eqx.is_inexact_array)


class BPOState(NamedTuple):
    params: Any  # the policy's float arrays
    opt_state: Any
    key: Array  # raw key data
    step: Array


class BPO:
    """Compiled BPO of one policy family through one model on one task (see module docstring)."""

    def __init__(self, task: Task, model: WorldModel, policy: Policy, init_obs: Float[Array, "N obs"], config: BPOConfig):
        config.check()
        if model.max_horizon is not None and task.horizon > model.max_horizon:
            raise BadInputError(
                f"{model.name} has a context of {model.max_horizon} steps; cannot imagine H={task.horizon}"
            )
        self.task, self.config = task, config
        self.model = model
        self.simulator = SimulatorModel(task)
        self.init_obs = jnp.asarray(init_obs)
        params, self.static = eqx.partition(policy, eqx.is_inexact_array)
        self.optimizer = optim.adam(config.lr, config.clip)
        stop = config.policy_input_grad == "stop"
        static, optimizer = self.static, self.optimizer

        def loss(params, model, obs0, key):
            policy = eqx.combine(params, static)
            keys = jax.random.split(key, obs0.shape[0])
            returns, entropy = jax.vmap(lambda o, k: imagined_return(policy, model, task, o, k, stop))(obs0, keys)
            return -(jnp.mean(returns) + config.entropy * jnp.mean(entropy)), jnp.mean(returns)

        grad_fn = jax.value_and_grad(loss, has_aux=True)

        def batch(key, init_obs):
            idx = jax.random.randint(key, (config.batch_size,), 0, init_obs.shape[0])
            return init_obs[idx]

        def chunk(state: BPOState, model, init_obs, active):
            def one(carry, is_active):
                params, opt_state, key = carry
                key, kb, kl = jax.random.split(jax.random.wrap_key_data(key), 3)
                (_, imagined), grads = grad_fn(params, model, batch(kb, init_obs), kl)
                updates, new_opt = optimizer.update(grads, opt_state, params)
                new_params = optax.apply_updates(params, updates)
                gnorm = optax.tree.norm(grads)
                return (select_tree(is_active, new_params, params), select_tree(is_active, new_opt, opt_state),
                        jax.random.key_data(key)), (
                    jnp.where(is_active, imagined, jnp.nan), jnp.where(is_active, gnorm, jnp.nan))

            (params, opt_state, key), (imagined, gnorms) = jax.lax.scan(
                one, (state.params, state.opt_state, state.key), active)
            new_state = BPOState(params, opt_state, key, state.step + jnp.sum(active.astype(jnp.int32)))
            return new_state, {"imagined_return": jnp.nanmean(imagined), "grad_norm": jnp.nanmean(gnorms)}

        def evaluate(state: BPOState, model, simulator, init_obs):
            """Eval return on the real task; cosine between model and simulator gradients."""
            policy = eqx.combine(state.params, static)
            key = jax.random.fold_in(jax.random.wrap_key_data(state.key), 7)
            kb, kl = jax.random.split(key)
            obs0 = batch(kb, init_obs)
            (_, imagined), g_model = grad_fn(state.params, model, obs0, kl)
            (_, _), g_sim = grad_fn(state.params, simulator, obs0, kl)
            a, b = ravel_pytree(g_model)[0], ravel_pytree(g_sim)[0]
            cosine = jnp.dot(a, b) / jnp.maximum(jnp.linalg.norm(a) * jnp.linalg.norm(b), 1e-30)
            det_imagined, _ = imagined_return(policy, model, task, init_obs[0], kl, stop, deterministic=True)
            return {
                "eval_return": true_return(policy, task),
                "imagined_return_det": det_imagined,
                "grad_cosine": cosine,
                "grad_norm_model": jnp.linalg.norm(a),
                "grad_norm_simulator": jnp.linalg.norm(b),
            }

        # vmap over the seed axis of the state; the model and data are shared.
        # filter_* because models hold non-array leaves (activation functions).
        self._chunk = eqx.filter_jit(eqx.filter_vmap(chunk, in_axes=(0, None, None, None)))
        self._evaluate = eqx.filter_jit(eqx.filter_vmap(evaluate, in_axes=(0, None, None, None)))

    # ----------------------------------------------------------------------------- running

    def init_from(self, policies: Any, seeds: np.ndarray) -> BPOState:
        """Stacked policy parameters (leading seed axis) -> initial states for those seeds."""
        params = policies
        keys = jax.vmap(lambda s: jax.random.key_data(jax.random.fold_in(jax.random.key(s), 2)))(jnp.asarray(seeds))
        opt_state = jax.vmap(self.optimizer.init)(params)
        return BPOState(params, opt_state, keys, jnp.zeros((len(seeds),), jnp.int32))

    def run_chunk(self, state: BPOState) -> tuple[BPOState, dict[str, np.ndarray]]:
        remaining = self.config.steps - int(np.asarray(state.step)[0])
        active = jnp.arange(self.config.log_every) < remaining
        state, stats = self._chunk(state, self.model, self.init_obs, active)
        evals = self._evaluate(state, self.model, self.simulator, self.init_obs)
        metrics = {**stats, **evals}
        return state, {k: np.asarray(v) for k, v in metrics.items()}

    def done(self, state: BPOState) -> bool:
        return int(np.asarray(state.step)[0]) >= self.config.steps

    def policy(self, params: Any) -> Policy:
        return eqx.combine(params, self.static)
