"""The ``sgde`` command line: one typer app; each command group lives in its own module."""

from __future__ import annotations

import os
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
    sandbox: Annotated[
        str | None,
        typer.Option(
            "--sandbox",
            metavar="strong|weak",
            help="Isolation of teacher-written code: 'strong' (default: OS isolation; sgde "
            "refuses to run code where it is unavailable) or 'weak' (Python-level checks "
            "only, an explicit opt-in; see docs/sandbox.md). Same as SGDE_SANDBOX.",
        ),
    ] = None,
) -> None:
    """Semantic Gradient Descent: compile reliable execution plans for small language models.

    Exit status: 0 success, 1 failure (invalid plan, failed run), 2 usage error (bad
    option, unreadable input, unwritable output), 70 internal error, 130 interrupted.
    """
    if sandbox is not None:
        if sandbox.strip().lower() not in ("strong", "weak"):
            raise typer.BadParameter("use 'strong' or 'weak'", param_hint="--sandbox")
        os.environ["SGDE_SANDBOX"] = sandbox.strip().lower()  # read by every SandboxPool


def main() -> None:
    """Console-script entry point: run the app, turning sgde errors into clean messages."""
    sys.exit(run_cli(app))
