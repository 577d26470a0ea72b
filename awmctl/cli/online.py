"""``awmctl optimize-policy --online``: the paper's Algorithm 1 as a resumable run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from awmctl import store
from awmctl.cli.common import err_console, progress_bar, summary_table
from awmctl.models import build_model, check_model_name
from awmctl.models.io import MODEL_KIND, model_record
from awmctl.online import Online, OnlineConfig
from awmctl.policies import POLICY_KIND, build_policy
from awmctl.trees import BestSoFar
from awmctl.tasks import Task


def run_online(task: Task, model_name: str, policy_kind: str, config: OnlineConfig, seed: int, seeds: int,
               out: Path, overwrite: bool) -> dict[str, Any]:
    check_model_name(model_name)
    config.check()
    seed_list = np.arange(seed, seed + seeds)
    build_m = lambda s: build_model(model_name, task.state_size, task.action_size, task.horizon, key=jax.random.key(s))  # noqa: E731
    build_p = lambda s: build_policy(policy_kind, task.obs_size, task.action_size, task.horizon, key=jax.random.fold_in(jax.random.key(s), 1))  # noqa: E731
    template_model, template_policy = build_m(0), build_p(0)
    models = eqx.filter(eqx.filter_vmap(build_m)(jnp.asarray(seed_list)), eqx.is_inexact_array)
    policies = eqx.filter(eqx.filter_vmap(build_p)(jnp.asarray(seed_list)), eqx.is_inexact_array)
    loop = Online(task, template_model, template_policy, config)
    state = loop.init(models, policies, seed_list)

    run_config = {"task": task.describe(), "model": model_name, "policy": policy_kind, "online": config.__dict__,
                  "seeds": seed_list.tolist()}
    run = store.ResumableRun(out, POLICY_KIND, run_config, overwrite)
    best = BestSoFar.start(state.policy, seeds)
    restored = run.restore_latest({"state": state, "best": best.checkpoint()})
    if restored is not None:
        saved, step = restored
        state, best = saved["state"], BestSoFar.restore(saved["best"])
        err_console.print(f"Resuming from env step {step} in {run.work}")
    try:
        with progress_bar(f"online {model_name} on {task.name}", config.steps_run) as update:
            update(int(np.asarray(state.t)[0]))
            while not loop.done(state):
                state, returns = loop.run_period(state)
                t = int(np.asarray(state.t)[0])
                best = best.update(state.policy, returns)
                run.log({"step": t, "eval/eval_return": returns.tolist(), "train/episodes": np.asarray(state.count).tolist()})
                run.save(t, {"state": state, "best": best.checkpoint()})
                update(t, f"eval {np.mean(returns):.4g}")
    finally:
        run.close()

    records = run.metrics()
    final = np.asarray(records[-1]["eval/eval_return"])
    summary = {
        "out": str(out), "model": model_name, "task": task.name, "horizon": task.horizon, "policy": policy_kind,
        "online": True, "env_steps": config.steps_run, "seeds": seeds,
        "final_return_mean": float(final.mean()),
        "final_return_ci95": float(1.96 * final.std(ddof=1) / np.sqrt(seeds)) if seeds > 1 else 0.0,
        "best_return_mean": float(best.returns.mean()),
    }
    from awmctl.cli.optimize_policy import _plot

    leaves = store.save_arrays(run.work, {"final": state.policy, "best": best.params})
    _plot([{"step": r["step"], "eval/eval_return": r["eval/eval_return"]} for r in records],
          run.work / "learning_curve.png", f"Online BPO with {model_name} on {task.name} (H={task.horizon})",
          xlabel="environment step")
    # The final world model of the first seed, as a model directory of its own.
    model_dir = run.work / "model"
    model_dir.mkdir(exist_ok=True)
    first_model = eqx.combine(jax.tree_util.tree_map(lambda x: x[0], state.model), eqx.partition(template_model, eqx.is_inexact_array)[1])
    model_leaves = store.save_arrays(model_dir, eqx.filter(first_model, eqx.is_array))
    store.write_json_atomic(model_dir / store.META_FILE, store.base_meta(
        MODEL_KIND, task=task.describe(), model=model_record(first_model, task.horizon), seed=int(seed_list[0]),
        online=config.__dict__, leaves=model_leaves))
    run.finish(store.base_meta(
        POLICY_KIND, task=task.describe(),
        policy={"kind": policy_kind, "obs_size": task.obs_size, "action_size": task.action_size,
                "horizon": task.horizon, "hyper": template_policy.hyperparameters(), "seeds": seeds},
        model={"name": model_name, "online": True}, online=config.__dict__, seed=seed, seeds=seed_list.tolist(),
        summary=summary, leaves=leaves))
    err_console.print(summary_table(f"Online BPO -> {out}", summary))
    return summary
