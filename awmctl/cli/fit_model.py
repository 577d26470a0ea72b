"""``awmctl fit-model``: fit a world model to a dataset (resumable), keep the best checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import jax
import typer

from awmctl import data, fit, plots, store
from awmctl.cli.common import (
    JsonOpt,
    OutOpt,
    OverwriteOpt,
    SeedOpt,
    emit_json,
    err_console,
    handle_errors,
    progress_bar,
    summary_table,
)
from awmctl.errors import BadInputError
from awmctl.models import MODELS, build_model, check_model_name, fit_normalizers
from awmctl.models.io import MODEL_KIND, model_record, save_model_arrays

ModelHelp = "World model: " + ", ".join(n for n in MODELS if n != "simulator") + "."


@handle_errors
def fit_model_command(
    data_dir: Annotated[Path, typer.Option("--data", help="Dataset directory written by `awmctl collect`.")],
    model: Annotated[str, typer.Option("--model", help=ModelHelp)],
    out: OutOpt,
    steps: Annotated[int, typer.Option("--steps", help="Optimiser steps.")] = 2000,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Whole episodes per step.")] = 64,
    lr: Annotated[float, typer.Option("--lr", help="Adam learning rate.")] = 1e-3,
    val_fraction: Annotated[float, typer.Option("--val-fraction", help="Episodes held out for validation.")] = 0.1,
    log_every: Annotated[int, typer.Option("--log-every", help="Steps between validation, logging and checkpoints.")] = 50,
    context: Annotated[
        int | None,
        typer.Option("--context", help="Longest horizon the model will be used for (sequence models; default: the data's)."),
    ] = None,
    width: Annotated[int | None, typer.Option("--width", help="Hidden width (default: the paper's).")] = None,
    layers: Annotated[int | None, typer.Option("--layers", help="Transformer layers (default 2).")] = None,
    heads: Annotated[int | None, typer.Option("--heads", help="Attention heads (default 3).")] = None,
    mlp_width: Annotated[int | None, typer.Option("--mlp-width", help="Transformer MLP width (default 192).")] = None,
    dropout: Annotated[float | None, typer.Option("--dropout", help="Transformer dropout while training (default 0).")] = None,
    seed: SeedOpt = 0,
    overwrite: OverwriteOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Fit a world model with Adam on the normalised-state MSE over whole episodes.

    Holds out validation episodes, checkpoints the training state every --log-every steps
    (rerun the same command to resume after a kill) and keeps the model with the lowest
    validation loss. Writes meta.json, metrics.jsonl and loss.png.
    """
    check_model_name(model)
    if model == "simulator":
        raise BadInputError("the simulator has nothing to fit; pass --model simulator to optimize-policy or grad-norm directly")
    config = fit.FitConfig(steps, batch_size, lr, val_fraction, log_every, seed)
    config.check()
    episodes, data_meta = data.load_dataset(data_dir)
    task = data.task_from_meta(data_meta)
    horizon = task.horizon
    context = horizon if context is None else context
    if context < horizon:
        raise BadInputError(
            f"--context {context} is shorter than the data's horizon {horizon}; a model's context must cover its episodes"
        )
    hyper = {k: v for k, v in dict(width=width, layers=layers, heads=heads, mlp_width=mlp_width, dropout=dropout).items() if v is not None}
    unknown = [] if model.endswith("transformer") else sorted(set(hyper) - {"width"})
    if unknown:
        raise BadInputError(f"{model} has no {', '.join('--' + u.replace('_', '-') for u in unknown)} option (transformers only)")

    key_model, key_split = jax.random.split(jax.random.key(seed))
    net = build_model(model, task.state_size, task.action_size, context, hyper, key=key_model)
    train, val = data.split(episodes, val_fraction, key_split)
    if val.observations.shape[0] == 0:
        val = train  # --val-fraction 0: "validation" is the training set, said in meta
    net = fit_normalizers(net, train.observations)
    record = model_record(net, horizon, context)

    run_config: dict[str, Any] = {
        "data": str(Path(data_dir).absolute()),
        "model": record,
        "fit": config.__dict__,
    }
    run = store.ResumableRun(out, MODEL_KIND, run_config, overwrite)
    fitter = fit.Fitter(net, train, val, config)
    state = fitter.init()
    restored = run.restore_latest(state)
    if restored is not None:
        state, step = restored
        err_console.print(f"Resuming from step {step} in {run.work}")

    try:
        with progress_bar(f"fit {model} on {task.name}", steps) as update:
            update(int(state.step))
            while not fitter.done(state):
                state, metrics = fitter.run_chunk(state)
                run.log(metrics)
                run.save(int(state.step), state)
                update(int(state.step), f"train {metrics['train/loss']:.3g}  val {metrics['val/loss']:.3g}")
    finally:
        run.close()  # on an interruption too: checkpoints in flight are completed, not lost

    best = fitter.model(state.best_params)
    summary = {"out": str(out), "model": model, "task": task.name, "horizon": horizon, "steps": steps,
               "parameters": record["parameters"], **fitter.summary(state)}
    leaves = save_model_arrays(run.work, best)
    plots.learning_curves(run.metrics(), ["train/loss", "val/loss", "val/rollout_mse"], run.work / "loss.png",
                          f"{model} on {task.name} (H={horizon})")
    meta = store.base_meta(
        MODEL_KIND,
        task=task.describe(),
        model=record,
        data={"path": str(Path(data_dir).absolute()), "episodes": int(episodes.observations.shape[0]),
              "train": int(train.observations.shape[0]), "val": int(val.observations.shape[0]),
              "validation_is_training_set": val_fraction == 0},
        fit=config.__dict__,
        seed=seed,
        summary=summary,
        leaves=leaves,
    )
    run.finish(meta)
    err_console.print(summary_table(f"Fitted {model} -> {out}", summary))
    if json_out:
        emit_json(summary)
