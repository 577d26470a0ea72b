"""``awmctl fit-model``: fit a world model to a dataset (resumable), keep the best checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from awmctl import artifacts
from awmctl.algorithms import FitConfig, ModelFit, seed_keys, split_episodes
from awmctl.cli.common import (
    AllowTaskChangeOpt,
    EnsembleOpt,
    JsonOpt,
    OutOpt,
    OverwriteOpt,
    SeedOpt,
    WandbOpt,
    check_input_tasks,
    complete_model,
    emit_json,
    err_console,
    handle_errors,
    summary_table,
)
from awmctl.cli.config_file import ConfigOpt
from awmctl.cli.driver import open_run, train
from awmctl.cli.reruns import idempotent
from awmctl.errors import BadInputError
from awmctl.models import MODEL_SPECS, TRAINABLE, ModelSpec, model_spec
from awmctl.tasks import Episode, Task
from awmctl.trees import seed_slice

ModelHelp = "World model: " + ", ".join(TRAINABLE) + "."
D = FitConfig  # the defaults


@handle_errors
@idempotent
def fit_model_command(
    data_dir: Annotated[
        Path, typer.Option("--data", help="Dataset directory written by `awmctl collect`.")
    ],
    model: Annotated[str, typer.Option("--model", help=ModelHelp, autocompletion=complete_model)],
    out: OutOpt,
    steps: Annotated[int, typer.Option("--steps", help="Optimiser steps.")] = D.steps,
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="Whole episodes per step.")
    ] = D.batch_size,
    lr: Annotated[float, typer.Option("--lr", help="Adam learning rate.")] = D.lr,
    val_fraction: Annotated[
        float, typer.Option("--val-fraction", help="Episodes held out for validation.")
    ] = D.val_fraction,
    log_every: Annotated[
        int, typer.Option("--log-every", help="Steps between validation, logging and checkpoints.")
    ] = D.log_every,
    context: Annotated[
        int | None,
        typer.Option(
            "--context",
            help=(
                "Longest horizon the model will be used for (sequence models; default: the data's)."
            ),
        ),
    ] = None,
    width: Annotated[
        int | None, typer.Option("--width", help="Hidden width (default: the paper's).")
    ] = None,
    layers: Annotated[
        int | None,
        typer.Option("--layers", help="Transformer or state-space layers (default 2)."),
    ] = None,
    heads: Annotated[
        int | None, typer.Option("--heads", help="Attention heads (default 3).")
    ] = None,
    mlp_width: Annotated[
        int | None, typer.Option("--mlp-width", help="Transformer MLP width (default 192).")
    ] = None,
    dropout: Annotated[
        float | None,
        typer.Option("--dropout", help="Transformer dropout while training (default 0)."),
    ] = None,
    state_width: Annotated[
        int | None,
        typer.Option(
            "--state-width",
            help="State-space models: complex state channels per layer (default 96).",
        ),
    ] = None,
    ensemble: EnsembleOpt = D.ensemble,
    seed: SeedOpt = 0,
    overwrite: OverwriteOpt = False,
    wandb: WandbOpt = None,
    json_out: JsonOpt = False,
    config_file: ConfigOpt = None,
    allow_task_change: AllowTaskChangeOpt = False,
) -> None:
    """Fit a world model with Adam on the normalised-state MSE over whole episodes.

    Holds out validation episodes, checkpoints the training state after a --log-every chunk of
    steps once AWMCTL_CHECKPOINT_SECONDS (default 60) have passed since the last checkpoint
    (rerun the same command to resume after a kill) and keeps the model with the lowest
    validation loss. With --ensemble K, K models of the kind are fitted together (each from its
    own initialisation, on its own order of the episodes) into one model directory, which every
    command takes; their disagreement is logged (val/disagreement). Writes meta.json,
    metrics.jsonl and loss.png.
    """
    check_input_tasks([data_dir], allow_task_change)
    spec = model_spec(model)
    if not spec.trainable:
        raise BadInputError(
            f"{model} has nothing to fit; pass --model {model} to optimize-policy or grad-norm "
            "directly"
        )
    config = FitConfig(steps, batch_size, lr, val_fraction, log_every, ensemble)
    config.check()
    episodes, data_meta = artifacts.load_dataset(data_dir)
    task = artifacts.task_from_meta(data_meta)
    context = task.horizon if context is None else context
    if context < task.horizon:
        raise BadInputError(
            f"--context {context} is shorter than the data's horizon {task.horizon}; a model's "
            "context must cover its episodes"
        )
    hyper = _sizes(
        spec,
        width=width,
        layers=layers,
        heads=heads,
        mlp_width=mlp_width,
        dropout=dropout,
        state_width=state_width,
    )
    if wandb:
        artifacts.check_wandb_available()

    summary = _fit(
        spec, hyper, context, episodes, task, config, data_dir, seed, out, overwrite, wandb
    )
    err_console.print(summary_table(f"Fitted {model} -> {out}", summary))
    if json_out:
        emit_json(summary)


def _sizes(spec: ModelSpec, **sizes: Any) -> dict[str, Any]:
    """The size options given (not None), refused in one line (exit 2) before anything is
    written when the model has no such option (naming the models that do) or cannot be built
    with them."""
    hyper = {k: v for k, v in sizes.items() if v is not None}
    unknown = sorted(set(hyper) - set(spec.hyper))
    if unknown:
        having = [s for s in MODEL_SPECS.values() if set(unknown) <= set(s.hyper)]
        kinds = "/".join(sorted({f"{s.backbone}s" for s in having if s.backbone}))
        raise BadInputError(
            f"{spec.name} has no {', '.join('--' + u.replace('_', '-') for u in unknown)} option "
            f"({kinds} only: {', '.join(s.name for s in having)})"
        )
    spec.check_sizes(hyper)
    return hyper


def _fit(
    spec: ModelSpec,
    hyper: dict[str, Any],
    context: int,
    episodes: Episode,
    task: Task,
    config: FitConfig,
    data_dir: Path,
    seed: int,
    out: Path,
    overwrite: bool,
    wandb: str | None,
) -> dict[str, Any]:
    """Fit the model (or resume its fit), keep its best checkpoint as a model directory; the
    summary."""
    train_set, val = split_episodes(episodes, config.val_fraction, seed_keys(seed)[1])
    if val.observations.shape[0] == 0:
        val = train_set  # --val-fraction 0: "validation" is the training set, said in meta
    algorithm = ModelFit(spec, hyper, context, train_set, val, config)
    record = artifacts.model_record(algorithm.template, task.horizon, context)
    run = open_run(
        out,
        artifacts.MODEL_KIND,
        {
            "data": str(Path(data_dir).absolute()),
            "model": record,
            "fit": config.__dict__,
            "seed": seed,
        },
        overwrite,
    )
    outcome = train(
        algorithm,
        run,
        [seed],
        f"fit {spec.name} on {task.name}",
        f"{spec.name} on {task.name} (H={task.horizon})",
        per_seed=False,
        wandb_project=wandb,
    )

    best = seed_slice(outcome.best.params, 0)
    summary: dict[str, Any] = {
        "out": str(out),
        "model": spec.name,
        "task": task.name,
        "horizon": task.horizon,
        "steps": config.steps,
        "parameters": record["parameters"],
        "best_step": int(outcome.best.steps[0]),
        **algorithm.summary(best),
        **outcome.time.as_dict(),
    }
    meta = artifacts.save_model(
        outcome.work,
        algorithm.model(best),
        task,
        context,
        data={
            "path": str(Path(data_dir).absolute()),
            "episodes": int(episodes.observations.shape[0]),
            "train": int(train_set.observations.shape[0]),
            "val": int(val.observations.shape[0]),
            "validation_is_training_set": config.val_fraction == 0,
        },
        fit=config.__dict__,
        seed=seed,
        summary=summary,
    )
    run.finish(meta)
    return summary
