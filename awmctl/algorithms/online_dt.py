"""The Online Decision Transformer (Zheng, Zhang and Grover, ICML 2022), trained online from
scratch: the paper's second model-free baseline.

There is no offline dataset to pre-train on here, so the warm-up episodes (uniform random
actions) fill the replay first. Then, on the same env-step budget as online BPO:

* every env step acts with the transformer's *stochastic* policy, conditioned on a return-to-go
  that starts, each episode, above the best return seen so far (``best + explore_margin x (best -
  worst)`` over the stored episodes: exploration asks for more than has been achieved; the
  original asks for twice the evaluation target, which has no meaning for negative returns);
* every ``update_every`` env steps one update on ``batch`` windows of ``context`` steps cut from
  stored episodes (uniformly), with their hindsight returns-to-go: loss = negative log-likelihood
  of the replayed actions - temperature x entropy (estimated from sampled actions); the
  temperature is learned towards the target entropy ``-|A|``; LAMB with weight decay, a linear
  warm-up of the learning rate and gradient clipping;
* every ``eval_every`` env steps, an evaluation with the mean action, conditioned on the best
  return seen so far.

The replay is FIFO over whole episodes and holds every episode of the run by default. Input
statistics (observations and returns-to-go) are set once, from the warm-up episodes. Sizes and
settings are ours (the paper gives its own only in an appendix table we do not have): see
``docs/usage.md``.
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
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from awmctl import optim
from awmctl.algorithms.base import (
    Config,
    LearningCurve,
    SeedMode,
    abstract,
    compiled_once,
    over_seeds,
    seeds_in_sequence,
)
from awmctl.algorithms.interaction import (
    OnlineAlgorithm,
    interleaved_rounds,
    when,
    whole_periods,
)
from awmctl.errors import BadInputError
from awmctl.policies import Context, DecisionTransformer, returns_to_go, tanh_gaussian
from awmctl.rollouts import EpisodeReplay, first_states, true_return
from awmctl.seeds import seed_stream
from awmctl.tasks import Task
from awmctl.trees import repeated


@dataclasses.dataclass(frozen=True)
class OnlineDTConfig(Config):
    env_steps: int = 5000
    warmup_steps: int = 1500
    update_every: int = 2
    eval_every: int = 32
    batch: int = 64
    context: int = 20
    width: int = 64
    layers: int = 2
    heads: int = 4
    mlp_width: int = 128
    lr: float = 1e-3
    weight_decay: float = 5e-4
    lr_warmup: int = 100  # updates
    clip: float = 0.25
    temperature: float = 0.1  # its starting value
    temperature_lr: float = 1e-4
    explore_margin: float = 0.25

    #: how the seeds share a compiled call, ``vmap`` or ``sequential`` (None: the backend's
    #: default, :func:`~awmctl.algorithms.base.default_seed_mode`); the CLI passes the one it
    #: runs, so that the run's configuration records it and a resume runs its seeds the same way
    seed_mode: SeedMode | None = dataclasses.field(
        default=None, metadata={"option": "AWMCTL_SEEDS"}
    )

    def check(self, horizon: int) -> None:
        if min(self.env_steps, self.update_every, self.eval_every, self.batch, self.context) < 1:
            raise BadInputError(
                "--env-steps, --eval-every, --batch-size and --context must be at least 1"
            )
        if not horizon <= self.warmup_steps < self.env_steps:
            raise BadInputError(
                f"--warmup-steps must cover at least one episode ({horizon} steps) and lie below "
                f"--env-steps ({self.env_steps}), got {self.warmup_steps}: Online-DT learns from "
                "the warm-up episodes first"
            )
        if self.eval_every % self.update_every:
            raise BadInputError(
                f"--eval-every ({self.eval_every}) must be a multiple of {self.update_every}"
            )
        if self.width % self.heads:
            raise BadInputError(
                f"the width ({self.width}) must be a multiple of the heads ({self.heads})"
            )
        if not (self.lr > 0 and self.temperature > 0 and self.clip > 0):
            raise BadInputError("--lr must be positive")

    @property
    def steps_run(self) -> int:
        return whole_periods(self.env_steps, self.eval_every)

    def hyper(self) -> dict[str, int]:
        return {
            "context": self.context,
            "width": self.width,
            "layers": self.layers,
            "heads": self.heads,
            "mlp_width": self.mlp_width,
        }


# ------------------------------------------------------------------------- the loss, pure


def sample_windows(
    replay: EpisodeReplay, key: PRNGKeyArray, n: int, window: int
) -> tuple[Float[Array, "n K"], Float[Array, "n K obs"], Float[Array, "n K act"]]:
    """``n`` windows of ``window`` consecutive steps of stored episodes (episodes and starts
    uniform): returns-to-go (hindsight: what the episode got from each step on), observations
    and actions."""
    k_episode, k_start = jax.random.split(key)
    slots = replay.sample(k_episode, n)
    horizon = replay.actions.shape[1]
    starts = jax.random.randint(k_start, (n,), 0, horizon - window + 1)
    cut = lambda x, s: jax.lax.dynamic_slice_in_dim(x, s, window)
    to_go = returns_to_go(replay.rewards[slots])
    return (
        jax.vmap(cut)(to_go, starts),
        jax.vmap(cut)(replay.observations[slots, :horizon], starts),
        jax.vmap(cut)(replay.actions[slots], starts),
    )


def dt_loss(
    policy: DecisionTransformer,
    windows: tuple[Array, Array, Array],
    temperature: Float[Array, ""],
    key: PRNGKeyArray,
) -> tuple[Float[Array, ""], tuple[Float[Array, ""], Float[Array, ""]]]:
    """Online-DT's policy loss: ``-mean log pi(a | context) - temperature x entropy``; also the
    negative log-likelihood and the entropy estimate (``-mean log pi`` of sampled actions)."""
    to_go, observations, actions = windows
    mean, scale = jax.vmap(policy)(to_go, observations, actions)
    nll = -jnp.mean(tanh_gaussian.log_prob(mean, scale, actions))
    entropy = -jnp.mean(tanh_gaussian.sample(mean, scale, key)[1])
    return nll - temperature * entropy, (nll, entropy)


class OnlineDTState(NamedTuple):
    policy: Any
    opt: Any
    log_temperature: jax.Array
    temperature_opt: Any
    replay: EpisodeReplay
    context: Context  # of the episode in progress
    to_go: jax.Array  # the return-to-go the next action is conditioned on
    episode_return: jax.Array  # of the episode in progress, so far
    best_return: jax.Array  # over complete episodes
    worst_return: jax.Array
    env_state: jax.Array
    k: jax.Array
    t: jax.Array
    key: jax.Array
    updates: jax.Array
    nll: jax.Array  # of the latest update
    entropy: jax.Array


class OnlineDT(OnlineAlgorithm[OnlineDTState]):
    """Compiled Online-DT for one task (seeds run together); initial weights from the
    ``online-dt/init`` stream of each seed, everything else from ``online-dt/loop``."""

    curve: ClassVar[LearningCurve] = LearningCurve(
        "learning_curve.png", ("eval/eval_return",), "eval return (mean action)", "environment step"
    )

    def __init__(self, task: Task, config: OnlineDTConfig):
        config.check(task.horizon)
        self.task, self.config = task, config
        self.template_policy, self.policy_static = abstract(self.build_policy, 0)
        # every episode, and the one in progress
        self.capacity = math.ceil(config.steps_run / task.horizon) + 1
        self.tx = optim.lamb(config.lr, config.weight_decay, config.lr_warmup, config.clip)
        self.temperature_tx = optim.adam(config.temperature_lr)
        self.warm_episodes = config.warmup_steps // task.horizon
        self.window = min(config.context, task.horizon)
        self.target_entropy = -float(task.action_size)
        self.sequential_seeds = seeds_in_sequence(config.seed_mode)
        self._period = over_seeds(self.eval_period, self.sequential_seeds)

    def explore_target(self, best: jax.Array, worst: jax.Array) -> jax.Array:
        """The return-to-go a new episode asks for: a margin above the best seen."""
        return best + self.config.explore_margin * (best - worst)

    # ------------------------------------------------------- the loop's parts, one seed each

    def env_step(self, s: OnlineDTState, key: PRNGKeyArray) -> OnlineDTState:
        """One env step conditioned on the return-to-go (random actions in the warm-up); a
        completed episode updates the best and worst returns and the next episode's target."""
        policy = self.policy(s.policy)
        context = lambda obs: s.context.at(s.k, s.to_go, obs)
        done = self.act(s, lambda obs, k: policy.explore(context(obs), s.k, k), key)
        stepped = done.stepped
        replay, ended = s.replay.record(
            s.k, done.obs, done.action, stepped.next_obs, stepped.reward
        )
        episode_return = s.episode_return + stepped.reward
        best = jnp.where(ended, jnp.maximum(s.best_return, episode_return), s.best_return)
        worst = jnp.where(ended, jnp.minimum(s.worst_return, episode_return), s.worst_return)
        return s._replace(
            replay=replay,
            context=context(done.obs).acted(s.k, done.action),
            to_go=jnp.where(ended, self.explore_target(best, worst), s.to_go - stepped.reward),
            episode_return=jnp.where(ended, 0.0, episode_return),
            best_return=best,
            worst_return=worst,
            env_state=stepped.state,
            k=stepped.k,
            t=s.t + 1,
        )

    def set_statistics(self, s: OnlineDTState) -> OnlineDTState:
        """Input units from the warm-up episodes (slots ``0 .. warm_episodes - 1``)."""
        warm = self.warm_episodes
        policy = self.policy(s.policy).with_normalizer(s.replay.observations[:warm])
        policy = policy.with_returns(returns_to_go(s.replay.rewards[:warm]), s.best_return)
        return s._replace(policy=eqx.filter(policy, eqx.is_inexact_array))

    def update(self, s: OnlineDTState, key: PRNGKeyArray) -> OnlineDTState:
        kw, kl = jax.random.split(key)
        windows = sample_windows(s.replay, kw, self.config.batch, self.window)
        temperature = jnp.exp(s.log_temperature)
        (_, (nll, entropy)), grads = jax.value_and_grad(
            lambda p: dt_loss(self.policy(p), windows, temperature, kl), has_aux=True
        )(s.policy)
        updates, opt = self.tx.update(grads, s.opt, s.policy)
        # The temperature falls while the entropy is above its target and rises below it.
        t_grad = temperature * jax.lax.stop_gradient(entropy - self.target_entropy)
        t_step, t_opt = self.temperature_tx.update(t_grad, s.temperature_opt, s.log_temperature)
        return s._replace(
            policy=optax.apply_updates(s.policy, updates),
            opt=opt,
            log_temperature=optax.apply_updates(s.log_temperature, t_step),
            temperature_opt=t_opt,
            updates=s.updates + 1,
            nll=nll,
            entropy=entropy,
        )

    def update_round(
        self, before: OnlineDTState, s: OnlineDTState, key: PRNGKeyArray
    ) -> OnlineDTState:
        """What follows ``update_every`` env steps: the input statistics when the warm-up ends,
        then an update once it is over."""
        warmup = self.config.warmup_steps
        warm = (before.t < warmup) & (s.t >= warmup)
        s = jax.lax.cond(warm, self.set_statistics, lambda s: s, s)
        return when(s.t > warmup, self.update, s, key)

    def eval_period(self, s: OnlineDTState) -> tuple[OnlineDTState, Float[Array, ""]]:
        """``eval_every`` env steps with their updates, then the return of the policy asked for
        the best return seen."""
        rounds = self.config.eval_every // self.config.update_every
        key = jax.random.wrap_key_data(s.key)
        key, sub = jax.random.split(key)
        # each round's key makes its env steps' keys and its update's
        k_env, k_update = jax.vmap(jax.random.split, out_axes=1)(jax.random.split(sub, rounds))
        step_keys = jax.vmap(lambda k: jax.random.split(k, self.config.update_every))(k_env)
        s = interleaved_rounds(s, self.env_step, self.update_round, step_keys, k_update)
        s = s._replace(
            key=jax.random.key_data(key), policy=self._with_target(s.policy, s.best_return)
        )
        return s, true_return(self.policy(s.policy), self.task)

    @staticmethod
    def _with_target(params: Any, target: Float[Array, ""]) -> Any:
        """The evaluation target follows the best return seen (stored with the parameters, so a
        saved policy acts as evaluated; no gradient or weight decay ever reaches it)."""
        target = jnp.where(jnp.isfinite(target), target, 0.0)  # no episode complete yet
        return eqx.tree_at(lambda p: p.target, params, target.astype(params.target.dtype))

    def build_policy(self, seed: int | jax.Array) -> DecisionTransformer:
        task = self.task
        return DecisionTransformer(
            task.obs_size,
            task.action_size,
            task.horizon,
            **self.config.hyper(),
            key=seed_stream(seed, "online-dt/init"),
        )

    # ------------------------------------------------------------------------------ the shape

    def init(self, seeds: Sequence[int]) -> OnlineDTState:
        return self._init(jnp.asarray(seeds))

    @compiled_once
    def _init(self, seeds: jax.Array) -> OnlineDTState:
        task, n = self.task, seeds.shape[0]
        policies = eqx.filter(eqx.filter_vmap(self.build_policy)(seeds), eqx.is_inexact_array)
        keys = jax.vmap(lambda s: jax.random.key_data(seed_stream(s, "online-dt/loop")))(seeds)
        log_temperature = jnp.full((n,), math.log(self.config.temperature), jnp.float32)
        zeros = jnp.zeros((n,), jnp.int32)
        return OnlineDTState(
            policy=policies,
            opt=jax.vmap(self.tx.init)(policies),
            log_temperature=log_temperature,
            temperature_opt=jax.vmap(self.temperature_tx.init)(log_temperature),
            replay=repeated(
                EpisodeReplay.empty(self.capacity, task.horizon, task.obs_size, task.action_size), n
            ),
            context=repeated(Context.empty(task.horizon, task.obs_size, task.action_size), n),
            to_go=jnp.zeros((n,)),
            episode_return=jnp.zeros((n,)),
            best_return=jnp.full((n,), -jnp.inf),
            worst_return=jnp.full((n,), jnp.inf),
            env_state=first_states(task, keys),
            k=zeros,
            t=zeros,
            key=keys,
            updates=zeros,
            nll=jnp.zeros((n,)),
            entropy=jnp.zeros((n,)),
        )

    def run_chunk(self, state: OnlineDTState) -> tuple[OnlineDTState, dict[str, np.ndarray]]:
        state, returns = self._period(state)
        return state, {
            "eval/eval_return": np.asarray(returns),
            "train/episodes": np.asarray(state.replay.count),
            "train/updates": np.asarray(state.updates),
            "train/nll": np.asarray(state.nll),
            "train/entropy": np.asarray(state.entropy),
            "train/temperature": np.exp(np.asarray(state.log_temperature)),
            "train/best_return": np.asarray(state.best_return),
        }

    def params(self, state: OnlineDTState) -> Any:
        return state.policy

    def policy(self, params: Any) -> DecisionTransformer:
        return eqx.combine(params, self.policy_static)


__all__ = ["OnlineDT", "OnlineDTConfig", "OnlineDTState", "dt_loss", "sample_windows"]
