"""Online BPO, the paper's Algorithm 1: interact, store whole episodes, fit the model, improve
the policy through the model, in one loop.

Schedule (defaults are the paper's): every env step acts in the real task (uniform random
actions during the first ``warmup_steps``, the stochastic policy afterwards); every
``model_every`` env steps one model update (:func:`~awmctl.algorithms.fit.model_step`) on
``model_batch`` stored whole episodes; every ``policy_every`` env steps one policy update
(:func:`~awmctl.algorithms.bpo.policy_step`) from ``policy_batch`` stored initial observations
with a full-horizon imagined rollout (no critic); evaluation every ``eval_every`` env steps.

One compiled *block* runs ``policy_every`` env steps with their model updates and then the policy
update (scans inside; no Python loop over env steps); a chunk is the blocks of one evaluation
period, vmapped over a leading seed axis. Normalisation statistics of the model and of the
policy's input are set from the first complete episode (collected with random actions) at the
moment it is stored.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from awmctl import optim
from awmctl.algorithms.base import Algorithm, LearningCurve
from awmctl.algorithms.bpo import policy_step
from awmctl.algorithms.fit import model_step
from awmctl.errors import BadInputError
from awmctl.models import AbstractWorldModel, ModelSpec, PolicyInputGrad, check_context
from awmctl.policies import Policy, build_policy
from awmctl.rollouts import EpisodeReplay, true_return
from awmctl.seeds import seed_stream
from awmctl.tasks import Task, reset_key
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
    #: None: the model's default (``stop`` for AWMs: the direct path; ``full`` otherwise)
    policy_input_grad: PolicyInputGrad | None = None

    def check(self) -> None:
        if min(self.env_steps, self.model_every, self.policy_every, self.eval_every, self.model_batch, self.policy_batch) < 1:
            raise BadInputError("--env-steps, --model-every, --policy-every and --eval-every must be at least 1")
        if self.policy_every % self.model_every:
            raise BadInputError(f"--policy-every ({self.policy_every}) must be a multiple of --model-every ({self.model_every})")
        if self.eval_every % self.policy_every:
            raise BadInputError(f"--eval-every ({self.eval_every}) must be a multiple of --policy-every ({self.policy_every})")
        if not (self.model_lr > 0 and self.policy_lr > 0):
            raise BadInputError("--lr and --model-lr must be positive")
        if self.policy_input_grad not in (None, "stop", "full"):
            raise BadInputError(f"--policy-input-grad must be stop or full, got {self.policy_input_grad!r}")

    @property
    def steps_run(self) -> int:
        """Env steps actually taken: --env-steps rounded up to whole evaluation periods (the
        paper's 5000 with evaluation every 32 gives 5024)."""
        return math.ceil(self.env_steps / self.eval_every) * self.eval_every

    def for_model(self, spec: ModelSpec) -> OnlineConfig:
        """This config with the model's default policy-input gradient filled in."""
        if self.policy_input_grad is not None:
            return self
        return dataclasses.replace(self, policy_input_grad=spec.policy_input_grad)


class OnlineState(NamedTuple):
    model: Any  # model float arrays (normalisers included)
    model_opt: Any
    policy: Any  # policy float arrays
    policy_opt: Any
    replay: EpisodeReplay
    env_state: jax.Array
    k: jax.Array  # step index within the episode in progress
    t: jax.Array  # env steps taken
    key: jax.Array  # raw key data


class OnlineBPO(Algorithm[OnlineState]):
    """Compiled Algorithm 1 for one task, model spec and policy family (vmapped over seeds).

    Each seed's model is initialised from ``jax.random.key(seed)``, its policy from the
    ``online/policy-init`` stream of the seed.
    """

    unit: ClassVar[str] = "env step"
    score: ClassVar[str] = "eval/eval_return"
    higher_is_better: ClassVar[bool] = True
    curve: ClassVar[LearningCurve] = LearningCurve(
        "learning_curve.png", ("eval/eval_return",), "eval return (deterministic policy)", "environment step")

    def __init__(self, task: Task, spec: ModelSpec, policy_kind: str, config: OnlineConfig):
        config = config.for_model(spec)
        config.check()
        if not spec.trainable:
            raise BadInputError(f"online BPO fits a world model while interacting; {spec.name} has nothing to fit "
                                "(pass a model name such as awm-transformer)")
        self.task, self.spec, self.policy_kind, self.config = task, spec, policy_kind, config
        template_model, template_policy = self.build_model(0), self.build_policy(0)
        check_context(template_model, task.horizon)
        self.capacity = math.ceil(config.steps_run / task.horizon) + 1
        model_static = eqx.partition(template_model, eqx.is_inexact_array)[1]
        policy_static = eqx.partition(template_policy, eqx.is_inexact_array)[1]
        self.model_static, self.policy_static = model_static, policy_static
        model_tx, policy_tx = optim.adam(config.model_lr), optim.adam(config.policy_lr, config.clip)
        self.model_tx, self.policy_tx = model_tx, policy_tx
        stop = config.policy_input_grad == "stop"

        def env_step(s: OnlineState, key) -> OnlineState:
            policy = eqx.combine(s.policy, policy_static)
            ka, kr = jax.random.split(key)
            obs = task.observe(s.env_state, s.k)
            random_action = jax.random.uniform(kr, (task.action_size,), obs.dtype, -1.0, 1.0)
            action = jnp.where(s.t < config.warmup_steps, random_action, policy.sample(obs, ka)[0])
            next_state = task.transition(s.env_state, action, s.k)
            replay, done = s.replay.record(s.k, obs, action, task.observe(next_state, s.k + 1))
            # The first stored episode sets the normalisation statistics of model and policy.
            first = done & (s.replay.count == 0)
            episode = replay.episode_observations
            refit_model = eqx.filter(eqx.combine(s.model, model_static).with_normalizers(episode[None]), eqx.is_inexact_array)
            refit_policy = eqx.filter(policy.with_normalizer(episode), eqx.is_inexact_array)
            x0 = task.initial_state(reset_key(key)).astype(next_state.dtype)
            return s._replace(
                model=select_tree(first, refit_model, s.model),
                policy=select_tree(first, refit_policy, s.policy),
                replay=replay,
                env_state=jnp.where(done, x0, next_state),
                k=jnp.where(done, 0, s.k + 1),
                t=s.t + 1,
            )

        def model_update(s: OnlineState, key) -> OnlineState:
            idx = s.replay.sample(key, config.model_batch)
            params, opt, _ = model_step(s.model, s.model_opt, model_static, model_tx,
                                        s.replay.observations[idx], s.replay.actions[idx])
            ready = s.replay.count > 0
            return s._replace(model=select_tree(ready, params, s.model), model_opt=select_tree(ready, opt, s.model_opt))

        def policy_update(s: OnlineState, key) -> OnlineState:
            kb, kl = jax.random.split(key)
            obs0 = s.replay.observations[s.replay.sample(kb, config.policy_batch), 0]
            model = eqx.combine(s.model, model_static)
            params, opt, _, _ = policy_step(s.policy, s.policy_opt, policy_static, policy_tx, model, task, obs0, kl,
                                            config.entropy, stop)
            ready = s.replay.count > 0
            return s._replace(policy=select_tree(ready, params, s.policy), policy_opt=select_tree(ready, opt, s.policy_opt))

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

        blocks_per_eval = config.eval_every // config.policy_every

        def eval_period(s: OnlineState):
            s = jax.lax.fori_loop(0, blocks_per_eval, lambda i, s: block(s), s)
            return s, true_return(eqx.combine(s.policy, policy_static), task)

        self._period = eqx.filter_jit(eqx.filter_vmap(eval_period))

    def build_model(self, seed: int | jax.Array) -> AbstractWorldModel:
        task = self.task
        return self.spec.build(task.state_size, task.action_size, task.horizon, key=jax.random.key(seed), task=task)

    def build_policy(self, seed: int | jax.Array) -> Policy:
        task = self.task
        return build_policy(self.policy_kind, task.obs_size, task.action_size, task.horizon,
                            key=seed_stream(seed, "online/policy-init"))

    # ------------------------------------------------------------------------------ the shape

    def init(self, seeds: Sequence[int]) -> OnlineState:
        task, seeds = self.task, jnp.asarray(seeds)
        models = eqx.filter(eqx.filter_vmap(self.build_model)(seeds), eqx.is_inexact_array)
        policies = eqx.filter(eqx.filter_vmap(self.build_policy)(seeds), eqx.is_inexact_array)
        keys = jax.vmap(lambda s: jax.random.key_data(seed_stream(s, "online/loop")))(seeds)
        replay = EpisodeReplay.empty(self.capacity, task.horizon, task.obs_size, task.action_size)
        n = len(seeds)
        return OnlineState(
            model=models,
            model_opt=jax.vmap(self.model_tx.init)(models),
            policy=policies,
            policy_opt=jax.vmap(self.policy_tx.init)(policies),
            replay=jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (n, *x.shape)), replay),
            env_state=jax.vmap(lambda k: task.initial_state(reset_key(jax.random.wrap_key_data(k))))(keys),
            k=jnp.zeros((n,), jnp.int32),
            t=jnp.zeros((n,), jnp.int32),
            key=keys,
        )

    def run_chunk(self, state: OnlineState) -> tuple[OnlineState, dict[str, np.ndarray]]:
        """``eval_every`` env steps with their updates, then the eval return of every seed."""
        state, returns = self._period(state)
        return state, {"eval/eval_return": np.asarray(returns), "train/episodes": np.asarray(state.replay.count)}

    def progress(self, state: OnlineState) -> int:
        return int(np.asarray(state.t)[0])

    @property
    def total(self) -> int:
        return self.config.steps_run

    def params(self, state: OnlineState) -> Any:
        return state.policy

    def policy(self, params: Any) -> Policy:
        """One seed's policy from its float arrays."""
        return eqx.combine(params, self.policy_static)

    def model(self, params: Any) -> AbstractWorldModel:
        """One seed's world model from its float arrays (``state.model`` holds every seed's)."""
        return eqx.combine(params, self.model_static)


__all__ = ["OnlineBPO", "OnlineConfig", "OnlineState"]
