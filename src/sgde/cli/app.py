"""The ``sgde`` command line: one typer app; each command group lives in its own module."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from sgde.cli.common import out_console, run_cli
from sgde.cli.lazy import LazyGroup

__all__ = ["app", "main"]

app = typer.Typer(
    name="sgde",
    help="Semantic Gradient Descent: compile reliable execution plans for small language models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Command modules are imported when a command runs, not for `sgde --help` (see cli.lazy).
    cls=LazyGroup,
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


def main() -> None:
    """Console-script entry point: run the app, turning sgde errors into clean messages."""
    sys.exit(run_cli(app))
