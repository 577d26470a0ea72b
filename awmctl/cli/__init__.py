"""The ``awmctl`` command line: one module per subcommand, composed here."""

from __future__ import annotations

from typing import Annotated

import typer

from awmctl import __version__
from awmctl.cli import (
    collect,
    fit_model,
    grad_norm,
    landscape,
    optimize_policy,
    references,
    show,
    tasks,
)
from awmctl.cli.common import configure_jax, err_console, install_process_handlers, reflowed
from awmctl.errors import AwmctlError

app = typer.Typer(
    name="awmctl",
    help=(
        "Policy learning by backpropagation through world models: collect data from a "
        "differentiable task, fit a world model (Markovian, actions world model, history world "
        "model, or the simulator itself), and optimise a policy through it."
    ),
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool | None) -> None:
    if value:
        typer.echo(f"awmctl {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool | None,
        typer.Option(
            "--version",
            metavar="",
            callback=_version,
            is_eager=True,
            help="Show the version and exit.",
        ),
    ] = False,
) -> None:
    """Policy learning by backpropagation through world models."""
    try:
        configure_jax()
    except AwmctlError as err:
        err_console.print(f"[bold red]Error:[/] {err}", highlight=False, soft_wrap=True)
        raise typer.Exit(err.exit_code) from None
    install_process_handlers()


app.command("tasks")(reflowed(tasks.tasks_command))
app.command("collect")(reflowed(collect.collect_command))
app.command("fit-model")(reflowed(fit_model.fit_model_command))
app.command("optimize-policy")(reflowed(optimize_policy.optimize_policy_command))
app.command("landscape")(reflowed(landscape.landscape_command))
app.command("grad-norm")(reflowed(grad_norm.grad_norm_command))
app.command("references")(reflowed(references.references_command))
app.command("show")(reflowed(show.show_command))
