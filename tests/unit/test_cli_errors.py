"""Bad input to the evaluation and data commands: one clean ``error:`` naming where, exit 2.

Every case fails before a model or a sandbox is started (unit tests block real models, so a
late failure would show up as a different message).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sgde.cli.app import app
from sgde.cli.common import run_cli

ROOT = Path(__file__).resolve().parents[2]
DUCK = ROOT / "examples" / "duck_eggs.yaml"

GOOD_BENCH = """\
name: small
templates: [gsmhard-0000]
methods: [direct, sgde]
m: [3]
compile:
  max_iters: 2
"""


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = run_cli(app, args)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, err


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def _bench(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, Path]:
    path = tmp_path / "bench.yaml"
    path.write_text(text, encoding="utf-8")
    code, err = _cli(["bench", str(path), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and len(_error_lines(err)) == 1, err
    assert not (tmp_path / "out").exists()
    return code, err, path


def test_bench_invalid_yaml_names_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, err, path = _bench(tmp_path, "name: x\n  bad: [\n", capsys)
    assert f"{path}:2: invalid YAML" in err and "hint:" in err
    assert "<unicode string>" not in err


def test_bench_unknown_field_names_line_field_and_suggestion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = GOOD_BENCH.replace("max_iters: 2", "max_iter: 2") + "n_test: 0\n"
    _, err, path = _bench(tmp_path, text, capsys)
    assert f"{path}:6: compile.max_iter: unknown field; did you mean 'max_iters'?" in err
    assert f"{path}:7: n_test: input should be greater than or equal to 1 (got 0)" in err
    assert "(2 problems)" in err


def test_bench_unknown_names_are_caught_before_any_model_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = GOOD_BENCH.replace("[direct, sgde]", "[direcct, sgde]").replace(
        "[gsmhard-0000]", "[gsmhard-0000, nope]"
    )
    text += "method_options:\n  sgde: {}\n  cot: {}\n"
    _, err, path = _bench(tmp_path, text, capsys)
    assert f"{path}:3: methods.0: unknown method 'direcct'; did you mean 'direct'?" in err
    assert f"{path}:2: templates.1: no template 'nope'" in err
    assert f"{path}:9: method_options.cot: not one of the configured methods" in err
    assert "sgde synth --list" in err and "known methods:" in err


def test_bench_bad_method_options_are_caught_early(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = GOOD_BENCH.replace("[direct, sgde]", "[self-consistency, cot]")
    text += "method_options:\n  self-consistency: {k: 0}\n  cot: {k: 3}\n"
    _, err, path = _bench(tmp_path, text, capsys)
    assert f"{path}:8: method_options.self-consistency: self-consistency needs k >= 1" in err
    assert f"{path}:9: method_options.cot: invalid options for method 'cot'" in err


def test_bench_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _cli(["bench", str(tmp_path / "nope.yaml")], capsys)
    assert code == 2 and "cannot read bench config" in err and "hint:" in err


def test_demo_unknown_template_and_method_fail_before_models(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    code, err = _cli(
        ["demo", "--template", "nope", "--methods", "cto,direct", "--out", str(out)], capsys
    )
    assert code == 2 and len(_error_lines(err)) == 1, err
    assert "templates.0: no template 'nope'" in err
    assert "methods.0: unknown method 'cto'; did you mean 'cot'?" in err
    assert "blocked in unit tests" not in err and not out.exists()


def test_synth_unknown_template_suggests_close_ids(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _cli(["synth", "--template", "gsmhard-00000", "--out", "x.jsonl"], capsys)
    assert code == 2 and "no template 'gsmhard-00000'; did you mean 'gsmhard-0000'" in err
    assert "sgde synth --list" in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"question": "a", "answer": 1}\n\n{"question": "b", answer: 2}\n', ":3: invalid JSON"),
        ("[1, 2]\n", ":1: expected a JSON object, got list"),
        ('{"q": "a", "answer": 1}\n', ":1: missing plan input: question"),
    ],
)
def test_eval_bad_dataset_lines_name_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, expected: str
) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_text(content, encoding="utf-8")
    code, err = _cli(
        ["eval", str(DUCK), "--dataset", str(data), "--model", "student=fake:x"], capsys
    )
    assert code == 2 and len(_error_lines(err)) == 1, err
    assert f"{data}{expected}" in err and "hint:" in err


def test_eval_missing_dataset_and_trace_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _cli(
        ["eval", str(DUCK), "--dataset", str(tmp_path / "nope.jsonl"), "-m", "student=x:y"],
        capsys,
    )
    assert code == 2 and "nope.jsonl: cannot read dataset: file not found" in err
    data = tmp_path / "rows.jsonl"
    data.write_text(json.dumps({"question": "q", "answer": 1}) + "\n", encoding="utf-8")
    trace = tmp_path / "missing" / "traces.jsonl"
    code, err = _cli(
        ["eval", str(DUCK), "--dataset", str(data), "-m", "student=x:y", "--trace", str(trace)],
        capsys,
    )
    assert code == 2 and "--trace" in err and "does not exist" in err


@pytest.mark.parametrize("command", ["eval", "bench"])
def test_unknown_engine_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    config = tmp_path / "bench.yaml"
    config.write_text(GOOD_BENCH, encoding="utf-8")
    target = [str(DUCK), "--dataset", str(config)] if command == "eval" else [str(config)]
    code, err = _cli([command, *target, "--engine", "spark"], capsys)
    assert code == 2 and "unknown engine 'spark'" in err and "--engine ray" in err
