"""The ``sgde`` root group loads command modules on first use (fast ``sgde --help``)."""

from __future__ import annotations

import json
import subprocess
import sys
from itertools import groupby

import pytest
import typer
from typer.testing import CliRunner

from sgde.cli.app import app
from sgde.cli.lazy import COMMANDS, load_module_commands

HEAVY = ("numpy", "scipy", "matplotlib", "openai", "anthropic", "llama_cpp")


def _first_paragraph(text: str | None) -> str:
    return " ".join((text or "").split("\n\n")[0].split())


def _modules_after(code: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport json, sys; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "module", sorted({c.module for c in COMMANDS}), ids=lambda m: f"sgde.cli.{m}"
)
def test_table_matches_the_real_commands(module: str) -> None:
    real = load_module_commands(module)
    table = {c.name: c.help for c in COMMANDS if c.module == module}
    assert sorted(real) == sorted(table), (
        f"sgde.cli.{module} registers {sorted(real)}: update COMMANDS in sgde/cli/lazy.py"
    )
    for name, command in real.items():
        assert _first_paragraph(command.help) == _first_paragraph(table[name]), (
            f"the help of `sgde {name}` changed: update its line in COMMANDS (sgde/cli/lazy.py)"
        )


def test_table_keeps_each_module_together() -> None:
    modules = [module for module, _ in groupby(c.module for c in COMMANDS)]
    assert len(modules) == len(set(modules))


def test_importing_the_app_imports_no_heavy_dependency() -> None:
    loaded = _modules_after("import sgde.cli.app")
    heavy = [m for m in loaded if m.split(".")[0] in HEAVY]
    assert heavy == [], f"import sgde.cli.app imports {heavy}"


def test_help_lists_every_command_without_importing_command_modules() -> None:
    code = (
        "import sys\nfrom sgde.cli.common import run_cli\nfrom sgde.cli.app import app\n"
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n    run_cli(app, ['--help'])"
    )
    loaded = _modules_after(code)
    commands = [m for m in loaded if m.startswith("sgde.cli.") and m.endswith(("_cmd", "_cmds"))]
    assert commands == []
    assert not [m for m in loaded if m.split(".")[0] in HEAVY]
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command.name in result.output


def test_a_lazy_command_runs_and_shows_its_own_help() -> None:
    result = CliRunner().invoke(app, ["bound", "--help"])
    assert result.exit_code == 0 and "--delta" in result.output
    result = CliRunner().invoke(app, ["models", "--help"])
    assert result.exit_code == 0 and "list" in result.output
    result = CliRunner().invoke(app, ["no-such-command"])
    assert result.exit_code != 0


def test_every_listed_command_resolves() -> None:
    group = typer.main.get_command(app)
    ctx = typer.Context(group)
    for name in group.list_commands(ctx):
        assert group.get_command(ctx, name) is not None, name
