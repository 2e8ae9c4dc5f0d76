"""`sgde validate`, `sgde show`, `sgde diff` and `sgde schema` through the CLI runner."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from plan_samples import DUCK_YAML, REPORT_YAML

from sgde.cli import plan_cmds
from sgde.cli.common import run_cli
from sgde.plan import PLAN_SCHEMA_ID, plan_hash
from sgde.planfile import loads_plan

Run = tuple[int, str, str]
Runner = Callable[..., Run]


@pytest.fixture
def sgde(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Runner:
    """Run plan commands in ``tmp_path``; returns (exit code, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    plan_cmds.register(app)

    def run(*args: str) -> Run:
        capsys.readouterr()
        code = run_cli(app, list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _write(name: str, text: str) -> str:
    Path(name).write_text(text, encoding="utf-8")
    return name


def test_validate_ok(sgde: Runner) -> None:
    _write("duck.yaml", DUCK_YAML)
    code, out, err = sgde("validate", "duck.yaml")
    assert (code, err) == (0, "")
    assert out == f"ok: duck-eggs (3 nodes) {plan_hash(loads_plan(DUCK_YAML))}\n"


def test_validate_lists_one_line_per_problem(sgde: Runner) -> None:
    text = DUCK_YAML.replace("{eggs: extract_vote.eggs}", "{eggs: extract.eggs}")
    text = text.replace('"Problem: {{ question }}"', '"Problem: {{ questoin }}"')
    _write("bad.yaml", text)
    code, out, err = sgde("validate", "bad.yaml")
    assert code == 1
    assert out.splitlines() == [
        "bad.yaml:12: node 'extract' field 'prompt': template variable 'questoin' is not an "
        "input of this node; did you mean 'question'? (inputs: question); add it to inputs or "
        "remove it from the prompt",
        "bad.yaml:24: node 'compute' field 'inputs.eggs': reference 'extract.eggs' reads node "
        "'extract', which is wrapped by consensus node 'extract_vote' and never runs on its "
        "own; use 'extract_vote.eggs'",
    ]
    assert err.strip() == "bad.yaml: 2 problems"


def test_validate_plan_level_problem_and_load_errors(sgde: Runner) -> None:
    _write("out.yaml", DUCK_YAML.replace("compute.answer", "compute.total"))
    _write("yaml.yaml", "name: x\nnodes:\n  - id: a\n   kind: llm\n")
    _write("model.yaml", DUCK_YAML.replace("    max_tokens: 256\n", "    max_tokens: lots\n"))
    _write("empty.yaml", "")
    code, out, _ = sgde("validate", "out.yaml", "yaml.yaml", "model.yaml", "empty.yaml")
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("out.yaml:5: field 'outputs.answer': reference 'compute.total'")
    assert lines[1].startswith("yaml.yaml:4: invalid YAML: ")
    assert lines[2].startswith("model.yaml:15: node 'extract' field 'max_tokens': input should")
    assert lines[3] == "empty.yaml: the plan file is empty"
    assert len(lines) == 4


def test_validate_one_good_one_bad(sgde: Runner) -> None:
    _write("good.yaml", REPORT_YAML)
    _write("bad.yaml", REPORT_YAML.replace("limit: input.limit", "limit: input.limits"))
    code, out, _ = sgde("validate", "good.yaml", "bad.yaml")
    assert code == 1
    assert out.startswith("ok: report (2 nodes) sha256:")
    assert "bad.yaml:20: node 'check' field 'inputs.limit'" in out


def test_missing_file_is_a_clean_error(sgde: Runner) -> None:
    code, out, err = sgde("validate", "nope.yaml")
    assert code == 2 and out == ""
    assert err.startswith("error: nope.yaml: cannot read plan file: file not found")
    assert "Traceback" not in err
    _write("duck.yaml", DUCK_YAML)
    code, out, err = sgde("validate", "nope.yaml", "duck.yaml")
    assert code == 2 and out.startswith("ok: duck-eggs") and "nope.yaml" in err
    code, _, err = sgde("show", "nope.yaml")
    assert code == 2 and err.startswith("error: nope.yaml: cannot read plan file: file not found")


def test_show_tree(sgde: Runner) -> None:
    _write("duck.yaml", DUCK_YAML)
    code, out, _ = sgde("show", "duck.yaml")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"duck-eggs  {plan_hash(loads_plan(DUCK_YAML))}"
    assert lines[1] == "optional text"
    text = "\n".join(lines)
    assert text.index("extract_vote  consensus  ×5 · T=0.7 · vote=majority") < text.index(
        "compute  code  2 lines"
    )
    assert "extract  llm  model student · T=0.0 · max_tokens=256" in text
    assert "inputs: question ← input.question" in text
    assert "fields: eggs" in text and "fields: answer" in text
    assert "answer ← compute.answer" in text
    assert 'teacher: "local:qwen-coder-1.5b"' in text and "history: [1 item]" in text


def test_show_tree_escapes_markup(sgde: Runner) -> None:
    _write("m.yaml", REPORT_YAML.replace("You are careful.", "You are [bold]careful[/bold]."))
    code, out, _ = sgde("show", "m.yaml")
    assert code == 0 and "system: You are [bold]careful[/bold]. …" in out
    assert "fields: text" in out and "inputs: text ← explain.text, limit ← input.limit" in out


def test_show_mermaid_and_json(sgde: Runner) -> None:
    _write("duck.yaml", DUCK_YAML)
    code, out, _ = sgde("show", "--mermaid", "duck.yaml")
    assert code == 0 and out.startswith("flowchart TD\n") and "n_extract -.->" in out
    code, out, _ = sgde("show", "duck.yaml", "--json")
    assert code == 0
    assert json.loads(out) == loads_plan(DUCK_YAML).model_dump(mode="json")
    code, _, err = sgde("show", "duck.yaml", "--json", "--mermaid")
    assert code == 2 and "cannot be combined" in err


def test_show_invalid_plan_lists_problems(sgde: Runner) -> None:
    _write("bad.yaml", DUCK_YAML.replace("of: extract", "of: nothing"))
    code, out, err = sgde("show", "bad.yaml")
    assert code == 2 and out == ""
    assert "bad.yaml:18: node 'extract_vote' field 'of'" in err


def test_diff_exit_codes_and_output(sgde: Runner) -> None:
    _write("a.yaml", DUCK_YAML)
    _write("same.yaml", DUCK_YAML.replace("  teacher: local:qwen-coder-1.5b\n", ""))
    _write("b.yaml", DUCK_YAML.replace('"Problem: {{ question }}"', '"Q: {{ question }}"'))
    code, out, _ = sgde("diff", "a.yaml", "a.yaml")
    assert (code, out) == (0, "")
    code, out, _ = sgde("diff", "a.yaml", "same.yaml")
    assert (code, out) == (0, "plans have the same content; only metadata differs\n")
    code, out, _ = sgde("diff", "a.yaml", "b.yaml")
    assert code == 1
    assert out.splitlines()[0].startswith("--- a.yaml (sha256:")
    assert "      -Problem: {{ question }}\n      +Q: {{ question }}\n" in out
    code, _, err = sgde("diff", "a.yaml", "missing.yaml")
    assert code == 2 and "missing.yaml: cannot read plan file: file not found" in err


def test_diff_works_on_invalid_plans(sgde: Runner) -> None:
    _write("a.yaml", DUCK_YAML)
    _write("b.yaml", DUCK_YAML.replace("compute.answer", "ghost.answer"))
    code, out, _ = sgde("diff", "a.yaml", "b.yaml")
    assert code == 1 and '~ answer: "compute.answer" -> "ghost.answer"' in out
    _write("c.yaml", "name: [unclosed\n")
    code, _, err = sgde("diff", "a.yaml", "c.yaml")
    assert code == 2 and "not valid YAML" in err


def test_schema(sgde: Runner) -> None:
    code, out, _ = sgde("schema")
    assert code == 0
    schema = json.loads(out)
    assert schema["$id"] == PLAN_SCHEMA_ID and "LlmNode" in schema["$defs"]
