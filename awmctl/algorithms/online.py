"""Online BPO, the paper's Algorithm 1: interact, store whole episodes, fit the model, improve
the policy through the model, in one loop.

Schedule (defaults are the paper's, as its authors' code runs it): every env step acts in the
real task (uniform random actions during the first ``warmup_steps``, the stochastic policy
afterwards); after the warm-up, every ``model_every`` env steps one model update
(:func:`~awmctl.algorithms.fit.model_step`) on ``model_batch`` stored whole episodes, and every
``policy_every`` env steps one policy update (:func:`~awmctl.algorithms.bpo.policy_step`) from
``policy_batch`` stored initial observations with a full-horizon imagined rollout (no critic);
evaluation every ``eval_every`` env steps. Through ``simulator`` (nothing to fit) the loop has no
model updates: the policy updates are the analytic policy gradient from stored starts. With 1500
warm-up steps the first model update comes
at env step 1502 and the first policy update at 1504. ``updates_from="first-episode"`` starts
updating as soon as one episode is stored instead (awmctl 0.1's schedule).

One compiled *block* runs ``policy_every`` env steps with their model updates and then the policy
update (scans inside; no Python loop over env steps); a chunk is the blocks of one evaluation
period, for every seed. Normalisation statistics of the model and of the policy's input are set
once, from the first complete episode (collected with random actions), at the end of the model
round in which it is stored: before any update uses them.
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
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from awmctl import optim
from awmctl.algorithms.base import (
    Config,
    SeedMode,
    abstract,
    compiled_once,
    over_seeds,
    seeds_in_sequence,
)
from awmctl.algorithms.bpo import check_pessimism, policy_step
from awmctl.algorithms.fit import batch_indices, model_step
from awmctl.algorithms.interaction import (
    OnlineAlgorithm,
    interleaved_block,
    when,
    whole_periods,
)
from awmctl.algorithms.presets import ONLINE, preset_values
from awmctl.errors import BadInputError
from awmctl.models import (
    AbstractWorldModel,
    ModelSpec,
    PolicyInputGrad,
    check_context,
    check_ensemble_size,
    disagreement,
)
from awmctl.policies import MarkovPolicy, build_policy
from awmctl.rollouts import (
    EpisodeReplay,
    first_states,
    member_returns,
    predicted_return,
    predicted_rewards,
    true_return,
)
from awmctl.seeds import seed_stream
from awmctl.tasks import Task, observation, reset_key
from awmctl.trees import repeated

#: when updates begin: after the warm-up (the paper authors') or after the first whole episode
UpdatesFrom = Literal["warmup", "first-episode"]
#: what the trust gate checks the model on: the episodes completed since the last checks, or
#: those and also the steps so far of the episode in progress
TrustCheck = Literal["completed", "in-progress"]
#: weight of the newest episode in the running mean of the model's optimism
OPTIMISM_WEIGHT = 0.2


@dataclasses.dataclass(frozen=True)
class OnlineConfig(Config):
    env_steps: int = 5000
    warmup_steps: int = 1500
    model_every: int = 2
    policy_every: int = 16
    eval_every: int = 32
    model_batch: int = 64
    policy_batch: int = 16
    model_lr: float = 1e-3
    #: the policy optimiser's defaults are the ``converged`` preset's
    #: (:mod:`~awmctl.algorithms.presets`)
    policy_lr: float = ONLINE["converged"]["policy_lr"]
    clip: float = 100.0
    entropy: float = ONLINE["converged"]["entropy"]
    #: None: the model's default (``stop`` for AWMs: the direct path; ``full`` otherwise)
    policy_input_grad: PolicyInputGrad | None = None
    #: "warmup": no update before ``warmup_steps`` env steps (the paper authors' schedule);
    #: "first-episode": updates as soon as one whole episode is stored
    updates_from: UpdatesFrom = "warmup"
    #: policy updates in each policy round (every ``policy_every`` env steps); they cost no env
    #: steps, only compute (the paper: 1)
    policy_updates: int = ONLINE["converged"]["policy_updates"]
    #: the guard against a policy exploiting its model's errors: while the model overpredicts
    #: the return of the policy's own fresh episodes (an average over recent ones) by more than
    #: ``trust_gate`` times the spread of the stored episodes' returns, the policy rounds are
    #: skipped; 0 turns the guard off (the paper has none)
    trust_gate: float = ONLINE["converged"]["trust_gate"]
    #: "completed": the gate's evidence is each episode as it completes (at H = 100 with the
    #: defaults, 24 policy updates fit between two); "in-progress": also the model's error on
    #: the steps so far of the episode in progress, checked before every policy round
    trust_check: TrustCheck = ONLINE["converged"]["trust_check"]
    #: what the gate does when an episode's check finds the model optimistic: False, only skip
    #: the policy rounds that follow; True, also set the policy (and its optimiser's state) back
    #: to the last one the gate trusted, the policy that began the last episode checked without
    #: optimism, undoing the updates that exploited the model before the evidence came
    trust_restore: bool = ONLINE["converged"]["trust_restore"]
    #: world models fitted together as one ensemble (each member its own initialisation and its
    #: own batches of the stored episodes), imagined in together; 1: one model
    ensemble: int = ONLINE["converged"]["ensemble"]
    #: through an ensemble, the policy's imagined objective is the members' mean return minus
    #: this many standard deviations of it (negative: optimism); see BPOConfig.pessimism
    pessimism: float = ONLINE["converged"]["pessimism"]
    #: directed exploration through an ensemble: for the first ``explore_steps`` env steps of
    #: updating, the policy's objective is the members' mean return *plus* ``exploration``
    #: standard deviations of it (optimism: the policy goes where the members disagree, and the
    #: episodes it collects there teach the model), then ``pessimism`` as above; 0 turns it off
    exploration: float = ONLINE["converged"]["exploration"]
    explore_steps: int = ONLINE["converged"]["explore_steps"]
    #: exploration by perturbed plans (no ensemble needed): for the first ``explore_steps`` env
    #: steps of updating, every episode's actions are the policy's plus one constant offset per
    #: episode, drawn uniformly in [-explore_offset, explore_offset] (clipped to the actions'
    #: range): long stretches away from the policy, which i.i.d. noise never makes; 0: off
    explore_offset: float = ONLINE["converged"]["explore_offset"]
    #: the trust gate reads the disagreement: it compares the members' lower confidence bound
    #: (mean - ``pessimism`` standard deviations, the value the policy climbs) with the real
    #: return, instead of their mean; what is optimism of the mean but within the members'
    #: disagreement no longer shuts the policy out
    trust_bound: bool = ONLINE["converged"]["trust_bound"]
    #: never go on from worse than the data show: after each episode the policy ran, if its real
    #: return is more than ``keep_best`` spreads of the stored returns below the best such
    #: episode of the run, the policy (and its optimiser's state) goes back to the policy that
    #: began that best episode; 0 turns it off. It reads only the episodes the loop collects
    keep_best: float = ONLINE["converged"]["keep_best"]

    @classmethod
    def preset(cls, name: str, **given: Any) -> OnlineConfig:
        """The config of preset ``name`` (``converged`` or ``paper``) with ``given`` fields
        overriding it (a None value leaves the preset's)."""
        return cls(**preset_values(ONLINE, name, given))

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
                self.model_every,
                self.policy_every,
                self.eval_every,
                self.model_batch,
                self.policy_batch,
                self.policy_updates,
            )
            < 1
        ):
            raise BadInputError(
                "--env-steps, --model-every, --policy-every, --eval-every and --policy-updates "
                "must be at least 1"
            )
        if self.policy_every % self.model_every:
            raise BadInputError(
                f"--policy-every ({self.policy_every}) must be a multiple of --model-every "
                f"({self.model_every})"
            )
        if self.eval_every % self.policy_every:
            raise BadInputError(
                f"--eval-every ({self.eval_every}) must be a multiple of --policy-every "
                f"({self.policy_every})"
            )
        if not self.trust_gate >= 0:
            raise BadInputError(f"--trust-gate must be 0 (off) or positive, got {self.trust_gate}")
        given = "--trust-restore" if self.trust_restore else None
        if self.trust_check != "completed":
            given = f"--trust-check {self.trust_check}"
        if given and self.trust_gate == 0:
            raise BadInputError(
                f"{given} acts through the trust gate, which --trust-gate 0 (or --preset paper) "
                f"turns off; give a positive --trust-gate as well, or drop {given.split()[0]}"
            )
        if not (self.model_lr > 0 and self.policy_lr > 0):
            raise BadInputError("--lr and --model-lr must be positive")
        check_ensemble_size(self.ensemble)
        check_pessimism(self.pessimism)
        check_pessimism(self.exploration, "--exploration")
        if self.explore_steps < 0 or not self.exploration >= 0:
            raise BadInputError(
                f"--explore-steps ({self.explore_steps}) and --exploration ({self.exploration}) "
                "must be 0 (off) or positive"
            )
        if not 0 <= self.explore_offset <= 2:
            raise BadInputError(
                f"--explore-offset must be in [0, 2] (actions lie in [-1, 1]), got "
                f"{self.explore_offset}"
            )
        if (self.exploration > 0 or self.explore_offset > 0) != (self.explore_steps > 0):
            raise BadInputError(
                "--explore-steps says how long --exploration or --explore-offset explores: give "
                "it with one of them, or neither"
            )
        uses = [
            name
            for name, value in (
                ("--pessimism", self.pessimism),
                ("--exploration", self.exploration),
            )
            if value
        ]
        if not self.keep_best >= 0 or not np.isfinite(self.keep_best):
            raise BadInputError(f"--keep-best must be 0 (off) or positive, got {self.keep_best}")
        if self.keep_best and self.trust_restore:
            raise BadInputError(
                "--keep-best and --trust-restore both set the policy back, on different evidence; "
                "give one of them"
            )
        if self.trust_bound and not (self.pessimism > 0 and self.trust_gate > 0):
            raise BadInputError(
                "--trust-bound makes the trust gate read the members' lower confidence bound: "
                "give --ensemble 2 or more, a positive --pessimism and a positive --trust-gate"
            )
        if uses and self.ensemble == 1:
            verb = "acts" if len(uses) == 1 else "act"
            raise BadInputError(
                f"{' and '.join(uses)} {verb} through the disagreement of an ensemble's members; "
                "give --ensemble 2 or more as well"
            )

    @property
    def steps_run(self) -> int:
        """Env steps actually taken: --env-steps rounded up to whole evaluation periods (the
        paper's 5000 with evaluation every 32 gives 5024)."""
        return whole_periods(self.env_steps, self.eval_every)

    def update_steps(self, horizon: int) -> tuple[list[int], list[int]]:
        """The env steps after which a model update and a policy update run, in a whole run of
        episodes of ``horizon`` steps (the schedule, worked out in Python for tests and docs)."""
        start = self.warmup_steps if self.updates_from == "warmup" else horizon - 1
        model = [
            t
            for t in range(self.model_every, self.steps_run + 1, self.model_every)
            if t > start and t >= horizon
        ]
        policy = [
            t
            for t in range(self.policy_every, self.steps_run + 1, self.policy_every)
            if t > start and t >= horizon
        ]
        return model, policy

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
    model_updates: jax.Array  # updates applied so far (logged, and checked against the schedule)
    policy_updates: jax.Array
    #: the model's optimism about the policy: a running mean of (model's return - real return) of
    #: each episode as it completes, before any model update has seen it
    optimism: jax.Array
    gated_rounds: jax.Array  # policy rounds skipped by the trust gate
    # With ``trust_restore`` only (None otherwise, so that the state and its checkpoints are
    # those of a run without it): (policy, policy_opt) the gate last trusted, and the same pair
    # as the episode in progress began
    trusted: Any = None
    episode_start: Any = None
    restores: Any = None  # episode checks that set the policy back
    # With ``keep_best`` only: (policy, policy_opt) that began the best episode the policy ran,
    # that episode's real return, the pair that began the episode in progress, and the episodes
    # after which the policy went back
    kept: Any = None
    kept_return: Any = None
    started: Any = None
    fallbacks: Any = None
    # With ``explore_offset`` only: the raw key the episodes' offsets are drawn from
    explore_key: Any = None


class OnlineBPO(OnlineAlgorithm[OnlineState]):
    """Compiled Algorithm 1 for one task, model spec and policy family (vmapped over seeds).

    Each seed's model is initialised from ``jax.random.key(seed)``, its policy from the
    ``online/policy-init`` stream of the seed.
    """

    def __init__(self, task: Task, spec: ModelSpec, policy_kind: str, config: OnlineConfig):
        config = config.for_model(spec)
        config.check()
        self.task, self.spec, self.policy_kind, self.config = task, spec, policy_kind, config
        template_model, self.model_static = abstract(self.build_model, 0)
        self.template_policy, self.policy_static = abstract(self.build_policy, 0)
        check_context(template_model, task.horizon)
        # Every episode of the run, and the one in progress: nothing is ever overwritten.
        self.capacity = math.ceil(config.steps_run / task.horizon) + 1
        self.model_tx = optim.adam(config.model_lr)
        self.policy_tx = optim.adam(config.policy_lr, config.clip)
        self.sequential_seeds = seeds_in_sequence(config.seed_mode)
        self._period = over_seeds(self.eval_period, self.sequential_seeds)

    # ------------------------------------------------------- the loop's parts, one seed each

    def env_step(self, s: OnlineState, key: PRNGKeyArray) -> OnlineState:
        """One env step with the policy (random actions in the warm-up), recorded in the replay."""
        policy = self.policy(s.policy)
        choose = lambda obs, k: policy.sample(obs, k)[0]
        if self.perturbing:
            offset = jnp.where(self.in_exploration(s), self.plan_offset(s), 0.0)
            choose = lambda obs, k: jnp.clip(policy.sample(obs, k)[0] + offset, -1.0, 1.0)
        done = self.act(s, choose, key)
        stepped = done.stepped
        replay, _ = s.replay.record(s.k, done.obs, done.action, stepped.next_obs, stepped.reward)
        return s._replace(replay=replay, env_state=stepped.state, k=stepped.k, t=s.t + 1)

    def set_normalizers(self, s: OnlineState) -> OnlineState:
        """Model and policy statistics from the first stored episode (slot 0)."""
        episode = s.replay.observations[0]
        policy = self.policy(s.policy).with_normalizer(episode)
        s = s._replace(policy=eqx.filter(policy, eqx.is_inexact_array))
        if self.restoring:  # no earlier policy is worth going back to
            s = s._replace(trusted=(s.policy, s.policy_opt), episode_start=(s.policy, s.policy_opt))
        if not self.spec.trainable:
            return s
        model = self.model(s.model).with_normalizers(episode[None])
        return s._replace(model=eqx.filter(model, eqx.is_inexact_array))

    def updating(self, s: OnlineState) -> Bool[Array, ""]:
        """Whether the schedule updates yet: an episode stored (and the warm-up over)."""
        stored = s.replay.count > 0
        if self.config.updates_from == "warmup":
            return stored & (s.t > self.config.warmup_steps)
        return stored

    def model_update(self, s: OnlineState, key: PRNGKeyArray) -> OnlineState:
        """One model update on ``model_batch`` stored episodes (each member of an ensemble its
        own draw)."""
        members = self.config.ensemble
        draw = lambda k: s.replay.sample(k, self.config.model_batch)
        idx = draw(key) if members == 1 else batch_indices(key, 0, 0, members, sampler=draw)
        params, opt, _ = model_step(
            s.model,
            s.model_opt,
            self.model_static,
            self.model_tx,
            s.replay.observations[idx],
            s.replay.actions[idx],
        )
        return s._replace(model=params, model_opt=opt, model_updates=s.model_updates + 1)

    @property
    def exploring(self) -> bool:
        """Whether the policy is optimistic for a first part of the updates (``exploration``)."""
        return self.config.exploration > 0 and self.config.explore_steps > 0

    def updates_begin(self) -> int:
        """The env step after which the schedule first updates (the warm-up's end, or the first
        episode's)."""
        if self.config.updates_from == "warmup":
            return max(self.config.warmup_steps, self.task.horizon - 1)
        return self.task.horizon - 1

    @property
    def perturbing(self) -> bool:
        """Whether the episodes of exploration perturb the policy's plan (``explore_offset``)."""
        return self.config.explore_offset > 0 and self.config.explore_steps > 0

    def in_exploration(self, s: OnlineState) -> Bool[Array, ""]:
        """Whether env step ``s.t`` (counted from 0) is among the first ``explore_steps`` of
        updating."""
        return s.t < self.updates_begin() + self.config.explore_steps

    def plan_offset(self, s: OnlineState) -> Float[Array, " act"]:
        """The episode in progress's constant action offset (``explore_offset``), drawn from the
        episode's index."""
        key = jax.random.fold_in(jax.random.wrap_key_data(s.explore_key), s.replay.count)
        bound = self.config.explore_offset
        return jax.random.uniform(key, (self.task.action_size,), minval=-bound, maxval=bound)

    def pessimism(self, s: OnlineState) -> float | Float[Array, ""]:
        """The objective's pessimism at this point of the run: ``-exploration`` (optimism) for the
        first ``explore_steps`` env steps of updating, ``pessimism`` afterwards."""
        if not self.exploring:
            return self.config.pessimism
        return jnp.where(self.in_exploration(s), -self.config.exploration, self.config.pessimism)

    def policy_update(self, s: OnlineState, key: PRNGKeyArray) -> OnlineState:
        kb, kl = jax.random.split(key)
        obs0 = s.replay.observations[s.replay.sample(kb, self.config.policy_batch), 0]
        params, opt, _, _ = policy_step(
            s.policy,
            s.policy_opt,
            self.policy_static,
            self.policy_tx,
            self.model(s.model),
            self.task,
            obs0,
            kl,
            self.config.entropy,
            self.config.policy_input_grad == "stop",
            self.pessimism(s),
        )
        return s._replace(policy=params, policy_opt=opt, policy_updates=s.policy_updates + 1)

    def full_round(self, s: OnlineState, key: PRNGKeyArray) -> OnlineState:
        """``policy_updates`` policy updates, each on its own batch of stored starts (one
        update uses ``key`` itself: the paper's schedule, bit for bit)."""
        n = self.config.policy_updates
        if n == 1:
            return self.policy_update(s, key)
        keys = jax.random.split(key, n)
        return jax.lax.fori_loop(0, n, lambda i, s: self.policy_update(s, keys[i]), s)

    @staticmethod
    def distrusted_round(s: OnlineState, key: PRNGKeyArray) -> OnlineState:
        """No update: the policy waits for fresh episodes to correct the model."""
        return s._replace(gated_rounds=s.gated_rounds + 1)

    def policy_round(self, s: OnlineState, key: PRNGKeyArray) -> OnlineState:
        if not self.gated:
            return self.full_round(s, key)
        limit = self.trust_limit(s)
        trusted = s.optimism <= limit
        if self.config.trust_check == "in-progress":
            trusted &= self.in_progress_optimism(s) <= limit
        return jax.lax.cond(trusted, self.full_round, self.distrusted_round, s, key)

    def check_latest(self, s: OnlineState) -> OnlineState:
        """The model's error on the episode just completed, before any update has seen it:
        positive when the model promises more than the policy got."""
        slot = s.replay.latest()
        obs0, actions = s.replay.observations[slot, 0], s.replay.actions[slot]
        if self.config.trust_bound:
            predicted = self.bound(
                self.model(s.model).map(lambda m: predicted_return(m, self.task, obs0, actions))
            )
        else:
            predicted = predicted_return(self.model(s.model), self.task, obs0, actions)
        error = predicted - jnp.sum(s.replay.rewards[slot])
        s = s._replace(optimism=(1 - OPTIMISM_WEIGHT) * s.optimism + OPTIMISM_WEIGHT * error)
        return self.keep_or_restore(s) if self.restoring else s

    def bound(self, values: Float[Array, " K"]) -> Float[Array, ""]:
        """The members' lower confidence bound on a value, as the policy's objective takes it
        (their mean minus ``pessimism`` standard deviations): what ``trust_bound`` checks."""
        return jnp.mean(values) - self.config.pessimism * disagreement(values)

    def trust_limit(self, s: OnlineState) -> Float[Array, ""]:
        """The most optimism the gate trusts: ``trust_gate`` spreads of the stored returns."""
        return self.config.trust_gate * s.replay.return_spread()

    def keep_or_restore(self, s: OnlineState) -> OnlineState:
        """After an episode's check (``trust_restore``): if the gate trusts the model, the policy
        that began that episode becomes the trusted one and the policy goes on; if not, the
        policy and its optimiser's state go back to the trusted pair. Either way the result
        begins the next episode."""
        trusted = s.optimism <= self.trust_limit(s)
        pick = lambda a, b: jax.tree.map(lambda x, y: jnp.where(trusted, x, y), a, b)
        now = (s.policy, s.policy_opt)
        last_trusted = pick(s.episode_start, s.trusted)
        policy, opt = pick(now, last_trusted)
        moved = jax.tree.leaves(jax.tree.map(lambda x, y: jnp.any(x != y), now[0], policy))
        return s._replace(
            policy=policy,
            policy_opt=opt,
            trusted=last_trusted,
            episode_start=(policy, opt),
            restores=s.restores + jnp.any(jnp.stack(moved)).astype(s.restores.dtype),
        )

    def keep_or_fall_back(self, s: OnlineState) -> OnlineState:
        """After an episode completes (``keep_best``): an episode the policy ran from its first
        step that returned more than any before makes the policy that began it the kept one; one
        that returned more than ``keep_best`` spreads below the kept episode sets the policy and
        its optimiser's state back to the kept pair. Either way the result begins the next
        episode."""
        slot = s.replay.latest()
        real = jnp.sum(s.replay.rewards[slot])
        # the episode's first step came after the warm-up (a model round may end a step or so
        # after the episode did)
        began = s.t - self.task.horizon - self.config.model_every
        by_policy = began >= self.config.warmup_steps
        if self.perturbing:  # a perturbed plan's episode is not the policy's
            by_policy &= began >= self.updates_begin() + self.config.explore_steps
        better = by_policy & (real > s.kept_return)
        worse = by_policy & (
            real < s.kept_return - self.config.keep_best * s.replay.return_spread()
        )
        pick = lambda c, a, b: jax.tree.map(lambda x, y: jnp.where(c, x, y), a, b)
        kept = pick(better, s.started, s.kept)
        policy, opt = pick(worse, kept, (s.policy, s.policy_opt))
        return s._replace(
            policy=policy,
            policy_opt=opt,
            kept=kept,
            kept_return=jnp.where(better, real, s.kept_return),
            started=(policy, opt),
            fallbacks=s.fallbacks + worse.astype(s.fallbacks.dtype),
        )

    def in_progress_optimism(self, s: OnlineState) -> Float[Array, ""]:
        """The model's error on the steps so far of the episode in progress (its actions replayed
        open loop from its first observation): the evidence of the policy's newest updates,
        available before the episode completes. Zero at an episode's first step."""
        slot = s.replay.count % s.replay.capacity
        obs0, actions = s.replay.observations[slot, 0], s.replay.actions[slot]
        seen = jnp.arange(self.task.horizon) < s.k
        real = jnp.sum(jnp.where(seen, s.replay.rewards[slot], 0.0))
        if self.config.trust_bound:
            so_far = lambda m: jnp.sum(
                jnp.where(seen, predicted_rewards(m, self.task, obs0, actions), 0.0)
            )
            return self.bound(self.model(s.model).map(so_far)) - real
        predicted = predicted_rewards(self.model(s.model), self.task, obs0, actions)
        return jnp.sum(jnp.where(seen, predicted - s.replay.rewards[slot], 0.0))

    def model_round(self, before: OnlineState, s: OnlineState, key: PRNGKeyArray) -> OnlineState:
        """What follows ``model_every`` env steps: the normalisers once the first episode is
        stored, the trust gate's check of an episode just completed, a model update."""
        first = (before.replay.count == 0) & (s.replay.count > 0)  # in exactly one round
        s = jax.lax.cond(first, self.set_normalizers, lambda s: s, s)
        # the trust gate checks each episode once, as it completes, by a fitted model
        if self.gated:
            completed = (s.replay.count > before.replay.count) & (s.model_updates > 0)
            s = jax.lax.cond(completed, self.check_latest, lambda s: s, s)
        if self.keeping:
            completed = s.replay.count > before.replay.count
            s = jax.lax.cond(completed, self.keep_or_fall_back, lambda s: s, s)
        if (
            not self.spec.trainable
        ):  # the simulator: nothing to fit, the policy learns through the task
            return s
        return when(self.updating(s), self.model_update, s, key)

    def block(self, s: OnlineState) -> OnlineState:
        """``policy_every`` env steps, a model round after every ``model_every``, then a policy
        round."""
        config = self.config
        return interleaved_block(
            s,
            self.env_step,
            self.model_round,
            lambda s, key: when(self.updating(s), self.policy_round, s, key),
            config.policy_every // config.model_every,
            config.model_every,
        )

    def eval_period(self, s: OnlineState) -> tuple[OnlineState, dict[str, Float[Array, ""]]]:
        """``eval_every`` env steps with their updates, then the deterministic policy's return
        (and, through an ensemble, the members' disagreement about it: the standard deviation of
        their imagined returns of the policy from the evaluation's start)."""
        blocks = self.config.eval_every // self.config.policy_every
        s = jax.lax.fori_loop(0, blocks, lambda i, s: self.block(s), s)
        policy = self.policy(s.policy)
        out = {"eval_return": true_return(policy, self.task)}
        if self.config.ensemble > 1:
            imagined, _ = member_returns(
                policy,
                self.model(s.model),
                self.task,
                # the evaluation's own start (true_return's reset key)
                observation(self.task.initial_state(reset_key(jax.random.key(0))), 0),
                jax.random.key(0),
                self.config.policy_input_grad == "stop",
                deterministic=True,
            )
            out |= {"imagined_return": jnp.mean(imagined), "disagreement": disagreement(imagined)}
        return s, out

    @property
    def keeping(self) -> bool:
        """Whether the policy goes back to the best one the real episodes saw (``keep_best``)."""
        return self.config.keep_best > 0

    @property
    def restoring(self) -> bool:
        """Whether a distrusted episode sets the policy back (``trust_restore``, gate on)."""
        return self.gated and self.config.trust_restore

    @property
    def gated(self) -> bool:
        """Whether the trust gate is on: a positive ``trust_gate`` and a model that is fitted
        (the simulator's predictions are the task's own)."""
        return self.config.trust_gate > 0 and self.spec.trainable

    def build_model(self, seed: int | jax.Array) -> AbstractWorldModel:
        task = self.task
        return self.spec.build(
            task.state_size,
            task.action_size,
            task.horizon,
            key=jax.random.key(seed),
            task=task,
            ensemble=self.config.ensemble,
        )

    def build_policy(self, seed: int | jax.Array) -> MarkovPolicy:
        task = self.task
        return build_policy(
            self.policy_kind,
            task.obs_size,
            task.action_size,
            task.horizon,
            key=seed_stream(seed, "online/policy-init"),
        )

    # ------------------------------------------------------------------------------ the shape

    def init(self, seeds: Sequence[int]) -> OnlineState:
        return self._init(jnp.asarray(seeds))

    @compiled_once
    def _init(self, seeds: jax.Array) -> OnlineState:
        task = self.task
        # The simulator has no float arrays: its (empty) part of the state is an empty dict, which
        # checkpoints as one, where the filtered module would not (its task's fields are not
        # leaves).
        models = (
            eqx.filter(eqx.filter_vmap(self.build_model)(seeds), eqx.is_inexact_array)
            if self.spec.trainable
            else {}
        )
        policies = eqx.filter(eqx.filter_vmap(self.build_policy)(seeds), eqx.is_inexact_array)
        keys = jax.vmap(lambda s: jax.random.key_data(seed_stream(s, "online/loop")))(seeds)
        replay = EpisodeReplay.empty(self.capacity, task.horizon, task.obs_size, task.action_size)
        n = seeds.shape[0]
        # axis_size: the simulator's float arrays are an empty tree, which vmap cannot size alone
        model_opt = jax.vmap(self.model_tx.init, axis_size=n)(models)
        policy_opt = jax.vmap(self.policy_tx.init)(policies)
        restore = {}
        if self.restoring:
            restore = {
                "trusted": (policies, policy_opt),
                "episode_start": (policies, policy_opt),
                "restores": jnp.zeros((n,), jnp.int32),
            }
        if self.perturbing:
            restore["explore_key"] = jax.vmap(
                lambda s: jax.random.key_data(seed_stream(s, "online/explore"))
            )(seeds)
        if self.keeping:
            restore |= {
                "kept": (policies, policy_opt),
                "kept_return": jnp.full((n,), -jnp.inf, jnp.float32),
                "started": (policies, policy_opt),
                "fallbacks": jnp.zeros((n,), jnp.int32),
            }
        return OnlineState(
            model=models,
            model_opt=model_opt,
            policy=policies,
            policy_opt=policy_opt,
            replay=repeated(replay, n),
            env_state=first_states(task, keys),
            k=jnp.zeros((n,), jnp.int32),
            t=jnp.zeros((n,), jnp.int32),
            key=keys,
            model_updates=jnp.zeros((n,), jnp.int32),
            policy_updates=jnp.zeros((n,), jnp.int32),
            optimism=jnp.zeros((n,), jnp.float32),
            gated_rounds=jnp.zeros((n,), jnp.int32),
            **restore,
        )

    def run_chunk(self, state: OnlineState) -> tuple[OnlineState, dict[str, np.ndarray]]:
        """``eval_every`` env steps with their updates, then the eval return of every seed."""
        state, evals = self._period(state)
        return state, {
            "eval/eval_return": np.asarray(evals["eval_return"]),
            **{f"train/{k}": np.asarray(v) for k, v in evals.items() if k != "eval_return"},
            "train/episodes": np.asarray(state.replay.count),
            "train/model_updates": np.asarray(state.model_updates),
            "train/policy_updates": np.asarray(state.policy_updates),
            **(
                {
                    "train/gated_rounds": np.asarray(state.gated_rounds),
                    # the quantity the gate compares with trust_gate
                    "train/model_optimism": np.asarray(
                        state.optimism / jax.vmap(EpisodeReplay.return_spread)(state.replay)
                    ),
                }
                if self.gated
                else {}
            ),
            **({"train/restores": np.asarray(state.restores)} if self.restoring else {}),
            **({"train/fallbacks": np.asarray(state.fallbacks)} if self.keeping else {}),
        }

    def params(self, state: OnlineState) -> Any:
        return state.policy

    def policy(self, params: Any) -> MarkovPolicy:
        """One seed's policy from its float arrays."""
        return eqx.combine(params, self.policy_static)

    def model(self, params: Any) -> AbstractWorldModel:
        """One seed's world model from its float arrays (``state.model`` holds every seed's)."""
        return eqx.combine(params, self.model_static) if self.spec.trainable else self.model_static


__all__ = ["OnlineBPO", "OnlineConfig", "OnlineState"]
