"""``sgde compile`` and ``sgde bound`` through the CLI runner (fake models)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import typer
from _optimize_fakes import ROWS, FakeTeacher, InProcessRunner, single_plan, student_backend
from typer.testing import CliRunner

from sgde.cli import compile_cmd
from sgde.cli.common import run_cli
from sgde.models import ModelHub, ModelSettings
from sgde.planfile import dump_plan, load_plan


def _app() -> typer.Typer:
    app = typer.Typer(pretty_exceptions_enable=False)
    compile_cmd.register(app)
    return app


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    teacher = FakeTeacher()
    models = {"fake:teacher": teacher.backend, "fake:student": student_backend()}
    seen: dict[str, object] = {"teacher": teacher}

    def hub(settings: ModelSettings) -> ModelHub:
        seen["settings"] = settings
        return ModelHub(settings, resolver=lambda name, s: models[name])

    @contextlib.asynccontextmanager
    async def sandbox() -> AsyncIterator[InProcessRunner]:
        yield InProcessRunner()

    monkeypatch.setattr(compile_cmd, "_open_hub", hub)
    monkeypatch.setattr(compile_cmd, "_open_sandbox", sandbox)
    return seen


def _files(tmp_path: Path) -> tuple[Path, Path]:
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    plan = tmp_path / "plan.yaml"
    plan.write_text(dump_plan(single_plan()))
    return train, plan


def test_compile_writes_plan_report_and_checkpoint(tmp_path: Path, fakes: dict) -> None:
    train, plan = _files(tmp_path)
    out = tmp_path / "compiled.yaml"
    result = CliRunner().invoke(
        _app(),
        [
            "compile",
            str(plan),
            "--train",
            str(train),
            "--rows",
            "3",
            "-m",
            "teacher=fake:teacher",
            "--student",
            "fake:student",
            "--out",
            str(out),
            "--max-iters",
            "3",
            "--budget-tokens",
            "1000000",
            "--harden-probes",
            "5",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "training loss 1.000 → 0.000" in result.output
    assert "accepted: offload solve (answer) to a lift program" in result.output
    compiled = load_plan(out)
    assert compiled.metadata["compile"]["final_loss"] == 0.0
    report_dir = tmp_path / "compiled.report"
    report = json.loads((report_dir / "report.json").read_text())
    assert report["iterations"][0]["accepted"] is True
    assert report["settings"]["harden_probes"] == 5
    # One usage ledger: spent tokens and cached calls per role, no second "billed" account.
    assert "billed" not in report
    assert set(report["usage"]) == {"teacher", "student"}
    assert report["usage"]["teacher"]["total_tokens"] > 0
    assert {"cached_calls", "replayed_tokens"} <= set(report["usage"]["student"])
    assert "cached calls (tokens replayed)" in (report_dir / "report.md").read_text()
    assert (report_dir / "report.md").is_file()
    assert (report_dir / "checkpoint" / "state.json").is_file()
    assert fakes["settings"].budget_tokens == 1000000


def test_compile_from_task_text(tmp_path: Path, fakes: dict) -> None:
    train, _ = _files(tmp_path)
    out = tmp_path / "p.yaml"
    result = CliRunner().invoke(
        _app(),
        [
            "compile",
            "--task",
            "How much does Janet make a day?",
            "--train",
            str(train),
            "--teacher",
            "fake:teacher",
            "--student",
            "fake:student",
            "--out",
            str(out),
            "--report",
            str(tmp_path / "rep"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert fakes["teacher"].seen[0] == "coldstart"
    assert (tmp_path / "rep" / "report.json").is_file()


def test_compile_usage_errors(tmp_path: Path, fakes: dict) -> None:
    train, plan = _files(tmp_path)
    code = run_cli(_app(), ["compile", "--train", str(train), "--out", str(tmp_path / "o")])
    assert code == 2
    code = run_cli(
        _app(),
        [
            "compile",
            str(plan),
            "--train",
            str(train),
            "--rows",
            "9",
            "--out",
            str(tmp_path / "o.yaml"),
        ],
    )
    assert code == 2
    code = run_cli(
        _app(),
        [
            "compile",
            str(plan),
            "--train",
            str(train),
            "--resume",
            "--out",
            str(tmp_path / "o.yaml"),
        ],
    )
    assert code == 2


def test_compile_usage_error_messages(
    tmp_path: Path, fakes: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    train, plan = _files(tmp_path)
    run_cli(
        _app(),
        [
            "compile",
            str(plan),
            "--train",
            str(train),
            "--rows",
            "9",
            "--out",
            str(tmp_path / "o.yaml"),
        ],
    )
    assert "has 3 row(s), --rows asks for 9" in capsys.readouterr().err
    run_cli(
        _app(),
        [
            "compile",
            str(plan),
            "--train",
            str(train),
            "--resume",
            "--out",
            str(tmp_path / "o.yaml"),
        ],
    )
    assert "nothing to resume" in capsys.readouterr().err
    code = run_cli(_app(), ["compile", str(plan), "--train", str(train), "-m", "3", "-o", "x"])
    assert code == 2 and "the number of training rows is --rows N" in capsys.readouterr().err
    code = run_cli(
        _app(), ["compile", str(plan), "--train", str(train), "-m", "critic=x", "-o", "x"]
    )
    assert code == 2 and "teacher and student, not critic" in capsys.readouterr().err
    code = run_cli(_app(), ["compile", str(plan), "--train", str(train), "--out", str(tmp_path)])
    assert code == 2 and "cannot write --out" in capsys.readouterr().err
    code = run_cli(_app(), ["compile", str(plan), "--train", str(train), "--out", str(plan)])
    assert code == 2 and "it is an input of this command" in capsys.readouterr().err


def test_bound_solves_for_m_and_epsilon() -> None:
    runner = CliRunner()
    result = runner.invoke(
        _app(),
        ["bound", "--epsilon", "0.1", "--delta", "0.05", "--hypotheses", "10", "--ln-prior", "1"],
    )
    assert result.exit_code == 0, result.output
    assert "m = 53" in result.output  # ceil((ln 10 + ln 20) / 0.1)
    assert "Occam form" in result.output
    result = runner.invoke(_app(), ["bound", "--m", "3", "--hypotheses", "4"])
    assert "ε = 1.4607" in result.output and "vacuous" in result.output
    assert run_cli(_app(), ["bound"]) == 2
    result = runner.invoke(_app(), ["bound", "--m", "30", "--hypotheses", "4", "--json"])
    data = json.loads(result.output)
    assert data["m"] == 30 and 0 < data["epsilon_guaranteed"] < 1 and not data["vacuous"]
    result = runner.invoke(_app(), ["bound", "--epsilon", "0.1", "--rows", "3", "--json"])
    data = json.loads(result.output)
    assert data["m_needed"] == 53 and data["m"] == 3 and data["vacuous"]


def test_ctrl_c_keeps_the_checkpoint_and_says_how_to_resume(
    tmp_path: Path, fakes: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    train, plan = _files(tmp_path)

    async def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(compile_cmd, "_run", interrupted)
    monkeypatch.setattr("sys.argv", ["sgde", "compile", str(plan), "--train", str(train)])
    result = CliRunner().invoke(
        _app(), ["compile", str(plan), "--train", str(train), "--out", str(tmp_path / "o.yaml")]
    )
    assert result.exit_code == 130
    assert "interrupted" in result.output and "--resume" in result.output


def _word_rows(tmp_path: Path, rows: list[dict]) -> Path:
    train = tmp_path / "words.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return train


def test_compile_prints_the_inferred_task_and_takes_typed_outputs(
    tmp_path: Path, fakes: dict
) -> None:
    rows = [
        {"word": w, "letter": "r", "count": w.count("r"), "note": "x"}
        for w in ("strawberry", "carrot", "mirror")
    ]
    train = _word_rows(tmp_path, rows)
    metric_file = tmp_path / "my_metric.py"
    metric_file.write_text(
        "def score(row, outputs):\n"
        "    ok = outputs.get('count') == row['count']\n"
        "    return (1.0 if ok else 0.0, '' if ok else 'wrong count')\n"
    )
    out = tmp_path / "p.yaml"
    result = CliRunner().invoke(
        _app(),
        [
            "compile",
            "--task",
            "Count the letter in the word.",
            "--train",
            str(train),
            "--input",
            "word",
            "--input",
            "letter",
            "--output",
            "count:number",
            "--metric",
            f"{metric_file}:score",
            "-m",
            "teacher=fake:teacher",
            "-m",
            "student=fake:student",
            "--max-iters",
            "0",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "task: Count the letter in the word." in result.output
    assert "in   word: string" in result.output and "out  count: number" in result.output
    assert "note" not in result.output.split("metric:")[0]
    assert f"metric: {metric_file}:score" in result.output
    plan = load_plan(out)
    assert plan.metadata["task"]["outputs"] == {"count": "number"}
    assert set(plan.inputs) == {"word", "letter"}


def test_compile_names_the_row_and_field_of_bad_data(tmp_path: Path, fakes: dict) -> None:
    rows = [{"start": "2024-01-05", "days": 3, "due": "2024-01-08"}] * 2
    rows = [*rows, {"start": "2024-02-01", "days": "three", "due": "2024-02-04"}]
    train = _word_rows(tmp_path, rows)
    code = run_cli(
        _app(),
        [
            "compile",
            "--task",
            "Add the days to the date.",
            "--train",
            str(train),
            "--output",
            "due:date",
            "--out",
            str(tmp_path / "o.yaml"),
        ],
    )
    assert code == 2
    code = run_cli(
        _app(),
        [
            "compile",
            "--task",
            "Count.",
            "--train",
            str(train),
            "--metric",
            "no_such_module_xyz:score",
            "--out",
            str(tmp_path / "o.yaml"),
        ],
    )
    assert code == 2


def test_compile_bad_data_message(tmp_path: Path, fakes: dict) -> None:
    rows = [{"start": "2024-01-05", "days": 3, "due": "2024-01-08"}] * 2
    rows = [*rows, {"start": "2024-02-01", "days": "three", "due": "2024-02-04"}]
    train = _word_rows(tmp_path, rows)
    result = CliRunner().invoke(
        _app(),
        ["compile", "--task", "Add days.", "--train", str(train), "--out", str(tmp_path / "o")],
    )
    assert result.exit_code != 0
    message = str(result.exception) + result.output
    assert "words.jsonl:3" in message and "days" in message
