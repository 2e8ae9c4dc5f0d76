"""``sgde run`` through the real CLI entry (run_cli), with fake models and sandbox."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import typer

from sgde.cli import run_cmd
from sgde.cli.common import run_cli
from sgde.models import ModelHub, ModelSettings
from sgde.runtime.trace import read_traces
from sgde.testing import InProcessCodeRunner, ScriptedBackend

# Only `run` is registered, so these tests do not depend on the other command modules.
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
run_cmd.register(app)


@app.callback()
def _group() -> None:
    """sgde (test app with `run` only)."""


ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

DUCK_REPLIES = {
    "Janet": {"eggs_per_day": 16, "eaten_per_day": 3, "baked_per_day": 4, "price_per_egg": 2},
    "Maria": {"eggs_per_day": 23, "eaten_per_day": 2, "baked_per_day": 5, "price_per_egg": 3},
    "1,250": {"eggs_per_day": 1250, "eaten_per_day": 14, "baked_per_day": 36, "price_per_egg": 1.5},
    "Tom": {"eggs_per_day": 48, "eaten_per_day": 6, "baked_per_day": 12, "price_per_egg": 0.75},
    "9,876": {"eggs_per_day": 9876, "eaten_per_day": 123, "baked_per_day": 456, "price_per_egg": 4},
}


@contextlib.asynccontextmanager
async def _fake_sandbox() -> AsyncIterator[InProcessCodeRunner]:
    yield InProcessCodeRunner()


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> dict[str, ScriptedBackend]:
    """Route every model name to a scripted backend and code to the in-process runner."""
    made: dict[str, ScriptedBackend] = {}

    def resolver(name: str, settings: ModelSettings) -> ScriptedBackend:
        made[name] = ScriptedBackend(DUCK_REPLIES, name=name)  # type: ignore[arg-type]
        return made[name]

    monkeypatch.setattr(run_cmd, "_open_hub", lambda s: ModelHub(s, resolver=resolver))
    monkeypatch.setattr(run_cmd, "_open_sandbox", _fake_sandbox)
    return made


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run_cli(app, ["run", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_code_only_example_runs_with_the_real_sandbox(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(
        [
            str(EXAMPLES / "arithmetic.yaml"),
            "--input",
            "unit_price=19.99",
            "--input",
            "quantity=3",
            "-i",
            "tax_rate=0.0825",
        ],
        capsys,
    )
    assert code == 0, err
    assert json.loads(out) == {"subtotal": 59.97, "tax": 4.95, "total": 64.92}


def test_dataset_run_prints_rows_in_order_and_writes_traces(
    fakes: dict[str, ScriptedBackend], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace_path = tmp_path / "traces.jsonl"
    code, out, err = _run(
        [
            str(EXAMPLES / "duck_eggs.yaml"),
            "--dataset",
            str(EXAMPLES / "duck_eggs.jsonl"),
            "--model",
            "student=fake:duck",
            "--trace",
            str(trace_path),
            "--seed",
            "3",
            "--concurrency",
            "3",
        ],
        capsys,
    )
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    gold = [json.loads(line) for line in (EXAMPLES / "duck_eggs.jsonl").read_text().splitlines()]
    assert [line["index"] for line in lines] == list(range(len(gold)))
    assert [line["id"] for line in lines] == [row["id"] for row in gold]
    assert [line["outputs"]["answer"] for line in lines] == [row["answer"] for row in gold]
    assert all(line["ok"] for line in lines)
    assert "5/5 rows ok" in err
    assert "student:" in err  # usage summary per role
    traces = read_traces(trace_path)
    assert [t.inputs["question"] for t in traces] == [row["question"] for row in gold]
    assert all(t.seed == 3 for t in traces)
    assert fakes["fake:duck"].calls == 5 * 5  # five rows, five consensus samples each


def test_single_input_with_a_model(
    fakes: dict[str, ScriptedBackend], capsys: pytest.CaptureFixture[str]
) -> None:
    question = "Janet's ducks lay 16 eggs per day."
    code, out, err = _run(
        [str(EXAMPLES / "duck_eggs.yaml"), "-i", f"question={question}", "-m", "student=fake:x"],
        capsys,
    )
    assert code == 0, err
    assert json.loads(out) == {"answer": 18}


def test_missing_model_role_is_a_clean_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run([str(EXAMPLES / "duck_eggs.yaml"), "-i", "question=q"], capsys)
    assert code == 2
    assert out == ""
    assert "needs a model for role(s) student" in err
    assert "--model student=" in err
    assert "Traceback" not in err


def test_real_models_are_blocked_without_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(
        [str(EXAMPLES / "duck_eggs.yaml"), "-i", "question=q", "-m", "student=local:smollm2-135m"],
        capsys,
    )
    assert code == 2
    assert "blocked" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("args", [[], ["-i", "a=1", "--dataset", "x.jsonl"]])
def test_input_xor_dataset(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run([str(EXAMPLES / "arithmetic.yaml"), *args], capsys)
    assert code == 2
    assert "either --input" in err


def test_unknown_and_invalid_inputs(capsys: pytest.CaptureFixture[str]) -> None:
    plan = str(EXAMPLES / "arithmetic.yaml")
    code, _, err = _run(
        [plan, "-i", "unit_prize=1", "-i", "quantity=1", "-i", "tax_rate=0"], capsys
    )
    assert code == 2
    assert "no input 'unit_prize'" in err and "unit_price (number)" in err
    code, _, err = _run([plan, "-i", "quantity=1", "-i", "tax_rate=0"], capsys)
    assert code == 2 and "missing plan input: unit_price" in err
    code, _, err = _run(
        [plan, "-i", "unit_price=x", "-i", "quantity=1", "-i", "tax_rate=0"], capsys
    )
    assert code == 2 and "input 'unit_price' must be a number" in err


def test_dataset_errors_name_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = str(EXAMPLES / "arithmetic.yaml")
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"unit_price": 1, "quantity": 1, "tax_rate": 0}\n\n{oops\n')
    code, _, err = _run([plan, "--dataset", str(bad_json)], capsys)
    assert code == 2 and f"{bad_json}:3: invalid JSON" in err

    missing = tmp_path / "missing.jsonl"
    missing.write_text('{"unit_price": 1, "quantity": 1, "tax_rate": 0}\n{"unit_price": 2}\n')
    code, _, err = _run([plan, "--dataset", str(missing)], capsys)
    assert code == 2 and f"{missing}:2: missing plan inputs: quantity, tax_rate" in err

    code, _, err = _run([plan, "--dataset", str(tmp_path / "nope.jsonl")], capsys)
    assert code == 2 and "cannot read dataset" in err

    not_obj = tmp_path / "list.jsonl"
    not_obj.write_text("[1, 2]\n")
    code, _, err = _run([plan, "--dataset", str(not_obj)], capsys)
    assert code == 2 and f"{not_obj}:1: expected a JSON object, got list" in err


def test_failed_rows_are_reported_and_exit_nonzero(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(run_cmd, "_open_sandbox", _fake_sandbox)
    data = tmp_path / "rows.jsonl"
    data.write_text(
        '{"unit_price": 2, "quantity": 3, "tax_rate": 0.1}\n'
        '{"unit_price": 2, "quantity": 4, "tax_rate": 0.1}\n'
    )
    plan_text = (
        (EXAMPLES / "arithmetic.yaml")
        .read_text()
        .replace(
            'return {"subtotal": cents / 100}',
            'return {"subtotal": cents / 100 / (quantity - 3)}',
        )
    )
    plan = tmp_path / "div.yaml"
    plan.write_text(plan_text)
    code, out, err = _run([str(plan), "--dataset", str(data), "--limit", "1"], capsys)
    assert code == 1
    (line,) = [json.loads(x) for x in out.splitlines()]
    assert line["ok"] is False
    assert "ZeroDivisionError" in line["error"]
    assert "0/1 rows ok" in err


def test_trace_directory_must_exist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(
        [
            str(EXAMPLES / "arithmetic.yaml"),
            "-i",
            "unit_price=1",
            "-i",
            "quantity=1",
            "-i",
            "tax_rate=0",
            "--trace",
            str(tmp_path / "no" / "t.jsonl"),
        ],
        capsys,
    )
    assert code == 2 and "does not exist" in err


def test_missing_plan_file_is_a_clean_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["no-such-plan.yaml", "-i", "a=1"], capsys)
    assert code == 2
    assert "no-such-plan.yaml" in err and "Traceback" not in err
