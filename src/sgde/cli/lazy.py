"""Commands loaded on first use, so ``sgde --help`` does not import the whole library.

Every command module imports what its commands need (pydantic plan models, the executor, the
compiler, the model backends, ...); importing all of them costs more than a second on a small
machine. The root group below knows each command's name, module and one-line help, and
imports a module only when one of its commands is run (or asked for ``--help``). The
top-level help lists the commands from the table without importing anything.

``tests/unit/test_cli_lazy.py`` checks that the table matches the real commands (names and
first help lines), so a renamed command or a changed docstring cannot go unnoticed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

__all__ = ["COMMANDS", "LazyCommand", "LazyGroup"]


@dataclass(frozen=True)
class LazyCommand:
    """A command (or command group) of the root ``sgde`` group.

    Attributes:
        name: The command name.
        module: The ``sgde.cli`` module whose ``register(app)`` adds it.
        help: The first paragraph of its help (shown by ``sgde --help``).
    """

    name: str
    module: str
    help: str


COMMANDS: tuple[LazyCommand, ...] = (
    LazyCommand(
        "validate",
        "plan_cmds",
        'Check plan files; print "ok: NAME (N nodes) sha256:…" or one line per problem.',
    ),
    LazyCommand(
        "show",
        "plan_cmds",
        "Show a plan: inputs, nodes in execution order, outputs, content hash, metadata.",
    ),
    LazyCommand(
        "diff",
        "plan_cmds",
        "Show node-level changes from plan A to plan B (prompts and code as unified diffs).",
    ),
    LazyCommand(
        "schema", "plan_cmds", "Print the JSON Schema (draft 2020-12) of the plan file format."
    ),
    LazyCommand(
        "run",
        "run_cmd",
        "Run a plan and print its outputs as JSON (one line per row for --dataset).",
    ),
    LazyCommand("models", "models_cmd", "List, prepare and manage models."),
    LazyCommand(
        "peers",
        "peers_cmd",
        "Prepare and list the peer optimisers (DSPy GEPA/MIPROv2, TextGrad) and their venvs.",
    ),
    LazyCommand(
        "compile",
        "compile_cmd",
        "Compile a plan (or a task) with SGDe: the teacher edits, the student runs.",
    ),
    LazyCommand(
        "bound",
        "compile_cmd",
        "PAC sample complexity (realisable): m ≥ (ln|H| + ln(1/δ)) / ε, and the Occam form.",
    ),
    LazyCommand(
        "eval",
        "eval_cmds",
        "Evaluate a plan on a labelled dataset: accuracy (Wilson 95 %), tokens, latency, failures.",
    ),
    LazyCommand(
        "bench",
        "eval_cmds",
        "Run a grid of templates × m × methods × seeds; write results.json and an HTML report.",
    ),
    LazyCommand(
        "demo",
        "eval_cmds",
        "Offline end-to-end demo: baselines vs an SGDe-compiled plan on adversarial GSM-Hard "
        "items.",
    ),
    LazyCommand(
        "synth",
        "data_cmds",
        "Synthesise an adversarial set from a GSM-Hard template, or rows of a task family; "
        "labels come from code.",
    ),
    LazyCommand("data", "data_cmds", "Inspect the vendored GSM-Hard data and its templates."),
    LazyCommand(
        "serve",
        "serve_cmd",
        "Serve plans over HTTP: versions, A/B weights, rollback, metrics, traces, a request log.",
    ),
    LazyCommand("log", "serve_cmd", "The production request log: list, label, export."),
    LazyCommand(
        "recompile",
        "serve_cmd",
        "Compile a new version from the log's labelled rows; report old vs new accuracy on them.",
    ),
)


# Typer >= 0.24 vendors click (``typer._click``), older versions use the ``click`` package: the
# command and context types below are spelled ``Any`` so that both work.


def load_module_commands(module: str) -> dict[str, Any]:
    """Import ``sgde.cli.<module>`` and return the click commands its ``register`` adds."""
    mod = importlib.import_module(f"sgde.cli.{module}")
    register: Callable[[typer.Typer], None] = mod.register
    holder = typer.Typer()
    register(holder)
    return dict(typer.main.get_group(holder).commands)


class LazyGroup(TyperGroup):
    """The root group: lists :data:`COMMANDS` from the table, imports a module on first use."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lazy = {c.name: c for c in COMMANDS}
        self._listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        eager = [name for name in super().list_commands(ctx) if name not in self._lazy]
        return [*self._lazy, *eager]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in self.commands or cmd_name not in self._lazy:
            return super().get_command(ctx, cmd_name)
        entry = self._lazy[cmd_name]
        if self._listing:
            # Only the name and the first help line are needed to list it.
            return TyperCommand(cmd_name, help=entry.help)
        for name, command in load_module_commands(entry.module).items():
            self.commands.setdefault(name, command)
        return self.commands.get(cmd_name)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False
