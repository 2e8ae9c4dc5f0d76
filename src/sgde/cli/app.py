"""The ``sgde`` command line: one typer app; each command group lives in its own module."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from sgde.cli import compile_cmd, data_cmds, eval_cmds, models_cmd, plan_cmds, run_cmd
from sgde.cli.common import out_console, run_cli

__all__ = ["app", "main"]

app = typer.Typer(
    name="sgde",
    help="Semantic Gradient Descent: compile reliable execution plans for small language models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _show_version(value: bool) -> None:
    if value:
        from sgde._version import __version__

        out_console.print(f"sgde {__version__}", highlight=False, markup=False)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the sgde version and exit.",
            callback=_show_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """Semantic Gradient Descent: compile reliable execution plans for small language models.

    Exit status: 0 success, 1 failure (invalid plan, failed run), 2 usage error (bad
    option, unreadable input, unwritable output), 70 internal error, 130 interrupted.
    """


plan_cmds.register(app)
run_cmd.register(app)
models_cmd.register(app)
compile_cmd.register(app)
eval_cmds.register(app)
data_cmds.register(app)


def main() -> None:
    """Console-script entry point: run the app, turning sgde errors into clean messages."""
    sys.exit(run_cli(app))
