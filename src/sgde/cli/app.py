"""The ``sgde`` command line: one typer app; each command group lives in its own module."""

from __future__ import annotations

import sys

import typer

from sgde.cli import compile_cmd, data_cmds, eval_cmds, models_cmd, plan_cmds, run_cmd
from sgde.cli.common import run_cli

__all__ = ["app", "main"]

app = typer.Typer(
    name="sgde",
    help="Semantic Gradient Descent: compile reliable execution plans for small language models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

plan_cmds.register(app)
run_cmd.register(app)
models_cmd.register(app)
compile_cmd.register(app)
eval_cmds.register(app)
data_cmds.register(app)


def main() -> None:
    """Console-script entry point: run the app, turning sgde errors into clean messages."""
    sys.exit(run_cli(app))
