"""Backpropagation-based policy optimisation (BPO) through any world model, offline.

One policy update (:func:`policy_step`, shared with online BPO): from a batch of initial
observations, imagine the policy's episodes in the model for the whole horizon, score them with
the task's true reward, and ascend the return plus an entropy bonus with Adam (global-norm
clipping). :class:`BPO` scans ``log_every`` updates in one compiled call, vmapped over seeds, then
evaluates the deterministic policy on the real task and compares the model's policy gradient
with the simulator's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from awmctl import optim
from awmctl.algorithms.base import (
    Algorithm,
    Config,
    LearningCurve,
    SeedMode,
    abstract,
    check_fields,
    compiled_once,
    masked_steps,
    over_seeds,
    seeds_in_sequence,
)
from awmctl.algorithms.presets import OFFLINE, preset_values
from awmctl.errors import BadInputError
from awmctl.models import (
    AbstractWorldModel,
    PolicyInputGrad,
    SimulatorModel,
    check_context,
    disagreement,
    members_of,
    model_spec,
)
from awmctl.policies import MarkovPolicy, build_policy
from awmctl.rollouts import imagined_return, member_returns, true_return
from awmctl.seeds import seed_stream, stream
from awmctl.tasks import Task


@dataclasses.dataclass(frozen=True)
class BPOConfig(Config):
    #: the policy optimiser's defaults are the ``converged`` preset's
    #: (:mod:`~awmctl.algorithms.presets`)
    steps: int = OFFLINE["converged"]["steps"]
    batch_size: int = 16
    lr: float = OFFLINE["converged"]["lr"]
    clip: float = 100.0
    entropy: float = OFFLINE["converged"]["entropy"]
    #: None: the model's default (``stop`` for AWMs: the direct path; ``full`` otherwise)
    policy_input_grad: PolicyInputGrad | None = None
    log_every: int = 50
    #: through an ensemble: the imagined objective is each start's mean return over the members
    #: minus this many standard deviations of it (their disagreement), so the policy does not
    #: climb where the members disagree; negative: optimism, the policy seeks it. No effect
    #: through one model
    pessimism: float = OFFLINE["converged"]["pessimism"]

    #: how the seeds share a compiled call, ``vmap`` or ``sequential`` (None: the backend's
    #: default, :func:`~awmctl.algorithms.base.default_seed_mode`); the CLI passes the one it
    #: runs, so that the run's configuration records it and a resume runs its seeds the same way
    seed_mode: SeedMode | None = dataclasses.field(
        default=None, metadata={"option": "AWMCTL_SEEDS"}
    )

    def check(self) -> None:
        for name in ("steps", "batch_size", "log_every"):
            if getattr(self, name) < 1:
                raise BadInputError(
                    f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}"
                )
        if not self.lr > 0:
            raise BadInputError(f"--lr must be positive, got {self.lr}")
        check_pessimism(self.pessimism)

    @classmethod
    def preset(cls, name: str, **given: Any) -> BPOConfig:
        """The config of preset ``name`` (``converged`` or ``paper``) with ``given`` fields
        overriding it (a None value leaves the preset's)."""
        return cls(**preset_values(OFFLINE, name, given))

    def for_model(self, model: AbstractWorldModel) -> BPOConfig:
        """This config with the model's default policy-input gradient filled in."""
        if self.policy_input_grad is not None:
            return self
        return dataclasses.replace(self, policy_input_grad=model_spec(model.name).policy_input_grad)


class BPOState(NamedTuple):
    params: Any  # the policy's float arrays
    opt_state: Any
    key: Array  # raw key data
    step: Array


def check_pessimism(value: float, option: str = "--pessimism") -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise BadInputError(f"{option} must be a finite number, got {value!r}")


def policy_objective(
    policy: MarkovPolicy,
    model: AbstractWorldModel,
    task: Task,
    obs0: Float[Array, "B obs"],
    key: PRNGKeyArray,
    entropy: float,
    stop_input: bool,
    pessimism: float | Float[Array, ""] = 0.0,
) -> tuple[Float[Array, ""], Float[Array, ""]]:
    """BPO's loss, -(mean imagined return + entropy x mean entropy estimate), and the mean
    imagined return, over one imagined episode from each of ``obs0``.

    Through an ensemble with ``pessimism`` beta, each start's value is its members' mean return
    minus beta times their standard deviation (a lower confidence bound: the policy is not paid
    for what only some members promise); a negative beta is optimism (an upper bound). A traced
    beta (an array: online exploration switches its sign) always takes the ensemble's path."""
    keys = jax.random.split(key, obs0.shape[0])
    bounded = isinstance(pessimism, jax.Array) or pessimism != 0
    if bounded and members_of(model) > 1:
        returns, ent = jax.vmap(lambda o, k: member_returns(policy, model, task, o, k, stop_input))(
            obs0, keys
        )  # [B, members]
        values = jnp.mean(returns, axis=1) - pessimism * disagreement(returns.T)
        return -(jnp.mean(values) + entropy * jnp.mean(ent)), jnp.mean(returns)
    returns, ent = jax.vmap(lambda o, k: imagined_return(policy, model, task, o, k, stop_input))(
        obs0, keys
    )
    return -(jnp.mean(returns) + entropy * jnp.mean(ent)), jnp.mean(returns)


def policy_gradient(
    params: Any,
    static: Any,
    model: AbstractWorldModel,
    task: Task,
    obs0: Float[Array, "B obs"],
    key: PRNGKeyArray,
    entropy: float,
    stop_input: bool,
    pessimism: float | Float[Array, ""] = 0.0,
) -> tuple[Any, Float[Array, ""]]:
    """The gradient of :func:`policy_objective` in the policy's float arrays, and the mean
    imagined return."""

    def loss(p):
        policy = eqx.combine(p, static)
        return policy_objective(policy, model, task, obs0, key, entropy, stop_input, pessimism)

    (_, imagined), grads = jax.value_and_grad(loss, has_aux=True)(params)
    return grads, imagined


def policy_step(
    params: Any,
    opt_state: Any,
    static: Any,
    optimizer: optax.GradientTransformation,
    model: AbstractWorldModel,
    task: Task,
    obs0: Float[Array, "B obs"],
    key: PRNGKeyArray,
    entropy: float,
    stop_input: bool,
    pessimism: float | Float[Array, ""] = 0.0,
) -> tuple[Any, Any, Any, Float[Array, ""]]:
    """One BPO update: ``(params, opt_state, grads, mean imagined return)``."""
    grads, imagined = policy_gradient(
        params, static, model, task, obs0, key, entropy, stop_input, pessimism
    )
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, grads, imagined


class BPO(Algorithm[BPOState]):
    """Offline BPO of one policy family through one model on one task.

    ``observations`` (episodes of the task, ``[N, T, obs]``) give the initial observations the
    imagined episodes start from and the statistics that normalise the policy's input. Each
    seed's policy is initialised from ``jax.random.key(seed)``.
    """

    unit: ClassVar[str] = "update"
    score: ClassVar[str] = "eval/eval_return"
    higher_is_better: ClassVar[bool] = True
    curve: ClassVar[LearningCurve] = LearningCurve(
        "learning_curve.png",
        ("eval/eval_return",),
        "eval return (deterministic policy)",
        "policy update",
    )

    @classmethod
    def create(
        cls,
        task: Task,
        model: AbstractWorldModel,
        observations: Float[Array | np.ndarray, "N T obs"],
        *,
        policy: str = "mlp",
        preset: str = "converged",
        **config: Any,
    ) -> BPO:
        """BPO of a ``policy`` (``mlp`` or ``open-loop``) through ``model`` on ``task``, from the
        initial observations of ``observations`` (a dataset's, ``episodes.observations``), as
        ``awmctl optimize-policy`` makes it: ``config`` holds any :class:`BPOConfig` field by
        name (``steps=200``), the ``preset``'s values otherwise. Train it with
        ``run(bpo, bpo.init(seeds))``."""
        check_fields(BPOConfig, config)
        config = BPOConfig.preset(preset, **config)
        return cls(task, model, policy, jnp.asarray(observations), config)

    def __init__(
        self,
        task: Task,
        model: AbstractWorldModel,
        policy_kind: str,
        observations: Float[Array, "N T obs"],
        config: BPOConfig,
    ):
        config = config.for_model(model)
        config.check()
        check_context(model, task.horizon)
        self.task, self.model, self.policy_kind, self.config = task, model, policy_kind, config
        self.simulator = SimulatorModel(task)
        self.observations = jnp.asarray(observations)
        self.init_obs = self.observations[:, 0]
        self.template, self.static = abstract(self.build, 0, self.observations)
        self.optimizer = optim.adam(config.lr, config.clip)
        # Over the seed axis of the state; the model and data are shared.
        self.sequential_seeds = seeds_in_sequence(config.seed_mode)
        self._chunk = over_seeds(self.chunk, self.sequential_seeds)
        self._evaluate = over_seeds(self.evaluate, self.sequential_seeds)

    @property
    def stop(self) -> bool:
        """Whether the policy's input is gradient-stopped (the direct path of an AWM)."""
        return self.config.policy_input_grad == "stop"

    # ------------------------------------------------------------ the compiled parts, one seed

    def batch(self, key: PRNGKeyArray, init_obs: Float[Array, "N obs"]) -> Float[Array, "B obs"]:
        """``batch_size`` initial observations drawn with replacement."""
        idx = jax.random.randint(key, (self.config.batch_size,), 0, init_obs.shape[0])
        return init_obs[idx]

    def chunk(
        self,
        state: BPOState,
        model: AbstractWorldModel,
        init_obs: Float[Array, "N obs"],
        active: Bool[Array, " n"],
    ) -> tuple[BPOState, dict[str, Float[Array, ""]]]:
        """One policy update per entry of ``active`` (the inactive ones skipped); the mean
        imagined return and gradient norm of those made."""
        config = self.config

        def step(params, opt_state, kb, kl):
            new_params, new_opt, grads, imagined = policy_step(
                params,
                opt_state,
                self.static,
                self.optimizer,
                model,
                self.task,
                self.batch(kb, init_obs),
                kl,
                config.entropy,
                self.stop,
                config.pessimism,
            )
            return new_params, new_opt, (imagined, optax.tree.norm(grads))

        params, opt_state, key, (imagined, gnorms) = masked_steps(
            step, state.params, state.opt_state, state.key, active
        )
        new_state = BPOState(params, opt_state, key, state.step + jnp.sum(active.astype(jnp.int32)))
        return new_state, {
            "imagined_return": jnp.nanmean(imagined),
            "grad_norm": jnp.nanmean(gnorms),
        }

    def evaluate(
        self,
        state: BPOState,
        model: AbstractWorldModel,
        simulator: AbstractWorldModel,
        init_obs: Float[Array, "N obs"],
    ) -> dict[str, Float[Array, ""]]:
        """Eval return on the real task; cosine between model and simulator gradients."""
        task, entropy, stop = self.task, self.config.entropy, self.stop
        policy = eqx.combine(state.params, self.static)
        kb, kl = jax.random.split(stream(jax.random.wrap_key_data(state.key), "bpo/eval"))
        obs0 = self.batch(kb, init_obs)
        g_model, _ = policy_gradient(
            state.params, self.static, model, task, obs0, kl, entropy, stop
        )
        g_sim, _ = policy_gradient(
            state.params, self.static, simulator, task, obs0, kl, entropy, stop
        )
        a, b = ravel_pytree(g_model)[0], ravel_pytree(g_sim)[0]
        cosine = jnp.dot(a, b) / jnp.maximum(jnp.linalg.norm(a) * jnp.linalg.norm(b), 1e-30)
        det_members, _ = member_returns(
            policy, model, task, init_obs[0], kl, stop, deterministic=True
        )
        return {
            "eval_return": true_return(policy, task),
            "imagined_return_det": jnp.mean(det_members),
            **(
                {"imagined_disagreement": disagreement(det_members)}
                if members_of(model) > 1
                else {}
            ),
            "grad_cosine": cosine,
            "grad_norm_model": jnp.linalg.norm(a),
            "grad_norm_simulator": jnp.linalg.norm(b),
        }

    def build(self, seed: int | Array, observations: Float[Array, "N T obs"]) -> MarkovPolicy:
        """The initial policy of ``seed``, its input normalised by the observations' statistics."""
        task = self.task
        policy = build_policy(
            self.policy_kind,
            task.obs_size,
            task.action_size,
            task.horizon,
            key=jax.random.key(seed),
        )
        return policy.with_normalizer(observations)

    # ------------------------------------------------------------------------------ the shape

    def init(self, seeds: Sequence[int]) -> BPOState:
        return self._init(jnp.asarray(seeds), self.observations)

    @compiled_once
    def _init(self, seeds: Array, observations: Float[Array, "N T obs"]) -> BPOState:
        params = eqx.filter(
            eqx.filter_vmap(lambda s: self.build(s, observations))(seeds), eqx.is_inexact_array
        )
        keys = jax.vmap(lambda s: jax.random.key_data(seed_stream(s, "bpo/updates")))(seeds)
        return BPOState(
            params, jax.vmap(self.optimizer.init)(params), keys, jnp.zeros(seeds.shape, jnp.int32)
        )

    def train_chunk(
        self, state: BPOState, active: Array | None = None
    ) -> tuple[BPOState, dict[str, Array]]:
        """``log_every`` policy updates (those where ``active`` is False are skipped), one
        compiled call: the state and each seed's mean imagined return and gradient norm."""
        if active is None:
            active = jnp.ones((self.config.log_every,), bool)
        return self._chunk(state, self.model, self.init_obs, active)

    def run_chunk(self, state: BPOState) -> tuple[BPOState, dict[str, np.ndarray]]:
        remaining = self.config.steps - self.progress(state)
        state, stats = self.train_chunk(state, jnp.arange(self.config.log_every) < remaining)
        evals = self._evaluate(state, self.model, self.simulator, self.init_obs)
        metrics = {f"train/{k}": v for k, v in stats.items()}
        metrics.update(
            {("eval/" if k == "eval_return" else "train/") + k: v for k, v in evals.items()}
        )
        return state, {k: np.asarray(v) for k, v in metrics.items()}

    def progress(self, state: BPOState) -> int:
        return int(np.asarray(state.step)[0])

    @property
    def total(self) -> int:
        return self.config.steps

    def params(self, state: BPOState) -> Any:
        return state.params

    def policy(self, params: Any) -> MarkovPolicy:
        """One seed's policy from its float arrays."""
        return eqx.combine(params, self.static)


__all__ = [
    "BPO",
    "BPOConfig",
    "BPOState",
    "check_pessimism",
    "policy_gradient",
    "policy_objective",
    "policy_step",
]
