"""Output paths and failures of the CLI layer: one line naming the path, the documented status."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from sgde.cli.common import (
    EXIT_FAILURE,
    EXIT_INTERNAL,
    EXIT_USAGE,
    OutputFile,
    check_output_dir,
    check_output_file,
    run_cli,
)
from sgde.errors import UsageError

HAS_DEV_FULL = Path("/dev/full").exists()


def test_output_file_checks(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("x", encoding="utf-8")
    check_output_file(tmp_path / "new.jsonl", option="--trace")  # fresh path: fine
    check_output_file(plan, option="--out")  # an existing file is replaced: fine
    check_output_file(None, option="--trace")
    cases = {
        tmp_path: "it is a directory",
        tmp_path / "no" / "t.jsonl": "directory '" + str(tmp_path / "no") + "' does not exist",
        plan / "t.jsonl": "is not a directory",
    }
    if HAS_DEV_FULL:
        cases[Path("/dev/full")] = "it is a character device"
    for path, reason in cases.items():
        with pytest.raises(UsageError) as info:
            check_output_file(path, option="--trace")
        assert str(info.value).splitlines()[0] == f"cannot write --trace {path}: " + (
            reason if reason.startswith(("it ", "directory")) else f"'{plan}' {reason}"
        )


def test_output_file_may_not_be_an_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("x", encoding="utf-8")
    (tmp_path / "link.yaml").symlink_to(plan)
    monkeypatch.chdir(tmp_path)
    for same in (Path("plan.yaml"), tmp_path / "link.yaml", tmp_path / "." / "plan.yaml"):
        with pytest.raises(UsageError, match="it is an input of this command"):
            check_output_file(same, option="--trace", inputs=[None, plan])


def test_permission_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "access", lambda *a, **k: False)  # as an unprivileged user would
    existing = tmp_path / "a.jsonl"
    existing.write_text("", encoding="utf-8")
    with pytest.raises(UsageError, match=r"cannot write --out .*a\.jsonl: permission denied"):
        check_output_file(existing, option="--out")
    with pytest.raises(UsageError, match="permission denied in"):
        check_output_file(tmp_path / "b.jsonl", option="--out")
    with pytest.raises(UsageError, match="permission denied in"):
        check_output_dir(tmp_path / "new" / "dir", option="--report")


def test_output_dir_checks(tmp_path: Path) -> None:
    check_output_dir(tmp_path / "a" / "b" / "c", option="--report")  # created later: fine
    check_output_dir(tmp_path, option="--report")
    regular = tmp_path / "f"
    regular.write_text("x", encoding="utf-8")
    with pytest.raises(UsageError, match=r"cannot write --out .*/f: it is a file, not a directory"):
        check_output_dir(regular, option="--out")
    with pytest.raises(UsageError, match=r"'.*/f' is a file, not a directory"):
        check_output_dir(regular / "below", option="--out")
    if HAS_DEV_FULL:
        with pytest.raises(UsageError, match="it is a character device, not a directory"):
            check_output_dir(Path("/dev/full"), option="--out")


@pytest.mark.skipif(not HAS_DEV_FULL, reason="/dev/full is Linux-only")
def test_output_file_names_the_path_when_a_write_fails() -> None:
    with pytest.raises(UsageError) as info, OutputFile(Path("/dev/full"), option="--trace") as fh:
        fh.write("x" * 10)
        fh.flush()
    assert str(info.value).startswith("cannot write --trace /dev/full: No space left on device")


def _app(fail: BaseException) -> typer.Typer:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @app.command()
    def boom() -> None:
        """Raise the exception under test."""
        raise fail

    @app.command()
    def other() -> None:
        """A second command, so that the app is a group."""

    return app


@pytest.mark.parametrize(
    ("exc", "status", "line"),
    [
        (UsageError("bad"), EXIT_USAGE, "error: bad"),
        (OSError(28, "No space left on device", "/data/x"), EXIT_FAILURE, "error: /data/x: No"),
        (KeyError("k"), EXIT_INTERNAL, "error: internal error: KeyError: 'k'"),
        (RecursionError("deep"), EXIT_INTERNAL, "error: internal error: RecursionError: deep"),
    ],
)
def test_run_cli_turns_every_exception_into_one_line(
    exc: BaseException,
    status: int,
    line: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SGDE_DEBUG", raising=False)
    assert run_cli(_app(exc), ["boom"]) == status
    err = capsys.readouterr().err
    assert err.startswith(line) and "Traceback" not in err
    monkeypatch.setenv("SGDE_DEBUG", "1")
    with pytest.raises(type(exc)):
        run_cli(_app(exc), ["boom"])


@pytest.mark.parametrize("command", ["run", "eval"])
def test_trace_may_not_overwrite_the_plan_or_the_dataset(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sgde.cli.app import app

    root = Path(__file__).resolve().parents[2]
    plan = tmp_path / "plan.yaml"
    plan.write_text((root / "examples" / "arithmetic.yaml").read_text(encoding="utf-8"))
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"unit_price": 1, "quantity": 2, "tax_rate": 0, "total": 2}\n')
    before = (plan.read_bytes(), rows.read_bytes())
    for target in (plan, rows):
        code = run_cli(app, [command, str(plan), "--dataset", str(rows), "--trace", str(target)])
        err = capsys.readouterr().err
        assert code == EXIT_USAGE, err
        assert f"cannot write --trace {target}: it is an input of this command" in err
    assert (plan.read_bytes(), rows.read_bytes()) == before


def test_the_cli_helpers_stay_light_to_import() -> None:
    code = (
        "import sys, sgde.cli.common\n"
        "print(sorted(m for m in sys.modules if 'sgde.' in m or m.startswith('rich.progress')))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    loaded = run.stdout
    assert "sgde.plan" not in loaded and "sgde.runtime" not in loaded, loaded  # sgde --help
    assert "rich.progress" not in loaded, loaded  # only commands that draw a progress bar
