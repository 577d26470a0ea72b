"""Soft actor-critic (SAC), online and model-free: the paper's baseline, in the variant its
authors ran, and standard SAC as an option.

* ``authors`` (default; their ``sac_default`` configuration): one Q-network; a fixed entropy
  coefficient ``alpha``; target copies of the critic *and* the actor (Polyak, ``tau``), the TD
  target's next action drawn from the target actor; the actor trained against the critic.
* ``standard`` (Haarnoja et al. 2018): twin critics whose minimum is used everywhere; ``alpha``
  tuned towards the target entropy ``-|A|``; a target copy of the critics only, the next action
  drawn from the actor itself.

Schedule: uniform random actions for the first ``warmup_steps`` env steps; after them a critic
update every ``critic_every`` env steps and an actor (and temperature) update followed by the
target updates every ``actor_every``, each on ``batch`` transitions drawn uniformly from every
transition of the run (a ring buffer inside the compiled loop). Evaluation every ``eval_every``
env steps with the deterministic actor ``tanh(mean)``.

**The time limit.** Every episode stops after exactly ``H`` steps, and the step index ``k`` is
part of the observation, so the task is a finite-horizon problem whose value after its last step
is exactly zero: the TD target of an episode's last transition is the reward alone (no
bootstrap). Bootstrapping there (the usual treatment of a time limit that the agent cannot see)
would add the value of a next episode's start to a step that has no future, which the step index
in the observation lets the critic avoid.

**Input statistics.** The actor and the critics normalise observations with statistics set once,
at the end of the warm-up, from its transitions (the step index alone runs from 0 to H; raw
inputs of that size slow an MLP's learning down). This is ours; the authors' code may differ.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from awmctl import optim
from awmctl.algorithms.base import (
    Config,
    SeedMode,
    abstract,
    compiled_once,
    over_seeds,
    seeds_in_sequence,
)
from awmctl.algorithms.interaction import (
    OnlineAlgorithm,
    interleaved_block,
    when,
    whole_periods,
)
from awmctl.errors import BadInputError
from awmctl.normalize import Normalizer
from awmctl.policies import MLPPolicy, QNetwork
from awmctl.policies.critic import critics, evaluate
from awmctl.rollouts import TransitionReplay, first_states, true_return
from awmctl.seeds import seed_stream
from awmctl.tasks import Task
from awmctl.trees import repeated

Variant = Literal["authors", "standard"]


@dataclasses.dataclass(frozen=True)
class SACConfig(Config):
    variant: Variant = "authors"
    env_steps: int = 5000
    warmup_steps: int = 1000
    critic_every: int = 2
    actor_every: int = 4
    eval_every: int = 32
    batch: int = 128
    lr: float = 3e-4
    discount: float = 0.99
    tau: float = 0.005
    #: the entropy coefficient (``authors``); its starting value (``standard``)
    alpha: float = 0.1
    width: int = 256

    #: how the seeds share a compiled call, ``vmap`` or ``sequential`` (None: the backend's
    #: default, :func:`~awmctl.algorithms.base.default_seed_mode`); the CLI passes the one it
    #: runs, so that the run's configuration records it and a resume runs its seeds the same way
    seed_mode: SeedMode | None = dataclasses.field(
        default=None, metadata={"option": "AWMCTL_SEEDS"}
    )

    def check(self) -> None:
        if (
            min(
                self.env_steps,
                self.critic_every,
                self.actor_every,
                self.eval_every,
                self.batch,
                self.width,
            )
            < 1
        ):
            raise BadInputError("--env-steps, --eval-every and --batch-size must be at least 1")
        if not 1 <= self.warmup_steps < self.env_steps:
            raise BadInputError(
                f"--warmup-steps must be at least 1 and below --env-steps ({self.env_steps}), "
                f"got {self.warmup_steps}: SAC sets its input statistics from the warm-up"
            )
        if self.actor_every % self.critic_every or self.eval_every % self.actor_every:
            raise BadInputError(
                f"--eval-every ({self.eval_every}) must be a multiple of {self.actor_every} "
                "(the env steps between two actor updates)"
            )
        if not (self.lr > 0 and self.alpha > 0 and 0 < self.tau <= 1 and 0 <= self.discount <= 1):
            raise BadInputError(
                "--lr and alpha must be positive, tau in (0, 1] and the discount in [0, 1]"
            )

    @property
    def critics(self) -> int:
        return 1 if self.variant == "authors" else 2

    @property
    def steps_run(self) -> int:
        """Env steps actually taken: --env-steps rounded up to whole evaluation periods."""
        return whole_periods(self.env_steps, self.eval_every)


# ------------------------------------------------------------------------- the losses, pure


def td_target(
    reward: Float[Array, " B"],
    terminal: Float[Array, " B"],
    next_q: Float[Array, " B"],
    next_log_prob: Float[Array, " B"],
    alpha: Float[Array, ""],
    discount: float,
) -> Float[Array, " B"]:
    """``r + discount (1 - terminal) (Q'(s', a') - alpha log pi(a' | s'))``."""
    return reward + discount * (1.0 - terminal) * (next_q - alpha * next_log_prob)


def critic_loss(
    critic: QNetwork,
    batch: TransitionReplay,
    next_actor: MLPPolicy,
    target_critic: QNetwork,
    alpha: Float[Array, ""],
    discount: float,
    key: PRNGKeyArray,
) -> Float[Array, ""]:
    """Half the mean squared TD error, summed over the (stacked) critics; the next actions come
    from ``next_actor`` and are valued by the minimum over ``target_critic``."""
    keys = jax.random.split(key, batch.rewards.shape[0])
    next_action, next_log_prob = jax.vmap(next_actor.sample)(batch.next_observations, keys)
    next_q = jnp.min(evaluate(target_critic, batch.next_observations, next_action), axis=0)
    target = jax.lax.stop_gradient(
        td_target(batch.rewards, batch.terminals, next_q, next_log_prob, alpha, discount)
    )
    q = evaluate(critic, batch.observations, batch.actions)  # [critics, B]
    return 0.5 * jnp.sum(jnp.mean(jnp.square(q - target[None]), axis=1))


def actor_loss(
    actor: MLPPolicy,
    critic: QNetwork,
    observations: Float[Array, "B obs"],
    alpha: Float[Array, ""],
    key: PRNGKeyArray,
) -> tuple[Float[Array, ""], Float[Array, ""]]:
    """``mean(alpha log pi(a|s) - min_i Q_i(s, a))`` over fresh actions, and their mean
    log-probability."""
    keys = jax.random.split(key, observations.shape[0])
    action, log_prob = jax.vmap(actor.sample)(observations, keys)
    q = jnp.min(evaluate(critic, observations, action), axis=0)
    return jnp.mean(alpha * log_prob - q), jnp.mean(log_prob)


def temperature_loss(
    log_alpha: Float[Array, ""], mean_log_prob: Float[Array, ""], target_entropy: float
) -> Float[Array, ""]:
    """Standard SAC's: ``alpha`` rises while the policy's entropy is below the target."""
    return -log_alpha * jax.lax.stop_gradient(mean_log_prob + target_entropy)


# ---------------------------------------------------------------------------- the algorithm


class SACState(NamedTuple):
    actor: Any
    critic: Any  # stacked over critics
    target_actor: Any
    target_critic: Any
    actor_opt: Any
    critic_opt: Any
    log_alpha: jax.Array
    alpha_opt: Any
    replay: TransitionReplay
    env_state: jax.Array
    k: jax.Array
    t: jax.Array
    key: jax.Array
    episodes: jax.Array  # complete episodes so far
    critic_updates: jax.Array
    actor_updates: jax.Array
    critic_loss: jax.Array  # of the latest critic update


class SAC(OnlineAlgorithm[SACState]):
    """Compiled SAC for one task (seeds run together). Each seed's actor and critics come from
    its ``sac/init`` stream; its actions, resets and updates from ``sac/loop``."""

    def __init__(self, task: Task, config: SACConfig):
        config.check()
        self.task, self.config = task, config
        self.template_policy, self.actor_static = abstract(self.build_actor, 0)
        _, self.critic_static = abstract(self.build_critic, 0)
        self.capacity = config.steps_run  # every transition of the run
        # actor, critics and temperature alike (each has its own state)
        self.tx = optim.adam(config.lr)
        self.target_entropy = -float(task.action_size)
        self.sequential_seeds = seeds_in_sequence(config.seed_mode)
        self._period = over_seeds(self.eval_period, self.sequential_seeds)

    @property
    def authors(self) -> bool:
        """The SAC authors' variant: a target actor and a fixed temperature."""
        return self.config.variant == "authors"

    def critic(self, params: Any) -> QNetwork:
        """The stacked critics from their float arrays."""
        return eqx.combine(params, self.critic_static)

    # ------------------------------------------------------- the loop's parts, one seed each

    def env_step(self, s: SACState, key: PRNGKeyArray) -> SACState:
        """One env step with the actor (random actions in the warm-up), stored as a transition."""
        actor = self.policy(s.actor)
        done = self.act(s, lambda obs, k: actor.sample(obs, k)[0], key)
        stepped = done.stepped
        replay = s.replay.add(done.obs, done.action, stepped.reward, stepped.next_obs, stepped.done)
        return s._replace(
            replay=replay,
            env_state=stepped.state,
            k=stepped.k,
            t=s.t + 1,
            episodes=s.episodes + stepped.done.astype(jnp.int32),
        )

    def set_normalizers(self, s: SACState) -> SACState:
        """Every network's input statistics from the warm-up's transitions."""
        norm = Normalizer.fit(s.replay.observations[: self.config.warmup_steps])
        stacked = repeated(norm, self.config.critics)
        with_actor = lambda p: eqx.tree_at(lambda a: a.obs_norm, p, norm)
        with_critic = lambda p: eqx.tree_at(lambda c: c.obs_norm, p, stacked)
        return s._replace(
            actor=with_actor(s.actor),
            target_actor=with_actor(s.target_actor),
            critic=with_critic(s.critic),
            target_critic=with_critic(s.target_critic),
        )

    def critic_update(self, s: SACState, key: PRNGKeyArray) -> SACState:
        config = self.config
        kb, kl = jax.random.split(key)
        batch = s.replay.sample(kb, config.batch)
        next_actor = self.policy(s.target_actor if self.authors else s.actor)
        alpha = jnp.exp(s.log_alpha)
        loss, grads = jax.value_and_grad(
            lambda c: critic_loss(
                self.critic(c),
                batch,
                next_actor,
                self.critic(s.target_critic),
                alpha,
                config.discount,
                kl,
            )
        )(s.critic)
        updates, opt = self.tx.update(grads, s.critic_opt, s.critic)
        return s._replace(
            critic=optax.apply_updates(s.critic, updates),
            critic_opt=opt,
            critic_updates=s.critic_updates + 1,
            critic_loss=loss,
        )

    def actor_update(self, s: SACState, key: PRNGKeyArray) -> SACState:
        """The actor's update, the temperature's (standard variant) and the targets' averages."""
        tau = self.config.tau
        kb, kl = jax.random.split(key)
        obs = s.replay.sample(kb, self.config.batch).observations
        alpha = jnp.exp(s.log_alpha)
        (_, mean_log_prob), grads = jax.value_and_grad(
            lambda a: actor_loss(self.policy(a), self.critic(s.critic), obs, alpha, kl),
            has_aux=True,
        )(s.actor)
        updates, actor_opt = self.tx.update(grads, s.actor_opt, s.actor)
        actor = optax.apply_updates(s.actor, updates)
        log_alpha, alpha_opt = s.log_alpha, s.alpha_opt
        if not self.authors:
            grad = jax.grad(temperature_loss)(s.log_alpha, mean_log_prob, self.target_entropy)
            step, alpha_opt = self.tx.update(grad, s.alpha_opt, s.log_alpha)
            log_alpha = optax.apply_updates(s.log_alpha, step)
        target_critic = optax.incremental_update(s.critic, s.target_critic, tau)
        target_actor = (
            optax.incremental_update(actor, s.target_actor, tau) if self.authors else s.target_actor
        )
        return s._replace(
            actor=actor,
            actor_opt=actor_opt,
            log_alpha=log_alpha,
            alpha_opt=alpha_opt,
            target_actor=target_actor,
            target_critic=target_critic,
            actor_updates=s.actor_updates + 1,
        )

    def critic_round(self, before: SACState, s: SACState, key: PRNGKeyArray) -> SACState:
        """What follows ``critic_every`` env steps: the normalisers when the warm-up ends, then
        a critic update once it is over."""
        warmup = self.config.warmup_steps
        warm = (before.t < warmup) & (s.t >= warmup)  # in exactly one round
        s = jax.lax.cond(warm, self.set_normalizers, lambda s: s, s)
        return when(s.t > warmup, self.critic_update, s, key)

    def block(self, s: SACState) -> SACState:
        """``actor_every`` env steps with a critic round after every ``critic_every``, then the
        actor's update."""
        config = self.config
        return interleaved_block(
            s,
            self.env_step,
            self.critic_round,
            lambda s, key: when(s.t > config.warmup_steps, self.actor_update, s, key),
            config.actor_every // config.critic_every,
            config.critic_every,
        )

    def eval_period(self, s: SACState) -> tuple[SACState, Float[Array, ""]]:
        """``eval_every`` env steps with their updates, then the deterministic actor's return."""
        blocks = self.config.eval_every // self.config.actor_every
        s = jax.lax.fori_loop(0, blocks, lambda i, s: self.block(s), s)
        return s, true_return(self.policy(s.actor), self.task)

    def build_actor(self, seed: int | jax.Array) -> MLPPolicy:
        task = self.task
        return MLPPolicy(
            task.obs_size,
            task.action_size,
            self.config.width,
            "relu",
            key=jax.random.fold_in(seed_stream(seed, "sac/init"), 0),
        )

    def build_critic(self, seed: int | jax.Array) -> QNetwork:
        task = self.task
        return critics(
            self.config.critics,
            task.obs_size,
            task.action_size,
            self.config.width,
            key=jax.random.fold_in(seed_stream(seed, "sac/init"), 1),
        )

    # ------------------------------------------------------------------------------ the shape

    def init(self, seeds: Sequence[int]) -> SACState:
        return self._init(jnp.asarray(seeds))

    @compiled_once
    def _init(self, seeds: jax.Array) -> SACState:
        task, n = self.task, seeds.shape[0]
        actors = eqx.filter(eqx.filter_vmap(self.build_actor)(seeds), eqx.is_inexact_array)
        critic = eqx.filter(eqx.filter_vmap(self.build_critic)(seeds), eqx.is_inexact_array)
        keys = jax.vmap(lambda s: jax.random.key_data(seed_stream(s, "sac/loop")))(seeds)
        replay = TransitionReplay.empty(self.capacity, task.obs_size, task.action_size)
        log_alpha = jnp.full((n,), math.log(self.config.alpha), jnp.float32)
        zeros = jnp.zeros((n,), jnp.int32)
        return SACState(
            actor=actors,
            critic=critic,
            target_actor=actors,
            target_critic=critic,
            actor_opt=jax.vmap(self.tx.init)(actors),
            critic_opt=jax.vmap(self.tx.init)(critic),
            log_alpha=log_alpha,
            alpha_opt=jax.vmap(self.tx.init)(log_alpha),
            replay=repeated(replay, n),
            env_state=first_states(task, keys),
            k=zeros,
            t=zeros,
            key=keys,
            episodes=zeros,
            critic_updates=zeros,
            actor_updates=zeros,
            critic_loss=jnp.zeros((n,)),
        )

    def run_chunk(self, state: SACState) -> tuple[SACState, dict[str, np.ndarray]]:
        state, returns = self._period(state)
        return state, {
            "eval/eval_return": np.asarray(returns),
            "train/episodes": np.asarray(state.episodes),
            "train/critic_updates": np.asarray(state.critic_updates),
            "train/actor_updates": np.asarray(state.actor_updates),
            "train/critic_loss": np.asarray(state.critic_loss),
            "train/alpha": np.exp(np.asarray(state.log_alpha)),
        }

    def params(self, state: SACState) -> Any:
        return state.actor

    def policy(self, params: Any) -> MLPPolicy:
        """One seed's actor from its float arrays."""
        return eqx.combine(params, self.actor_static)


__all__ = [
    "SAC",
    "SACConfig",
    "SACState",
    "actor_loss",
    "critic_loss",
    "td_target",
    "temperature_loss",
]
