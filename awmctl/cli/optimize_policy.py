"""``awmctl optimize-policy``: BPO through a world model, offline (a fitted model or the
simulator, on initial observations) or online (Algorithm 1: interact, fit, improve), and the
paper's model-free baselines online (``--agent sac`` or ``online-dt``), N seeds at once. Each
mode and agent has its own options; an option that does not apply is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, get_args, no_type_check

import jax
import jax.numpy as jnp
import numpy as np
import typer

from awmctl import artifacts
from awmctl.algorithms import (
    BPO,
    SAC,
    BPOConfig,
    OnlineBPO,
    OnlineConfig,
    OnlineDT,
    OnlineDTConfig,
    SACConfig,
)
from awmctl.algorithms.online import UpdatesFrom
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
from awmctl.models import PolicyInputGrad, build_model, model_spec
from awmctl.policies import POLICIES, POLICY_SPECS
from awmctl.rollouts import collect, random_controller
from awmctl.stats import ci95
from awmctl.tasks import Task, make_task, parse_task_params, remake, task_record
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
    "model_lr",
    "updates_from",
    "data_dir",
    "steps",
    "log_every",
)
AGENTS = ("bpo", "sac", "online-dt")
# the closed sets of values, from the library's types (help and shell completion list them)
UPDATES_FROM, SAC_VARIANTS = get_args(UpdatesFrom), get_args(Variant)
POLICY_INPUT_GRADS = get_args(PolicyInputGrad)
AGENT_ONLY = {"sac": ("variant",), "online-dt": ("context",)}
B, O, S, D = BPOConfig, OnlineConfig, SACConfig, OnlineDTConfig  # the defaults


@handle_errors
@idempotent
@no_type_check  # typer passes its own click context, not an instance of the typer.Context it documents
def optimize_policy_command(
    ctx: typer.Context,
    out: OutOpt,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Offline: a model directory from fit-model, or 'simulator'. Online: a model name (e.g. awm-transformer).",
            autocompletion=complete_model,
        ),
    ] = None,
    agent: Annotated[
        str,
        typer.Option(
            "--agent",
            **choices(AGENTS),
            help="bpo (through --model), or a model-free baseline, online: sac or online-dt (implies --online).",
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
            help=f"Per update: imagined rollouts (BPO, {B.batch_size}), transitions (sac, {S.batch}) or context windows (online-dt, {D.batch}).",
        ),
    ] = None,
    preset: Annotated[
        str,
        typer.Option(
            "--preset",
            **choices(PRESETS),
            help="BPO's policy optimiser: converged (awmctl's defaults: lr 1e-3, no entropy bonus; online, 4 policy updates per round) or paper (the paper's: lr 1e-4, entropy 0.1, 1 update per round online). Options given override it.",
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
    seeds: Annotated[
        int,
        typer.Option(
            "--seeds",
            help="Independent seeds S..S+N-1 trained in one compiled program (one after another on a CPU, vectorised on a GPU).",
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
            help="Algorithm 1: interact with the task, fit --model (a model NAME) and the policy in one loop.",
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
            help=f"(online) First env steps with random actions (BPO and online-dt {O.warmup_steps}, sac {S.warmup_steps}).",
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
            help="(online) Policy updates every --policy-every env steps (imagined: they cost no env steps; from --preset).",
        ),
    ] = None,
    trust_gate: Annotated[
        float | None,
        typer.Option(
            "--trust-gate",
            rich_help_panel=ONLINE_PANEL,
            help="(online) Guard against the policy exploiting model errors: while the model overpredicts the return of the policy's fresh episodes by more than this many spreads of the stored returns, policy rounds are skipped; 0 turns it off (from --preset).",
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
            help="(online) warmup: no update before --warmup-steps (the paper authors' schedule); first-episode: update as soon as one episode is stored.",
        ),
    ] = O.updates_from,
    variant: Annotated[
        str,
        typer.Option(
            "--variant",
            **choices(SAC_VARIANTS),
            rich_help_panel="SAC",
            help="(sac) authors: the paper authors' SAC (one critic, fixed alpha 0.1, target actor); standard: twin critics, tuned alpha.",
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
            help="Local processes to share --seeds (each trains a block of them; on a CPU, one per core: a run keeps about one core busy). The outputs are the one-process run's.",
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
    if agent not in AGENTS:
        raise BadInputError(f"unknown agent {agent!r}; choose one of: {', '.join(AGENTS)}")
    for other, names in AGENT_ONLY.items():
        if other != agent:
            refuse_options(ctx, names, f"to --agent {agent} (only to --agent {other})")
    if policy not in POLICIES:
        raise BadInputError(f"unknown policy {policy!r}; choose one of: {', '.join(POLICIES)}")
    params = parse_task_params(task_param)
    seed_list = list(range(seed, seed + seeds))
    if wandb:
        artifacts.check_wandb_available()
    if agent != "bpo":
        refuse_options(
            ctx,
            BPO_ONLY,
            f"to --agent {agent} (a model-free agent: no world model, its own policy)",
        )
        summary = _model_free(
            agent,
            task,
            horizon,
            params,
            seed_list,
            out,
            overwrite,
            wandb,
            env_steps=env_steps,
            warmup_steps=warmup_steps,
            eval_every=eval_every,
            lr=lr,
            batch=batch_size,
            variant=variant,
            context=context,
        )
    elif model is None:
        raise BadInputError(
            "--model is missing: a model directory or 'simulator' (offline), a model name with --online"
        )
    elif online:
        refuse_options(
            ctx, OFFLINE_ONLY, "with --online (they set offline BPO; see the (online) options)"
        )
        config = OnlineConfig.preset(
            preset,
            env_steps=env_steps,
            warmup_steps=warmup_steps,
            model_every=model_every,
            policy_every=policy_every,
            eval_every=eval_every,
            policy_batch=batch_size,
            model_lr=model_lr,
            policy_lr=lr,
            clip=clip,
            entropy=entropy,
            policy_input_grad=policy_input_grad,
            updates_from=updates_from,
            policy_updates=policy_updates,
            trust_gate=trust_gate,
            seed_mode=seed_mode(),
        )
        summary = _online(
            model, task, horizon, params, policy, config, seed_list, out, overwrite, preset, wandb
        )
    else:
        refuse_options(ctx, ONLINE_ONLY, "without --online")
        config = BPOConfig.preset(
            preset,
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            clip=clip,
            entropy=entropy,
            policy_input_grad=policy_input_grad,
            log_every=log_every,
            seed_mode=seed_mode(),
        )
        summary = _offline(
            model,
            task,
            horizon,
            params,
            policy,
            config,
            data_dir,
            seed_list,
            out,
            overwrite,
            preset,
            wandb,
        )
    if json_out:
        emit_json(summary)


def _offline(
    model: str,
    task: str | None,
    horizon: int | None,
    params: dict,
    policy: str,
    config: BPOConfig,
    data_dir: Path | None,
    seed_list: list[int],
    out: Path,
    overwrite: bool,
    preset: str,
    wandb: str | None,
) -> dict[str, Any]:
    if model == "simulator":
        if task is None:
            raise BadInputError("--model simulator needs --task (and optionally --horizon)")
        the_task = make_task(task, horizon, params)
        world = build_model(
            "simulator",
            the_task.state_size,
            the_task.action_size,
            the_task.horizon,
            key=jax.random.key(0),
            task=the_task,
        )
        model_meta: dict[str, Any] = {"name": "simulator"}
    else:
        world, the_task, meta = artifacts.load_model(model)
        model_meta = {"path": str(Path(model).absolute()), **meta["model"]}
        if task is not None and task != the_task.name:
            raise BadInputError(f"{model} was fitted on {the_task.name}, not {task}")
        if horizon is not None and horizon != the_task.horizon:
            the_task = remake(the_task, horizon)

    if data_dir is not None:
        episodes, data_meta = artifacts.load_dataset(data_dir)
        if (
            data_meta["task"]["name"] != the_task.name
            or data_meta["sizes"]["obs"] != the_task.obs_size
        ):
            raise BadInputError(
                f"{data_dir} holds {data_meta['task']['name']} data, not {the_task.name}"
            )
    else:
        # Input scales for the policy and initial observations: random episodes of the task,
        # with a fixed key so that every seed of a sweep sees the same scales.
        episodes = collect(the_task, random_controller(the_task), 64, jax.random.key(0))

    algorithm = BPO(the_task, world, policy, jnp.asarray(episodes.observations), config)
    run = open_run(
        out,
        artifacts.POLICY_KIND,
        {
            "task": task_record(the_task),
            "model": model_meta,
            "policy": policy,
            "bpo": algorithm.config.__dict__,
            "preset": preset,
            "data": None if data_dir is None else str(Path(data_dir).absolute()),
            "seeds": seed_list,
        },
        overwrite,
    )
    outcome = train(
        algorithm,
        run,
        seed_list,
        f"BPO {world.name} on {the_task.name}",
        f"BPO through {world.name} on {the_task.name} (H={the_task.horizon})",
        wandb_project=wandb,
    )
    if not outcome.main:
        return {}  # another process of a multi-process run: process 0 writes the results
    summary = {
        "out": str(out),
        "model": world.name,
        "task": the_task.name,
        "horizon": the_task.horizon,
        "policy": policy,
        "policy_input_grad": algorithm.config.policy_input_grad,
        "preset": preset,
        "steps": config.steps,
        "lr": config.lr,
        "seeds": len(seed_list),
        **_returns(outcome, the_task),
        "final_grad_cosine_mean": float(np.mean(outcome.final("train/grad_cosine"))),
    }
    _finish(
        outcome,
        algorithm.template,
        the_task,
        seed_list,
        summary,
        model=model_meta,
        bpo=algorithm.config.__dict__,
    )
    return summary


def _online(
    model: str,
    task: str | None,
    horizon: int | None,
    params: dict,
    policy: str,
    config: OnlineConfig,
    seed_list: list[int],
    out: Path,
    overwrite: bool,
    preset: str,
    wandb: str | None,
) -> dict[str, Any]:
    if Path(model).is_dir():
        raise BadInputError(
            "--online fits a fresh world model while interacting; give a model name (e.g. awm-transformer), not a directory"
        )
    spec = model_spec(model)
    if task is None:
        raise BadInputError("--online needs --task (and optionally --horizon)")
    the_task = make_task(task, horizon, params)
    algorithm = OnlineBPO(the_task, spec, policy, config)
    run = open_run(
        out,
        artifacts.POLICY_KIND,
        {
            "task": task_record(the_task),
            "model": model,
            "policy": policy,
            "online": algorithm.config.__dict__,
            "preset": preset,
            "seeds": seed_list,
        },
        overwrite,
    )
    outcome = train(
        algorithm,
        run,
        seed_list,
        f"online {model} on {the_task.name}",
        f"Online BPO with {model} on {the_task.name} (H={the_task.horizon})",
        wandb_project=wandb,
    )
    if not outcome.main:
        return {}  # another process of a multi-process run: process 0 writes the results
    summary = {
        "out": str(out),
        "model": model,
        "task": the_task.name,
        "horizon": the_task.horizon,
        "policy": policy,
        "policy_input_grad": algorithm.config.policy_input_grad,
        "preset": preset,
        "lr": config.policy_lr,
        "policy_updates": config.policy_updates,
        "trust_gate": config.trust_gate,
        "online": True,
        "env_steps": config.steps_run,
        "seeds": len(seed_list),
        **_returns(outcome, the_task),
    }
    if algorithm.gated:
        rounds = len(config.update_steps(the_task.horizon)[1])
        gated = outcome.final("train/gated_rounds").mean()
        summary["gated_fraction"] = round(float(gated) / max(rounds, 1), 3)
    if spec.trainable:  # the final world model of the first seed, as a model directory of its own
        model_dir = outcome.work / "model"
        model_dir.mkdir(exist_ok=True)
        first = algorithm.model(seed_slice(outcome.state.model, 0))
        artifacts.write_meta(
            model_dir,
            artifacts.save_model(
                model_dir, first, the_task, seed=seed_list[0], online=algorithm.config.__dict__
            ),
        )
    _finish(
        outcome,
        algorithm.template_policy,
        the_task,
        seed_list,
        summary,
        model={"name": model, "online": True},
        online=algorithm.config.__dict__,
    )
    return summary


def _model_free(
    agent: str,
    task: str | None,
    horizon: int | None,
    params: dict,
    seed_list: list[int],
    out: Path,
    overwrite: bool,
    wandb: str | None,
    **options: Any,
) -> dict[str, Any]:
    if task is None:
        raise BadInputError(f"--agent {agent} needs --task (and optionally --horizon)")
    the_task = make_task(task, horizon, params)
    given_options = {k: v for k, v in options.items() if v is not None}
    given_options["seed_mode"] = seed_mode()
    if agent == "sac":
        given_options.pop("context")
        config: Any = SACConfig(**given_options)
        algorithm: Any = SAC(the_task, config)
    else:
        given_options.pop("variant")
        config = OnlineDTConfig(**given_options)
        algorithm = OnlineDT(the_task, config)
        if config.context > the_task.horizon and config.context != D.context:
            err_console.print(
                f"Note: --context {config.context} is longer than the episode (H = "
                f"{the_task.horizon}): the transformer reads whole episodes."
            )
    run = open_run(
        out,
        artifacts.POLICY_KIND,
        {"task": task_record(the_task), "agent": agent, agent: config.__dict__, "seeds": seed_list},
        overwrite,
    )
    outcome = train(
        algorithm,
        run,
        seed_list,
        f"{agent} on {the_task.name}",
        f"{'SAC' if agent == 'sac' else 'Online-DT'} on {the_task.name} (H={the_task.horizon})",
        wandb_project=wandb,
    )
    if not outcome.main:
        return {}  # another process of a multi-process run: process 0 writes the results
    summary = {
        "out": str(out),
        "agent": agent,
        "task": the_task.name,
        "horizon": the_task.horizon,
        "online": True,
        "env_steps": config.steps_run,
        "seeds": len(seed_list),
        **_returns(outcome, the_task),
    }
    _finish(
        outcome,
        algorithm.template_policy,
        the_task,
        seed_list,
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
    if summary.get("gated_fraction", 0) >= 0.5:
        err_console.print(
            f"The trust gate skipped {summary['gated_fraction']:.0%} of the policy rounds: the "
            "world model kept over-predicting the return of the policy's own episodes, so the "
            "model, not the policy optimiser, limits this result (a larger model, --model-lr, or "
            "more --env-steps may help).",
            highlight=False,
            soft_wrap=True,
        )
    if "score" not in summary:
        err_console.print(
            f"No score: compute this task's references once with `awmctl references --task "
            f"{task_record(task).get('source') or task.name} --horizon {task.horizon}` (plus its "
            "--task-param), and every later summary on it reports score (0 random, 1 the best plan "
            "found).",
            highlight=False,
            soft_wrap=True,
        )
