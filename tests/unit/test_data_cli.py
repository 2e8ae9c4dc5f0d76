"""`sgde synth` and `sgde data coverage` through the CLI runner."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from sgde.cli import data_cmds
from sgde.errors import UsageError
from sgde.evaluation.tasks import family_names
from sgde.runtime.jsonl import read_jsonl


def _app() -> typer.Typer:
    app = typer.Typer()
    data_cmds.register(app)
    return app


def test_synth_list_prints_ids_first() -> None:
    result = CliRunner().invoke(_app(), ["synth", "--list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    families = [line for line in lines if " task family (" in line]
    assert [line.split()[0] for line in families] == family_names()
    assert lines[: len(families)] == families  # the families first, then the templates
    assert lines[len(families)].startswith("gsmhard-0000  Janet’s ducks lay 16 eggs")
    assert len(lines) >= 850
    assert not any(line.startswith("gsmhard-0051") for line in lines)


def test_synth_writes_reproducible_files(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "test.jsonl"
    args = ["synth", "--template", "gsmhard-0000", "--n", "4", "--seed", "7", "--out", str(out)]
    assert runner.invoke(_app(), [*args, "--split-train", "2"]).exit_code == 0
    first = out.read_bytes()
    train = read_jsonl(tmp_path / "test.train.jsonl")
    assert len(train) == 2
    assert runner.invoke(_app(), args).exit_code == 0
    assert out.read_bytes() == first
    rows = read_jsonl(out)
    assert len(rows) == 4
    assert set(rows[0]) >= {"id", "question", "answer", "template_id", "seed", "values"}


def test_synth_needs_template_and_out() -> None:
    result = CliRunner().invoke(_app(), ["synth", "--n", "3"])
    assert isinstance(result.exception, UsageError)
    assert "--template" in str(result.exception)


def test_synth_refuses_a_label_error_row(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        _app(), ["synth", "--template", "51", "--out", str(tmp_path / "x.jsonl")]
    )
    assert isinstance(result.exception, UsageError)
    assert "text-code-disagree" in str(result.exception)


def test_data_coverage() -> None:
    result = CliRunner().invoke(_app(), ["data", "coverage", "--failures"])
    assert result.exit_code == 0, result.output
    assert "/ 1319" in result.output
    assert "text-code-disagree" in result.output
    assert "gsmhard-0051  text-code-disagree" in result.output
