"""The README holds exactly two set-up commands; CI runs the second (the tests)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _setup_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- setup-commands -->", 2)[1]
    return re.findall(r"^\$ (.+)$", block, flags=re.M)


def test_readme_has_exactly_two_setup_commands() -> None:
    commands = _setup_commands()
    assert len(commands) == 2, commands
    assert "sgde demo" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_cmd = _setup_commands()[1]
    pytest_part = test_cmd[test_cmd.index("python -m pytest") :]
    install_part = re.search(r'pip install (-q )?(-e "\.\[[^\]]+\]")', test_cmd)
    assert install_part, test_cmd
    assert install_part.group(2) in ci
    assert pytest_part.split()[:3] == ["python", "-m", "pytest"]
    assert "python -m pytest" in ci
