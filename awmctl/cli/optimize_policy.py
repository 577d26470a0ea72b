"""``awmctl optimize-policy``: BPO through a world model, offline (a fitted model or the
simulator, on initial observations) or online (Algorithm 1: interact, fit, improve), and the
paper's model-free baselines online (``--agent sac`` or ``online-dt``), N seeds at once. Each
mode and agent has its own options; an option that does not apply is refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NamedTuple, get_args, no_type_check

import jax
import jax.numpy as jnp
import numpy as np
import typer

from awmctl import analysis, artifacts
from awmctl.algorithms import (
    AGENT_SPECS,
    BPO,
    BPOConfig,
    OnlineBPO,
    OnlineConfig,
    OnlineDTConfig,
    SACConfig,
)
from awmctl.algorithms.online import TrustCheck, UpdatesFrom
from awmctl.algorithms.presets import PRESETS
from awmctl.algorithms.sac import Variant
from awmctl.artifacts.references import load_references
from awmctl.cli.common import (
    TASK_HELP,
    AllowTaskChangeOpt,
    HorizonOpt,
    JsonOpt,
    OutOpt,
    OverwriteOpt,
    SeedOpt,
    TaskParamOpt,
    WandbOpt,
    check_input_tasks,
    choices,
    complete_model,
    complete_task,
    emit_json,
    err_console,
    handle_errors,
    references_cache,
    refuse_options,
    summary_table,
)
from awmctl.cli.config_file import ConfigOpt
from awmctl.cli.driver import Outcome, open_run, seed_mode, train
from awmctl.cli.local_processes import run_locally
from awmctl.cli.reruns import idempotent
from awmctl.errors import BadInputError
from awmctl.models import (
    SIMULATOR,
    AbstractWorldModel,
    PolicyInputGrad,
    build_model,
    members_of,
    model_spec,
)
from awmctl.policies import POLICIES, POLICY_SPECS, MarkovPolicy
from awmctl.rollouts import collect, random_controller
from awmctl.stats import ci95
from awmctl.tasks import (
    Episode,
    Task,
    make_task,
    parse_task_params,
    remake,
    source_file,
    task_record,
)
from awmctl.trees import seed_slice

#: the help panel of the options every online mode shares
ONLINE_PANEL = "Online: --online and the agents"
OFFLINE_ONLY = ("data_dir", "steps", "log_every")
ONLINE_ONLY = (
    "env_steps",
    "warmup_steps",
    "model_every",
    "policy_every",
    "eval_every",
    "model_lr",
    "updates_from",
    "policy_updates",
    "trust_gate",
    "trust_check",
    "trust_restore",
    "ensemble",
    "exploration",
    "explore_steps",
    "trust_bound",
    "keep_best",
    "explore_offset",
)
#: options of BPO (through a world model) that no model-free agent has
BPO_ONLY = (
    "model",
    "preset",
    "policy",
    "policy_input_grad",
    "clip",
    "entropy",
    "model_every",
    "policy_every",
    "policy_updates",
    "trust_gate",
    "trust_check",
    "trust_restore",
    "model_lr",
    "updates_from",
    "data_dir",
    "steps",
    "log_every",
    "ensemble",
    "pessimism",
    "exploration",
    "explore_steps",
    "trust_bound",
    "keep_best",
    "explore_offset",
)
AGENTS = ("bpo", *AGENT_SPECS)
# the closed sets of values, from the library's types (help and shell completion list them)
UPDATES_FROM, SAC_VARIANTS = get_args(UpdatesFrom), get_args(Variant)
TRUST_CHECKS = get_args(TrustCheck)
POLICY_INPUT_GRADS = get_args(PolicyInputGrad)
AGENT_ONLY = {"sac": ("variant",), "online-dt": ("context",)}
B, O, S, D = BPOConfig, OnlineConfig, SACConfig, OnlineDTConfig  # the defaults


@handle_errors
@idempotent
# typer passes its own click context, not an instance of the typer.Context it documents
@no_type_check
def optimize_policy_command(
    ctx: typer.Context,
    out: OutOpt,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help=(
                "Offline: a model directory from fit-model, or 'simulator'. Online: a model name "
                "(e.g. awm-transformer)."
            ),
            autocompletion=complete_model,
        ),
    ] = None,
    agent: Annotated[
        str,
        typer.Option(
            "--agent",
            **choices(AGENTS),
            help=(
                "bpo (through --model), or a model-free baseline, online: sac or online-dt "
                "(implies --online)."
            ),
        ),
    ] = "bpo",
    task: Annotated[
        str | None,
        typer.Option(
            "--task",
            help="Task (required with --model simulator and --online); " + TASK_HELP,
            autocompletion=complete_task,
        ),
    ] = None,
    horizon: HorizonOpt = None,
    task_param: TaskParamOpt = None,
    policy: Annotated[
        str,
        typer.Option(
            "--policy",
            **choices(tuple(POLICIES)),
            help="Policy: "
            + "; ".join(f"{n} ({POLICY_SPECS[n].description})" for n in POLICIES)
            + ".",
        ),
    ] = "mlp",
    policy_input_grad: Annotated[
        str | None,
        typer.Option(
            "--policy-input-grad",
            **choices(POLICY_INPUT_GRADS),
            help="stop (default for AWMs: the direct path) or full (default otherwise).",
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size",
            help=(
                f"Per update: imagined rollouts (BPO, {B.batch_size}), transitions (sac, "
                f"{S.batch}) or context windows (online-dt, {D.batch})."
            ),
        ),
    ] = None,
    preset: Annotated[
        str,
        typer.Option(
            "--preset",
            **choices(PRESETS),
            help=(
                "BPO's policy optimiser: converged (awmctl's defaults: lr 1e-3, no entropy bonus; "
                "online, 4 policy updates per round) or paper (the paper's: lr 1e-4, entropy 0.1, "
                "1 update per round online). Options given override it."
            ),
        ),
    ] = "converged",
    lr: Annotated[
        float | None,
        typer.Option(
            "--lr",
            help=f"Policy learning rate (BPO: from --preset; sac {S.lr:g}, online-dt {D.lr:g}).",
        ),
    ] = None,
    clip: Annotated[float, typer.Option("--clip", help="Global-norm gradient clip.")] = B.clip,
    entropy: Annotated[
        float | None,
        typer.Option(
            "--entropy",
            help="Entropy bonus (per-step mean; from --preset: converged 0, paper 0.1).",
        ),
    ] = None,
    pessimism: Annotated[
        float | None,
        typer.Option(
            "--pessimism",
            help=(
                "Through an ensemble (fit-model --ensemble, or --ensemble online): the imagined "
                "objective is the members' mean return minus this many standard deviations of it, "
                "so the policy does not climb where they disagree; negative: optimism (from "
                "--preset)."
            ),
        ),
    ] = None,
    seeds: Annotated[
        int,
        typer.Option(
            "--seeds",
            help=(
                "Independent seeds S..S+N-1 trained in one compiled program (one after another on "
                "a CPU, vectorised on a GPU)."
            ),
        ),
    ] = 1,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data",
            rich_help_panel="Offline BPO",
            help="(offline) Dataset whose initial observations start the imagined rollouts.",
        ),
    ] = None,
    steps: Annotated[
        int | None,
        typer.Option(
            "--steps",
            rich_help_panel="Offline BPO",
            help="(offline) Policy updates (from --preset: 1000).",
        ),
    ] = None,
    log_every: Annotated[
        int,
        typer.Option(
            "--log-every",
            rich_help_panel="Offline BPO",
            help="(offline) Updates between evaluations and checkpoints.",
        ),
    ] = B.log_every,
    online: Annotated[
        bool,
        typer.Option(
            "--online",
            metavar="",
            help=(
                "Algorithm 1: interact with the task, fit --model (a model NAME) and the policy in "
                "one loop."
            ),
        ),
    ] = False,
    env_steps: Annotated[
        int,
        typer.Option(
            "--env-steps",
            rich_help_panel=ONLINE_PANEL,
            help="(online) Environment steps.",
        ),
    ] = O.env_steps,
    warmup_steps: Annotated[
        int | None,
        typer.Option(
            "--warmup-steps",
            rich_help_panel=ONLINE_PANEL,
            help=(
                "(online) First env steps with random actions (BPO and online-dt "
                f"{O.warmup_steps}, sac {S.warmup_steps})."
            ),
        ),
    ] = None,
    model_every: Annotated[
        int,
        typer.Option(
            "--model-every",
            rich_help_panel=ONLINE_PANEL,
            help="(online) Env steps between model updates.",
        ),
    ] = O.model_every,
    policy_every: Annotated[
        int,
        typer.Option(
            "--policy-every",
            rich_help_panel=ONLINE_PANEL,
            help="(online) Env steps between policy updates.",
        ),
    ] = O.policy_every,
    policy_updates: Annotated[
        int | None,
        typer.Option(
            "--policy-updates",
            rich_help_panel=ONLINE_PANEL,
            help=(
                "(online) Policy updates every --policy-every env steps (imagined: they cost no "
                "env steps; from --preset)."
            ),
        ),
    ] = None,
    trust_gate: Annotated[
        float | None,
        typer.Option(
            "--trust-gate",
            rich_help_panel=ONLINE_PANEL,
            help=(
                "(online) Guard against the policy exploiting model errors: while the model "
                "overpredicts the return of the policy's fresh episodes by more than this many "
                "spreads of the stored returns, policy rounds are skipped; 0 turns it off (from "
                "--preset)."
            ),
        ),
    ] = None,
    trust_check: Annotated[
        str | None,
        typer.Option(
            "--trust-check",
            **choices(TRUST_CHECKS),
            rich_help_panel=ONLINE_PANEL,
            help=(
                "(online) What the trust gate checks the model on: completed: each episode as it "
                "completes; in-progress: also the steps so far of the episode in progress, before "
                "every policy round (from --preset)."
            ),
        ),
    ] = None,
    trust_restore: Annotated[
        bool | None,
        typer.Option(
            "--trust-restore/--no-trust-restore",
            rich_help_panel=ONLINE_PANEL,
            help=(
                "(online) When an episode's check finds the model optimistic, also set the "
                "policy back to the one that began the last episode the gate trusted (from "
                "--preset)."
            ),
        ),
    ] = None,
    ensemble: Annotated[
        int | None,
        typer.Option(
            "--ensemble",
            rich_help_panel=ONLINE_PANEL,
            help=(
                "(online) World models fitted together as one ensemble, each on its own batches "
                "(from --preset; offline, a model directory says its own)."
            ),
        ),
    ] = None,
    exploration: Annotated[
        float | None,
        typer.Option(
            "--exploration",
            rich_help_panel=ONLINE_PANEL,
            help=(
                "(online, with --ensemble) Directed exploration: for the first --explore-steps env "
                "steps of updating, the policy climbs the members' mean return plus this many "
                "standard deviations of it (it goes where they disagree, and its episodes teach "
                "the model there); then --pessimism (from --preset)."
            ),
        ),
    ] = None,
    explore_steps: Annotated[
        int | None,
        typer.Option(
            "--explore-steps",
            rich_help_panel=ONLINE_PANEL,
            help=(
                "(online) Env steps of --exploration or --explore-offset after updates begin "
                "(from --preset)."
            ),
        ),
    ] = None,
    explore_offset: Annotated[
        float | None,
        typer.Option(
            "--explore-offset",
            rich_help_panel=ONLINE_PANEL,
            help=(
                "(online) Exploration by perturbed plans: for the first --explore-steps env steps "
                "of updating, every episode's actions are the policy's plus one constant offset "
                "per episode, uniform in [-A, A] (from --preset)."
            ),
        ),
    ] = None,
    trust_bound: Annotated[
        bool | None,
        typer.Option(
            "--trust-bound/--no-trust-bound",
            rich_help_panel=ONLINE_PANEL,
            help=(
                "(online, with --ensemble and --pessimism) The trust gate compares the members' "
                "lower confidence bound, the value the policy climbs, with the real return, "
                "instead of their mean (from --preset)."
            ),
        ),
    ] = None,
    keep_best: Annotated[
        float | None,
        typer.Option(
            "--keep-best",
            rich_help_panel=ONLINE_PANEL,
            help=(
                "(online) After each episode the policy ran: if its real return is more than this "
                "many spreads of the stored returns below the run's best such episode, the policy "
                "goes back to the one that began that episode; 0 turns it off (from --preset)."
            ),
        ),
    ] = None,
    eval_every: Annotated[
        int,
        typer.Option(
            "--eval-every",
            rich_help_panel=ONLINE_PANEL,
            help="(online) Env steps between evaluations and checkpoints.",
        ),
    ] = O.eval_every,
    model_lr: Annotated[
        float,
        typer.Option(
            "--model-lr",
            rich_help_panel=ONLINE_PANEL,
            help="(online) Model learning rate.",
        ),
    ] = O.model_lr,
    updates_from: Annotated[
        str,
        typer.Option(
            "--updates-from",
            **choices(UPDATES_FROM),
            rich_help_panel=ONLINE_PANEL,
            help=(
                "(online) warmup: no update before --warmup-steps (the paper authors' schedule); "
                "first-episode: update as soon as one episode is stored."
            ),
        ),
    ] = O.updates_from,
    variant: Annotated[
        str,
        typer.Option(
            "--variant",
            **choices(SAC_VARIANTS),
            rich_help_panel="SAC",
            help=(
                "(sac) authors: the paper authors' SAC (one critic, fixed alpha 0.1, target "
                "actor); standard: twin critics, tuned alpha."
            ),
        ),
    ] = S.variant,
    context: Annotated[
        int,
        typer.Option(
            "--context",
            rich_help_panel="Online-DT",
            help="(online-dt) Steps of context the transformer reads.",
        ),
    ] = D.context,
    processes: Annotated[
        int,
        typer.Option(
            "--processes",
            help=(
                "Local processes to share --seeds (each trains a block of them; on a CPU, one per "
                "core: a run keeps about one core busy). The outputs are the one-process run's."
            ),
        ),
    ] = 1,
    seed: SeedOpt = 0,
    overwrite: OverwriteOpt = False,
    wandb: WandbOpt = None,
    json_out: JsonOpt = False,
    config_file: ConfigOpt = None,
    allow_task_change: AllowTaskChangeOpt = False,
) -> None:
    """Optimise a policy by backpropagating the true reward through a world model's imagination.

    Offline (default): through a fitted model directory or --model simulator (the analytic
    policy gradient; with --policy open-loop: direct shooting). Every --log-every updates the
    deterministic policy is evaluated on the real task and the cosine between the model's and the
    simulator's policy gradients is recorded. Online (--online): the paper's Algorithm 1, which
    fits a fresh --model while it interacts with --task (--model simulator: no fitting, the
    policy learns by the analytic gradient through the task). --agent sac or online-dt: the paper's
    model-free baselines on the same online budget. Rerun the same command to resume after a
    kill.
    """
    check_input_tasks([model, data_dir], allow_task_change)
    if seeds < 1:
        raise BadInputError(f"--seeds must be at least 1, got {seeds}")
    if processes < 1:
        raise BadInputError(f"--processes must be at least 1, got {processes}")
    if processes > 1:
        code = run_locally(ctx, processes, seeds)
        if code:
            raise typer.Exit(code)
        return
    _check_choices(ctx, agent, policy)
    target = Target(
        task,
        horizon,
        parse_task_params(task_param),
        list(range(seed, seed + seeds)),
        out,
        overwrite,
        wandb,
    )
    if wandb:
        artifacts.check_wandb_available()
    # every option by name, as this function received them; each mode takes its own (tables)
    options = ctx.params
    if agent != "bpo":
        refuse_options(
            ctx,
            BPO_ONLY,
            f"to --agent {agent} (a model-free agent: no world model, its own policy)",
        )
        summary = _model_free(agent, _fields(options, AGENT_FIELDS[agent]), target)
    elif model is None:
        raise BadInputError(
            "--model is missing: a model directory or 'simulator' (offline), a model name with "
            "--online"
        )
    elif online:
        refuse_options(
            ctx, OFFLINE_ONLY, "with --online (they set offline BPO; see the (online) options)"
        )
        fields = _fields(options, ONLINE_FIELDS)
        config = OnlineConfig.preset(preset, **fields, seed_mode=seed_mode())
        summary = _online(model, policy, config, preset, target)
    else:
        refuse_options(ctx, ONLINE_ONLY, "without --online")
        fields = _fields(options, OFFLINE_FIELDS)
        config = BPOConfig.preset(preset, **fields, seed_mode=seed_mode())
        summary = _offline(model, policy, config, data_dir, preset, target)
    if json_out:
        emit_json(summary)


class Target(NamedTuple):
    """What every mode shares: the task asked for, the seeds, and where the run goes."""

    task: str | None
    horizon: int | None
    params: dict[str, Any]
    seeds: list[int]
    out: Path
    overwrite: bool
    wandb: str | None

    def make_task(self, needed_by: str) -> Task:
        if self.task is None:
            raise BadInputError(f"{needed_by} needs --task (and optionally --horizon)")
        return make_task(self.task, self.horizon, self.params)


#: each mode's config fields from the command's options (option -> field); a None option leaves
#: the preset's value (BPO) or the config's default (the agents)
def _same(*names: str) -> dict[str, str]:
    return {name: name for name in names}


ONLINE_FIELDS = {
    **_same("env_steps", "warmup_steps", "model_every", "policy_every", "eval_every", "model_lr"),
    **_same("clip", "entropy", "policy_input_grad", "updates_from", "policy_updates", "trust_gate"),
    "trust_check": "trust_check",
    "trust_restore": "trust_restore",
    **_same("ensemble", "pessimism", "exploration", "explore_steps", "trust_bound", "keep_best"),
    "explore_offset": "explore_offset",
    "batch_size": "policy_batch",
    "lr": "policy_lr",
}
OFFLINE_FIELDS = _same(
    "steps", "batch_size", "lr", "clip", "entropy", "policy_input_grad", "log_every", "pessimism"
)
_AGENT_FIELDS = {**_same("env_steps", "warmup_steps", "eval_every", "lr"), "batch_size": "batch"}
AGENT_FIELDS = {
    "sac": {**_AGENT_FIELDS, **_same("variant")},
    "online-dt": {**_AGENT_FIELDS, **_same("context")},
}


def _fields(options: dict[str, Any], table: dict[str, str]) -> dict[str, Any]:
    return {field: options[option] for option, field in table.items()}


def _check_choices(ctx: Any, agent: str, policy: str) -> None:
    """Refuse an unknown agent or policy, and another agent's options."""
    if agent not in AGENTS:
        raise BadInputError(f"unknown agent {agent!r}; choose one of: {', '.join(AGENTS)}")
    for other, names in AGENT_ONLY.items():
        if other != agent:
            refuse_options(ctx, names, f"to --agent {agent} (only to --agent {other})")
    if policy not in POLICIES:
        raise BadInputError(f"unknown policy {policy!r}; choose one of: {', '.join(POLICIES)}")


def _train(
    algorithm: Any, target: Target, record: dict[str, Any], short: str, title: str
) -> Outcome | None:
    """Open (or resume) the run, train every seed; the outcome, or None in a process other than
    the first of a multi-process run (process 0 writes the results)."""
    run = open_run(
        target.out, artifacts.POLICY_KIND, {**record, "seeds": target.seeds}, target.overwrite
    )
    outcome = train(algorithm, run, target.seeds, short, title, wandb_project=target.wandb)
    return outcome if outcome.main else None


def _offline(
    model: str, policy: str, config: BPOConfig, data_dir: Path | None, preset: str, target: Target
) -> dict[str, Any]:
    world, the_task, model_meta = _world_of(model, target)
    if config.pessimism and members_of(world) == 1:
        raise BadInputError(
            f"--pessimism acts through the disagreement of an ensemble's members, and {model} is "
            "one model: fit one with fit-model --ensemble K, or drop --pessimism"
        )
    episodes = _starts(data_dir, the_task)
    algorithm = BPO(the_task, world, policy, jnp.asarray(episodes.observations), config)
    record = {
        "task": task_record(the_task),
        "model": model_meta,
        "policy": policy,
        "bpo": algorithm.config.__dict__,
        "preset": preset,
        "data": None if data_dir is None else str(Path(data_dir).absolute()),
    }
    outcome = _train(
        algorithm,
        target,
        record,
        f"BPO {world.name} on {the_task.name}",
        f"BPO through {world.name} on {the_task.name} (H={the_task.horizon})",
    )
    if outcome is None:
        return {}
    summary = {
        "out": str(target.out),
        "model": world.name,
        "task": the_task.name,
        "horizon": the_task.horizon,
        "policy": policy,
        "policy_input_grad": algorithm.config.policy_input_grad,
        "preset": preset,
        "steps": config.steps,
        "lr": config.lr,
        **_uncertainty(members_of(world), algorithm.config.pessimism),
        "seeds": len(target.seeds),
        **_returns(outcome, the_task),
        "final_grad_cosine_mean": float(np.mean(outcome.final("train/grad_cosine"))),
    }
    if model != SIMULATOR:
        summary.update(
            _model_view(
                the_task,
                lambda i: world,
                lambda i: algorithm.policy(seed_slice(outcome.params, i)),
                len(target.seeds),
            )
        )
    _finish(
        outcome,
        algorithm.template,
        the_task,
        target.seeds,
        summary,
        model=model_meta,
        bpo=algorithm.config.__dict__,
    )
    return summary


def _world_of(model: str, target: Target) -> tuple[Any, Task, dict[str, Any]]:
    """Offline BPO's world model, its task (``--horizon`` may change a fitted model's) and its
    record: the simulator of ``--task``, or a model directory."""
    if model == SIMULATOR:
        the_task = target.make_task("--model simulator")
        world = build_model(
            SIMULATOR,
            the_task.state_size,
            the_task.action_size,
            the_task.horizon,
            key=jax.random.key(0),
            task=the_task,
        )
        return world, the_task, {"name": SIMULATOR}
    world, the_task, meta = artifacts.load_model(model)
    if target.task is not None and not _names_task(target.task, the_task):
        raise BadInputError(f"{model} was fitted on {the_task.name}, not {target.task}")
    if target.horizon is not None and target.horizon != the_task.horizon:
        the_task = remake(the_task, target.horizon)
    return world, the_task, {"path": str(Path(model).absolute()), **meta["model"]}


def _names_task(asked: str, task: Task) -> bool:
    """Whether ``--task`` names ``task``: its name, or (a user's task) its class in the same file,
    given by any path or as a module."""
    source = task_record(task).get("source")
    if asked == task.name or asked == source:
        return True
    if source is None or ":" not in asked or asked.rpartition(":")[2] != source.rpartition(":")[2]:
        return False
    return source_file(asked) is not None and source_file(asked) == source_file(source)


def _starts(data_dir: Path | None, task: Task) -> Episode:
    """The episodes offline BPO starts from and scales the policy's input by: a dataset of the
    task, or random episodes with a fixed key (every seed of a sweep sees the same scales)."""
    if data_dir is None:
        return collect(task, random_controller(task), 64, jax.random.key(0))
    episodes, data_meta = artifacts.load_dataset(data_dir)
    if data_meta["task"]["name"] != task.name or data_meta["sizes"]["obs"] != task.obs_size:
        raise BadInputError(f"{data_dir} holds {data_meta['task']['name']} data, not {task.name}")
    return episodes


def _online(
    model: str, policy: str, config: OnlineConfig, preset: str, target: Target
) -> dict[str, Any]:
    if Path(model).is_dir():
        raise BadInputError(
            "--online fits a fresh world model while interacting; give a model name (e.g. "
            "awm-transformer), not a directory"
        )
    spec = model_spec(model)
    the_task = target.make_task("--online")
    algorithm = OnlineBPO(the_task, spec, policy, config)
    record = {
        "task": task_record(the_task),
        "model": model,
        "policy": policy,
        "online": algorithm.config.__dict__,
        "preset": preset,
    }
    outcome = _train(
        algorithm,
        target,
        record,
        f"online {model} on {the_task.name}",
        f"Online BPO with {model} on {the_task.name} (H={the_task.horizon})",
    )
    if outcome is None:
        return {}
    summary = {
        "out": str(target.out),
        "model": model,
        "task": the_task.name,
        "horizon": the_task.horizon,
        "policy": policy,
        "policy_input_grad": algorithm.config.policy_input_grad,
        "preset": preset,
        "lr": config.policy_lr,
        "policy_updates": config.policy_updates,
        "trust_gate": config.trust_gate,
        "trust_check": config.trust_check,
        "trust_restore": config.trust_restore,
        **_uncertainty(config.ensemble, config.pessimism),
        **(
            {"exploration": config.exploration, "explore_steps": config.explore_steps}
            if algorithm.exploring
            else {}
        ),
        **(
            {"explore_offset": config.explore_offset, "explore_steps": config.explore_steps}
            if algorithm.perturbing
            else {}
        ),
        **({"trust_bound": True} if config.trust_bound else {}),
        "online": True,
        "env_steps": config.steps_run,
        "seeds": len(target.seeds),
        **_returns(outcome, the_task),
    }
    if algorithm.gated:
        rounds = len(config.update_steps(the_task.horizon)[1])
        gated = outcome.final("train/gated_rounds").mean()
        summary["gated_fraction"] = round(float(gated) / max(rounds, 1), 3)
    if algorithm.restoring:  # mean over seeds of the episode checks that set the policy back
        summary["restores"] = round(float(outcome.final("train/restores").mean()), 2)
    if algorithm.keeping:  # mean over seeds of the episodes after which the policy went back
        summary["keep_best"] = config.keep_best
        summary["fallbacks"] = round(float(outcome.final("train/fallbacks").mean()), 2)
    if spec.trainable:
        summary.update(
            _model_view(
                the_task,
                lambda i: algorithm.model(seed_slice(outcome.state.model, i)),
                lambda i: algorithm.policy(seed_slice(outcome.params, i)),
                len(target.seeds),
            )
        )
        _save_online_model(outcome, algorithm, the_task, target.seeds[0])
    _finish(
        outcome,
        algorithm.template_policy,
        the_task,
        target.seeds,
        summary,
        model={"name": model, "online": True},
        online=algorithm.config.__dict__,
    )
    return summary


def _uncertainty(members: int, pessimism: float) -> dict[str, Any]:
    """The summary's ensemble entries: its members and the pessimism the policy was held to (none
    for one model, where pessimism has no effect)."""
    return {"ensemble": members, "pessimism": pessimism} if members > 1 else {}


def _model_view(
    task: Task,
    model_of: Callable[[int], AbstractWorldModel],
    policy_of: Callable[[int], MarkovPolicy],
    seeds: int,
) -> dict[str, float]:
    """How the final model(s) score the final policy's own episode and the best plan of the
    task's references (means over seeds), when the references keep that plan."""
    refs = load_references(task, references_cache())
    if refs is None or refs.plan is None:
        return {}
    plan = jnp.asarray(refs.plan, jnp.float32)
    views = [analysis.model_view(model_of(i), task, policy_of(i), plan) for i in range(seeds)]
    return {
        "model_policy_return": float(np.mean([v["policy"] for v in views])),
        "model_plan_return": float(np.mean([v["plan"] for v in views])),
    }


def _save_online_model(outcome: Outcome, algorithm: OnlineBPO, task: Task, seed: int) -> None:
    """The final world model of the first seed, as a model directory of its own (``model/``)."""
    model_dir = outcome.work / "model"
    model_dir.mkdir(exist_ok=True)
    first = algorithm.model(seed_slice(outcome.state.model, 0))
    artifacts.write_meta(
        model_dir,
        artifacts.save_model(model_dir, first, task, seed=seed, online=algorithm.config.__dict__),
    )


def _model_free(agent: str, options: dict[str, Any], target: Target) -> dict[str, Any]:
    the_task = target.make_task(f"--agent {agent}")
    given = {k: v for k, v in options.items() if v is not None}
    spec = AGENT_SPECS[agent]
    config = spec.config(**given, seed_mode=seed_mode())
    algorithm = spec.algorithm(the_task, config)
    long_context = isinstance(config, OnlineDTConfig) and config.context > the_task.horizon
    if long_context and config.context != D.context:
        err_console.print(
            f"Note: --context {config.context} is longer than the episode (H = "
            f"{the_task.horizon}): the transformer reads whole episodes."
        )
    outcome = _train(
        algorithm,
        target,
        {"task": task_record(the_task), "agent": agent, agent: config.__dict__},
        f"{agent} on {the_task.name}",
        f"{spec.title} on {the_task.name} (H={the_task.horizon})",
    )
    if outcome is None:
        return {}
    summary = {
        "out": str(target.out),
        "agent": agent,
        "task": the_task.name,
        "horizon": the_task.horizon,
        "online": True,
        "env_steps": config.steps_run,
        "seeds": len(target.seeds),
        **_returns(outcome, the_task),
    }
    _finish(
        outcome,
        algorithm.template_policy,
        the_task,
        target.seeds,
        summary,
        agent=agent,
        **{agent: config.__dict__},
    )
    return summary


def _returns(outcome: Outcome, task: Task) -> dict[str, Any]:
    final = outcome.final("eval/eval_return")
    out: dict[str, Any] = {
        "final_return_mean": float(final.mean()),
        "final_return_ci95": ci95(final),
        "best_return_mean": float(outcome.best.scores.mean()),
    }
    refs = load_references(task, references_cache())
    if refs is not None and refs.usable:  # `awmctl references` computed them for this task
        scores = refs.score(final)
        out.update(
            {
                "score": float(scores.mean()),
                "score_ci95": ci95(scores),
                "best_score": float(refs.score(outcome.best.scores).mean()),
                "R_random": refs.random,
                "R_opt": refs.opt,
            }
        )
    return {**out, **outcome.time.as_dict()}


def _finish(
    outcome: Outcome,
    template,
    task: Task,
    seed_list: list[int],
    summary: dict[str, Any],
    **fields: Any,
) -> None:
    """Every seed's final and best policy, the meta.json, and the run moved into place."""
    meta = artifacts.save_policies(
        outcome.work,
        outcome.params,
        outcome.best.params,
        template,
        task,
        seed_list,
        seed=seed_list[0],
        summary=summary,
        **fields,
    )
    outcome.run.finish(meta)
    err_console.print(
        summary_table(f"Optimised {template.name} policy -> {summary['out']}", summary)
    )
    for line in _diagnosis(summary):
        err_console.print(line, highlight=False, soft_wrap=True)
    if "score" not in summary:
        err_console.print(
            f"No score: compute this task's references once with `awmctl references --task "
            f"{task_record(task).get('source') or task.name} --horizon {task.horizon}` (plus its "
            "--task-param), and every later summary on it reports score (0 random, 1 the best plan "
            "found).",
            highlight=False,
            soft_wrap=True,
        )


#: how far below the best real evaluation (in units of R_opt - R_random; without references, of
#: the best return's size) a final policy must end for the summary to say so
FELL_BACK = 0.05


def fell_back(summary: dict[str, Any]) -> list[str]:
    """What the summary says when the final policy ends worse than the data showed: worse than a
    random policy, or below the best policy the real evaluations saw (which the run keeps as its
    ``best`` parameters, the ones later commands take by default)."""
    final, best = summary["final_return_mean"], summary.get("best_return_mean")
    lines: list[str] = []
    if summary.get("score", 0.0) < 0:
        lines.append(
            f"The final policy is worse than a random one (score {summary['score']:.3g}: it "
            f"returns {final:.4g} where random actions return {summary['R_random']:.4g})."
        )
    if best is None:
        return lines
    span = summary["R_opt"] - summary["R_random"] if "score" in summary else abs(best)
    if best - final > FELL_BACK * span:
        said = f" (score {summary['best_score']:.3g})" if "best_score" in summary else ""
        lines.append(
            f"The final policy returns {final:.4g}, below the {best:.4g}{said} of the best policy "
            "the real evaluations saw: the run keeps that one as its best parameters, which "
            "collect --policy and load_policy take by default (the final ones are kept too)."
        )
    return lines


def _diagnosis(summary: dict[str, Any]) -> list[str]:
    """What limits the result, in words, from the summary's numbers: the trust gate shut at least
    half the rounds; the policy exploits its model; or the model cannot see the best plan (said
    only when the model does not overpromise the policy: then it is wrong where the policy goes,
    and that is what to say)."""
    lines = fell_back(summary)
    if summary.get("gated_fraction", 0) >= 0.5:
        lines.append(
            f"The trust gate skipped {summary['gated_fraction']:.0%} of the policy rounds: the "
            "world model kept over-predicting the return of the policy's own episodes, so the "
            "model, not the policy optimiser, limits this result (a larger model, --model-lr, or "
            "more --env-steps may help)."
        )
    if "model_plan_return" not in summary or "score" not in summary:
        return lines
    promised, plan = summary["model_policy_return"], summary["model_plan_return"]
    if analysis.model_overpromises(
        promised,
        summary["final_return_mean"],
        summary["R_random"],
        summary["R_opt"],
        summary["score"],
    ):
        lines.append(
            f"The world model promises the policy's own episode {promised:.4g} and the task pays "
            f"{summary['final_return_mean']:.4g}: the policy exploits the model's errors. A "
            "better model of where the policy goes would help (more --env-steps, or fitting "
            "longer); so may a stricter --trust-gate online."
        )
    elif analysis.model_hides_optimum(promised, plan, summary["score"]):
        lines.append(
            f"The world model scores the best plan found through the simulator (R_opt "
            f"{summary['R_opt']:.4g}) at {plan:.4g}, below the {promised:.4g} it gives the "
            "policy's own episode: it has not seen the states that plan reaches, so no policy "
            "optimiser finds the plan through it. Data from there would (more --env-steps, or a "
            "policy that explores); more policy updates would not."
        )
    return lines
