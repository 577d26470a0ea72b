"""Imagined returns through any world model, and true returns on the task.

An imagined episode: from an initial observation, roll a policy out in a model for the whole
horizon (``start``/``step`` under ``lax.scan``) and score it with the task's *true* reward
function on the predicted states and the known step index. With ``stop_input`` the policy's
input is gradient-stopped, so the gradient reaches the policy only through its actions (the
paper's direct path for AWMs).

Through an ensemble (:class:`~awmctl.models.Ensemble`) every member imagines the episode on its
own (:func:`member_returns`), and a return through the ensemble is the mean of its members'.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Key, PRNGKeyArray

from awmctl.models import AbstractWorldModel, Ensemble, imagine
from awmctl.policies import MarkovPolicy, Policy
from awmctl.tasks import Task, rollout


def imagined_return(
    policy: MarkovPolicy,
    model: AbstractWorldModel,
    task: Task,
    obs0: Float[Array, " obs"],
    key: PRNGKeyArray,
    stop_input: bool,
    deterministic: bool = False,
) -> tuple[Float[Array, ""], Float[Array, ""]]:
    """Return of one imagined episode under ``policy`` and its mean per-step entropy estimate
    (through an ensemble: the means over its members' own episodes, :func:`member_returns`)."""
    if isinstance(model, Ensemble):
        returns, entropies = member_returns(
            policy, model, task, obs0, key, stop_input, deterministic
        )
        return jnp.mean(returns), jnp.mean(entropies)
    keys = jax.random.split(key, task.horizon)
    if stop_input and model.direct_path:
        return direct_path_return(policy, model, task, obs0, keys, deterministic)
    return stepwise_return(policy, model, task, obs0, keys, stop_input, deterministic)


def member_returns(
    policy: MarkovPolicy,
    model: AbstractWorldModel,
    task: Task,
    obs0: Float[Array, " obs"],
    key: PRNGKeyArray,
    stop_input: bool,
    deterministic: bool = False,
) -> tuple[Float[Array, " K"], Float[Array, " K"]]:
    """Each member's imagined return and entropy estimate (one value each for a model that is
    not an ensemble): every member rolls ``policy`` out in its own imagination from ``obs0``, with
    the same action noise (``key``), so their spread is the members' disagreement, not noise."""
    if not isinstance(model, Ensemble):
        value, entropy = imagined_return(policy, model, task, obs0, key, stop_input, deterministic)
        return value[None], entropy[None]
    return model.map(
        lambda m: imagined_return(policy, m, task, obs0, key, stop_input, deterministic)
    )


def stepwise_return(
    policy: MarkovPolicy,
    model: AbstractWorldModel,
    task: Task,
    obs0: Float[Array, " obs"],
    keys: Key[Array, " H"],
    stop_input: bool,
    deterministic: bool,
) -> tuple[Float[Array, ""], Float[Array, ""]]:
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

    _, (rewards, neg_logp) = jax.lax.scan(
        body, (model.start(obs0), obs0), (jnp.arange(task.horizon), keys)
    )
    return jnp.sum(rewards), jnp.mean(neg_logp)


def direct_path_return(
    policy: MarkovPolicy,
    model: AbstractWorldModel,
    task: Task,
    obs0: Float[Array, " obs"],
    keys: Key[Array, " H"],
    deterministic: bool,
) -> tuple[Float[Array, ""], Float[Array, ""]]:
    """The same value and gradient as :func:`stepwise_return` with a stopped policy input, for a
    model with the direct path (``model.direct_path``), computed in parallel.

    An AWM's prediction of s_{t+1} reads only s_0 and a_0..a_t, and with a gradient-stopped
    policy input the gradient reaches the parameters only through the actions. So: run the
    closed loop once with the key-value cache *without* differentiating it, to get the
    observations the policy saw; re-evaluate the policy on those (constant) observations, which
    gives the same actions, now differentiable; and predict every state from s_0 and those
    actions in one parallel forward pass (the training pass), whose backward is far cheaper than
    backpropagating through H cache updates.
    """
    steps = jnp.arange(task.horizon)
    seen = jax.lax.stop_gradient(closed_loop_observations(policy, model, obs0, keys, deterministic))
    if deterministic:
        actions, logp = jax.vmap(policy.deterministic)(seen), jnp.zeros((task.horizon,), obs0.dtype)
    else:
        actions, logp = jax.vmap(policy.sample)(seen, keys)
    predicted = model.predict(jnp.concatenate([obs0[None, :-1], seen[1:, :-1]]), actions)
    states = jnp.concatenate([obs0[None, :-1], predicted[:-1]])
    rewards = jax.vmap(task.reward)(states, actions, steps, predicted)
    return jnp.sum(rewards), jnp.mean(-logp)


def closed_loop_observations(
    policy: MarkovPolicy,
    model: AbstractWorldModel,
    obs0: Float[Array, " obs"],
    keys: Key[Array, " H"],
    deterministic: bool,
) -> Float[Array, "H obs"]:
    """Observations o_0..o_{H-1} the policy acts on in imagination (cache-based rollout)."""

    def body(carry, key):
        model_carry, obs = carry
        action = policy.deterministic(obs) if deterministic else policy.sample(obs, key)[0]
        model_carry, next_obs = model.step(model_carry, action)
        return (model_carry, next_obs), obs

    _, seen = jax.lax.scan(body, (model.start(obs0), obs0), keys)
    return seen


def predicted_rewards(
    model: AbstractWorldModel,
    task: Task,
    obs0: Float[Array, " obs"],
    actions: Float[Array, "H act"],
) -> Float[Array, " H"]:
    """The model's reward at every step of a recorded episode: its actions replayed open loop
    from its first observation, scored with the task's true reward. Step t reads only actions
    0..t, so the first k rewards of an episode in progress need only its first k actions.
    Through an ensemble: the mean of its members' rewards, each on that member's own states."""
    if isinstance(model, Ensemble):
        return jnp.mean(model.map(lambda m: predicted_rewards(m, task, obs0, actions)), axis=0)
    predicted = imagine(model, obs0, actions)
    before = jnp.concatenate([obs0[None], predicted[:-1]])
    return jax.vmap(task.reward)(
        before[:, :-1], actions, jnp.arange(task.horizon), predicted[:, :-1]
    )


def predicted_return(
    model: AbstractWorldModel,
    task: Task,
    obs0: Float[Array, " obs"],
    actions: Float[Array, "H act"],
) -> Float[Array, ""]:
    """The model's return for a recorded episode (compare with the episode's real return)."""
    return jnp.sum(predicted_rewards(model, task, obs0, actions))


def true_return(policy: Policy, task: Task, key: PRNGKeyArray | None = None) -> Float[Array, ""]:
    """Return of the deterministic policy on the real task (``key``: its reset, for tasks with
    random resets; the built-in tasks are deterministic)."""
    episode = rollout(task, policy.controller(), jax.random.key(0) if key is None else key)
    return jnp.sum(episode.rewards)


__all__ = [
    "closed_loop_observations",
    "direct_path_return",
    "imagined_return",
    "member_returns",
    "predicted_return",
    "predicted_rewards",
    "stepwise_return",
    "true_return",
]
