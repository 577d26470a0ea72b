"""``awmctl optimize-policy``: BPO through a fitted model or the simulator, N seeds at once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import jax
import jax.numpy as jnp
import numpy as np
import typer

from awmctl import data, plots, store
from awmctl.bpo import BPO, BPOConfig, initial_policies
from awmctl.cli.common import (
    HorizonOpt,
    JsonOpt,
    OutOpt,
    OverwriteOpt,
    SeedOpt,
    TaskParamOpt,
    emit_json,
    err_console,
    handle_errors,
    progress_bar,
    summary_table,
)
from awmctl.errors import BadInputError
from awmctl.models import build_model
from awmctl.models.io import load_model
from awmctl.online import OnlineConfig
from awmctl.policies import POLICY_KIND
from awmctl.trees import BestSoFar
from awmctl.tasks import make_task, parse_task_params


@handle_errors
def optimize_policy_command(
    model: Annotated[str, typer.Option("--model", help="A model directory from fit-model, or 'simulator'.")],
    out: OutOpt,
    task: Annotated[str | None, typer.Option("--task", help="Task (required with --model simulator).")] = None,
    horizon: HorizonOpt = None,
    task_param: TaskParamOpt = None,
    data_dir: Annotated[Path | None, typer.Option("--data", help="Dataset whose initial observations start the imagined rollouts.")] = None,
    steps: Annotated[int, typer.Option("--steps", help="Policy updates.")] = 1000,
    policy: Annotated[str, typer.Option("--policy", help="mlp (closed loop, tanh-Gaussian) or open-loop (one action per step).")] = "mlp",
    policy_input_grad: Annotated[
        str | None, typer.Option("--policy-input-grad", help="stop (default for AWMs) or full (default otherwise).")
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Imagined rollouts per update.")] = 16,
    lr: Annotated[float, typer.Option("--lr", help="Adam learning rate.")] = 1e-4,
    clip: Annotated[float, typer.Option("--clip", help="Global-norm gradient clip.")] = 100.0,
    entropy: Annotated[float, typer.Option("--entropy", help="Entropy bonus (per-step mean).")] = 0.1,
    log_every: Annotated[int, typer.Option("--log-every", help="Updates between evaluations.")] = 50,
    seeds: Annotated[int, typer.Option("--seeds", help="Independent seeds trained in one program (vmap).")] = 1,
    online: Annotated[bool, typer.Option("--online", help="Algorithm 1: interact with the task, fit --model (a model NAME) and the policy in one loop.")] = False,
    env_steps: Annotated[int, typer.Option("--env-steps", help="[--online] Environment steps.")] = 5000,
    warmup_steps: Annotated[int, typer.Option("--warmup-steps", help="[--online] First env steps with random actions.")] = 1500,
    model_every: Annotated[int, typer.Option("--model-every", help="[--online] Env steps between model updates.")] = 2,
    policy_every: Annotated[int, typer.Option("--policy-every", help="[--online] Env steps between policy updates.")] = 16,
    eval_every: Annotated[int, typer.Option("--eval-every", help="[--online] Env steps between evaluations and checkpoints.")] = 32,
    model_lr: Annotated[float, typer.Option("--model-lr", help="[--online] Model learning rate.")] = 1e-3,
    seed: SeedOpt = 0,
    overwrite: OverwriteOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Optimise a policy by backpropagating the true reward through a world model's imagination.

    With --model simulator this is the analytic policy gradient (with --policy open-loop: direct
    shooting). Every --log-every updates the deterministic policy is evaluated on the real task
    and the cosine between the model's and the simulator's policy gradients is recorded.
    """
    if seeds < 1:
        raise BadInputError(f"--seeds must be at least 1, got {seeds}")
    params = parse_task_params(task_param)
    if online:
        from awmctl.cli.online import run_online

        if model == "simulator":
            raise BadInputError("--online fits a world model while interacting; it needs a model name, not simulator")
        if task is None:
            raise BadInputError("--online needs --task (and optionally --horizon)")
        config = OnlineConfig(env_steps, warmup_steps, model_every, policy_every, eval_every, 64, batch_size,
                              model_lr, lr, clip, entropy, policy_input_grad or ("stop" if model.startswith("awm") else "full"))
        summary = run_online(make_task(task, horizon, params), model, policy, config, seed, seeds, out, overwrite)
        if json_out:
            emit_json(summary)
        return
    if model == "simulator":
        if task is None:
            raise BadInputError("--model simulator needs --task (and optionally --horizon)")
        the_task = make_task(task, horizon, params)
        world = build_model("simulator", the_task.state_size, the_task.action_size, the_task.horizon,
                            key=jax.random.key(0), task=the_task)
        model_meta: dict[str, Any] = {"name": "simulator"}
    else:
        world, the_task, meta = load_model(model)
        model_meta = {"path": str(Path(model).absolute()), **meta["model"]}
        if task is not None and task != the_task.name:
            raise BadInputError(f"{model} was fitted on {the_task.name}, not {task}")
        if horizon is not None and horizon != the_task.horizon:
            the_task = make_task(the_task.name, horizon, the_task.params)
    grad_mode = policy_input_grad or ("stop" if world.name.startswith("awm") else "full")
    config = BPOConfig(steps, batch_size, lr, clip, entropy, grad_mode, log_every)  # type: ignore[arg-type]
    config.check()

    if data_dir is not None:
        episodes, data_meta = data.load_dataset(data_dir)
        if data_meta["task"]["name"] != the_task.name or data_meta["sizes"]["obs"] != the_task.obs_size:
            raise BadInputError(f"{data_dir} holds {data_meta['task']['name']} data, not {the_task.name}")
    else:
        # Input scales for the policy and initial observations: random episodes of the task,
        # with a fixed key so that every seed of a sweep sees the same scales.
        act = data.behaviour(data.parse_policy("random"), the_task)
        episodes = data.collect(the_task, act, 64, jax.random.key(0))
    observations = jnp.asarray(episodes.observations)

    seed_list = np.arange(seed, seed + seeds)
    template, params0 = initial_policies(policy, the_task, observations, seed_list)
    bpo = BPO(the_task, world, template, observations[:, 0], config)
    state = bpo.init_from(params0, seed_list)

    run_config = {"task": the_task.describe(), "model": model_meta, "policy": policy, "bpo": config.__dict__,
                  "data": None if data_dir is None else str(Path(data_dir).absolute()), "seeds": seed_list.tolist()}
    run = store.ResumableRun(out, POLICY_KIND, run_config, overwrite)
    best = BestSoFar.start(state.params, seeds)
    restored = run.restore_latest({"state": state, "best": best.checkpoint()})
    if restored is not None:
        saved, step = restored
        state, best = saved["state"], BestSoFar.restore(saved["best"])
        err_console.print(f"Resuming from update {step} in {run.work}")
    state = _shard_over_devices(state, seeds)
    try:
        with progress_bar(f"BPO {world.name} on {the_task.name}", steps) as update:
            update(int(np.asarray(state.step)[0]))
            while not bpo.done(state):
                state, metrics = bpo.run_chunk(state)
                step = int(np.asarray(state.step)[0])
                best = best.update(state.params, metrics["eval_return"])
                run.log({"step": step, **{f"{'eval' if k == 'eval_return' else 'train'}/{k}": v.tolist() for k, v in metrics.items()}})
                run.save(step, {"state": state, "best": best.checkpoint()})
                update(step, f"eval {np.mean(metrics['eval_return']):.4g}")
    finally:
        run.close()  # on an interruption too: checkpoints in flight are completed, not lost

    records = run.metrics()
    final = records[-1]["eval/eval_return"]
    summary = {
        "out": str(out), "model": world.name, "task": the_task.name, "horizon": the_task.horizon,
        "policy": policy, "policy_input_grad": grad_mode, "steps": steps, "seeds": seeds,
        "final_return_mean": float(np.mean(final)), "final_return_ci95": _ci95(final),
        "best_return_mean": float(np.mean(best.returns)),
        "final_grad_cosine_mean": float(np.mean(records[-1]["train/grad_cosine"])),
    }
    leaves = store.save_arrays(run.work, {"final": state.params, "best": best.params})
    _plot(records, run.work / "learning_curve.png", f"BPO through {world.name} on {the_task.name} (H={the_task.horizon})")
    run.finish(store.base_meta(
        POLICY_KIND, task=the_task.describe(),
        policy={"kind": policy, "obs_size": the_task.obs_size, "action_size": the_task.action_size,
                "horizon": the_task.horizon, "hyper": template.hyperparameters(), "seeds": seeds},
        model=model_meta, bpo=config.__dict__, seed=seed, seeds=seed_list.tolist(),
        summary=summary, leaves=leaves,
    ))
    err_console.print(summary_table(f"Optimised {policy} policy -> {out}", summary))
    if json_out:
        emit_json(summary)


def _ci95(values) -> float:
    v = np.asarray(values, dtype=np.float64)
    return float(1.96 * v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0


def _shard_over_devices(state, seeds: int):
    """Spread the seed axis over all local devices when it divides evenly (else keep one)."""
    devices = jax.local_devices()
    if len(devices) < 2 or seeds % len(devices):
        return state
    mesh = jax.sharding.Mesh(np.asarray(devices), ("seed",))
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("seed"))
    return jax.device_put(state, sharding)


def _plot(records, path, title, xlabel: str = "policy update") -> None:
    steps = [r["step"] for r in records]
    returns = np.asarray([r["eval/eval_return"] for r in records])  # [logs, seeds]
    plots.seed_curves(steps, returns, path, title, ylabel="eval return (deterministic policy)", xlabel=xlabel)
