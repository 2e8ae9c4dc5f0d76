"""``sgde eval`` and ``sgde bench`` through the CLI runner, with fake models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _bench_fakes import SGDE_PLAN, STUDENT, fake_config, fake_deps, fake_resolver
from typer.testing import CliRunner

from sgde.cli import eval_cmds
from sgde.cli.app import app
from sgde.evaluation import bench as bench_module
from sgde.models import ModelHub
from sgde.planfile import save_plan
from sgde.runtime.trace import read_traces


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.setattr(
        eval_cmds, "ModelHub", lambda settings: ModelHub(settings, resolver=fake_resolver)
    )
    plan = SGDE_PLAN.model_copy(
        update={"nodes": [SGDE_PLAN.nodes[0].model_copy(update={"system": "plain"})]}
    )
    plan_path = tmp_path / "plan.yaml"
    save_plan(plan, plan_path)
    data = tmp_path / "data.jsonl"
    rows = [
        {"id": f"q{i}", "question": f"What is {10 + i} plus 5?", "answer": 15 + i} for i in range(4)
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return plan_path, data


def test_eval_prints_table_and_failures(files: tuple[Path, Path], tmp_path: Path) -> None:
    plan, data = files
    trace = tmp_path / "traces.jsonl"
    result = CliRunner().invoke(
        app,
        [
            "eval",
            str(plan),
            "--dataset",
            str(data),
            "--model",
            f"student={STUDENT}",
            "--trace",
            str(trace),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "50.0 %" in result.output
    assert "Failures" in result.output and "q1" in result.output and "q3" in result.output
    assert f"{trace} line 2" in result.output.replace("\n", "")
    traces = read_traces(trace)
    assert len(traces) == 4 and traces[1].outputs["answer"] == 17


def test_eval_json_output(files: tuple[Path, Path]) -> None:
    plan, data = files
    result = CliRunner().invoke(
        app,
        ["eval", str(plan), "--dataset", str(data), "--model", f"student={STUDENT}", "--json"],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["accuracy"] == 0.5 and doc["n"] == 4
    assert [i["correct"] for i in doc["items"]] == [True, False, True, False]


def test_eval_without_student_names_the_option(files: tuple[Path, Path]) -> None:
    plan, data = files
    result = CliRunner().invoke(app, ["eval", str(plan), "--dataset", str(data)])
    assert result.exit_code != 0
    assert "--model student=" in str(result.exception) + result.output


def test_bench_cli_runs_and_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "bench.yaml"
    config.write_text(
        json.dumps(fake_config(m=[3]).model_dump(mode="json", exclude={"model_settings"})),
        encoding="utf-8",
    )
    monkeypatch.setattr(bench_module, "BenchDeps", lambda: fake_deps())
    out = tmp_path / "out"
    runner = CliRunner()
    first = runner.invoke(app, ["bench", str(config), "--out", str(out)])
    assert first.exit_code == 0, first.output
    assert "report.html" in first.output and "2 cell(s) run" in first.output
    second = runner.invoke(app, ["bench", str(config), "--out", str(out)])
    assert second.exit_code == 0, second.output
    assert "0 cell(s) run, 2 resumed" in second.output


def test_bench_cli_rejects_bad_config(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("name: x\ntemplates: [t]\nmethods: [sgde]\nn_test: -1\n")
    result = CliRunner().invoke(app, ["bench", str(config)])
    assert result.exit_code != 0
    assert "n_test" in str(result.exception) + result.output
