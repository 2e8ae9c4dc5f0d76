"""Terminal safety: text sgde did not write (plan fields, data, model output, exception text
from sandboxed code) reaches the terminal with its control characters escaped.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from rich.text import Text

from sgde.cli import run_cmd
from sgde.cli.app import app
from sgde.cli.common import run_cli
from sgde.cli.output import SafeConsole, clean_text, dumps_json
from sgde.testing import InProcessCodeRunner

# ESC sequences (colour, OSC window title, cursor up + erase line), CR, BEL, a C1 CSI, DEL and
# a right-to-left override: what hostile text uses to rewrite what the terminal shows.
HOSTILE = "a\x1b[31mred\x1b]0;pwned\x07\x1b[1A\x1b[2K\rb\x9b2Jc\x7fd\u202eevil\u2066x"
# Any raw control character except newline and tab, and the bidi controls.
RAW_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def test_clean_text_escapes_controls_and_keeps_text() -> None:
    cleaned = clean_text(HOSTILE + "\nnext\tcol é 漢")
    assert not RAW_CONTROL.search(cleaned)
    assert "\\x1b[31mred" in cleaned and "\\r" in cleaned and "\\a" in cleaned
    assert "\\x9b" in cleaned and "\\x7f" in cleaned and "\\u202e" in cleaned
    assert cleaned.endswith("\nnext\tcol é 漢")
    assert clean_text(cleaned) == cleaned  # idempotent: printing twice changes nothing


def test_dumps_json_is_the_same_value_without_raw_controls() -> None:
    value = {"name": HOSTILE, "n": 1, "é": "漢"}
    text = dumps_json(value)
    assert not RAW_CONTROL.search(text)
    assert json.loads(text) == value
    assert "漢" in text  # readable non-ASCII stays as is


def _render(*objects: object, terminal: bool) -> str:
    buffer = io.StringIO()
    console = SafeConsole(file=buffer, force_terminal=terminal, width=200, color_system="standard")
    for obj in objects:
        console.print(obj, highlight=False)
    return buffer.getvalue()


@pytest.mark.parametrize("terminal", [False, True])
def test_safe_console_escapes_user_text_but_keeps_its_own_styles(terminal: bool) -> None:
    out = _render(
        f"[bold]plan[/] {HOSTILE}",
        Text(HOSTILE, style="green"),
        HOSTILE,
        terminal=terminal,
    )
    user_sequences = ["\x1b[31m", "\x1b]0;", "\x1b[1A", "\x1b[2K", "\r", "\x07", "\x9b", "\u202e"]
    assert not [s for s in user_sequences if s in out]
    assert out.count("\\x1b[31mred") == 3
    if terminal:  # rich's own styling is still emitted
        assert "\x1b[1m" in out


def _write_plan(tmp_path: Path) -> Path:
    plan = tmp_path / "evil.yaml"
    plan.write_text(
        "schema_version: 1\n"
        'name: "evil\\e]0;pwned\\a\\e[2J\\u202e"\n'
        'description: "desc \\e[31m red"\n'
        "inputs: {x: number}\n"
        "outputs: {y: boom.y}\n"
        "nodes:\n"
        "  - id: boom\n"
        "    kind: code\n"
        "    inputs: {x: input.x}\n"
        "    code: |\n"
        "      def run(x):\n"
        '          raise ValueError("\\x1b]0;hijacked\\x07\\x1b[2J\\r\\u202e")\n',
        encoding="utf-8",
    )
    return plan


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run_cli(app, args)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.mark.parametrize(
    "args",
    [["validate", "{plan}"], ["show", "{plan}"], ["show", "{plan}", "--mermaid"]],
    ids=lambda a: " ".join(a[0::2]),
)
def test_plan_fields_are_printed_escaped(
    args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = _write_plan(tmp_path)
    code, out, err = _cli([a.format(plan=plan) for a in args], capsys)
    assert code == 0, err
    assert not RAW_CONTROL.search(out + err), repr(out + err)
    if "--mermaid" not in args:
        assert "evil\\x1b]0;pwned\\a" in out


async def _in_process_sandbox() -> AsyncIterator[InProcessCodeRunner]:
    yield InProcessCodeRunner()


def test_exception_text_from_sandboxed_code_is_printed_escaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        run_cmd, "_open_sandbox", contextlib.asynccontextmanager(_in_process_sandbox)
    )
    plan = _write_plan(tmp_path)
    code, out, err = _cli(["run", str(plan), "-i", "x=1"], capsys)
    assert code == 1
    assert not RAW_CONTROL.search(out + err), repr(out + err)
    assert "ValueError" in err and "\\x1b]0;hijacked" in err
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"x": 1}\n', encoding="utf-8")
    code, out, err = _cli(["run", str(plan), "--dataset", str(rows)], capsys)
    assert code == 1 and not RAW_CONTROL.search(out + err)
    assert "hijacked" in json.loads(out)["error"]  # the JSON value itself is intact


def test_errors_naming_hostile_paths_are_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _cli(["validate", str(tmp_path / "x\x1b[2J[bold]y.yaml")], capsys)
    assert code == 2 and not RAW_CONTROL.search(err)
    assert "x\\x1b[2J[bold]y.yaml" in err  # and the markup-looking part is printed literally
