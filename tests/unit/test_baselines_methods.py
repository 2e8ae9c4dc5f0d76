"""Each baseline end to end on 2-3 rows with fake backends and a fake sandbox."""

from __future__ import annotations

from typing import Any

import pytest
from _baselines_fakes import ROWS, FakeSandbox

from sgde.errors import SandboxError, UsageError
from sgde.evaluation.baselines import (
    METHODS,
    Method,
    Prediction,
    get_method,
    method_names,
)
from sgde.runtime.backend import Capabilities, ChatRequest
from sgde.runtime.numbers import numbers_match
from sgde.testing import FunctionBackend, ScriptedBackend


def _question(request: ChatRequest) -> str:
    return request.messages[-1].content


def _gold_for(request: ChatRequest) -> Any:
    text = _question(request)
    # The last "Question:" in the prompt is the one asked (demos come first).
    asked = text.rsplit("Question:", 1)[-1]
    for row in ROWS:
        if row["question"] in asked:
            return row["answer"]
    raise AssertionError(f"unknown question in {text!r}")


async def _run_all(method: Method, student: Any, sandbox: Any, rows: list[dict[str, Any]] = ROWS):
    prepared = await method.prepare(
        rows, teacher=None, student=student, sandbox=sandbox, budget=None, seed=0
    )
    preds = [
        await method.predict(prepared, row, student=student, sandbox=sandbox, seed=0)
        for row in rows
    ]
    return prepared, preds


def test_registry_names_and_did_you_mean() -> None:
    assert method_names() == [
        "student",
        "direct",
        "cot",
        "fewshot-cot",
        "self-consistency",
        "pal",
        "pot",
        "ape",
        "opro",
        "textgrad-style",
        "bootstrap-fewshot",
        "dspy-gepa",
        "dspy-mipro",
        "textgrad",
    ]
    for name in METHODS:
        method = get_method(name)
        assert isinstance(method, Method)
        assert method.name == name
    with pytest.raises(UsageError) as info:
        get_method("self-consistancy")
    assert "self-consistency" in str(info.value)
    with pytest.raises(UsageError, match="invalid options"):
        get_method("cot", k=3)


async def test_direct_uses_json_schema_and_reads_answer() -> None:
    student = FunctionBackend(
        lambda req: {"answer": _gold_for(req)}, capabilities=Capabilities(json_schema=True)
    )
    prepared, preds = await _run_all(get_method("direct"), student, None)
    assert prepared.plan is not None and prepared.plan.outputs == {"answer": "solve.answer"}
    assert [p.answer for p in preds] == [1234569, 3000, 2.5]
    assert all(r.json_schema is not None for r in student.requests)
    assert all(p.usage.total_tokens > 0 and p.error is None for p in preds)
    assert preds[0].trace["run"]["ok"] is True


async def test_cot_extracts_final_number_through_code_node() -> None:
    student = FunctionBackend(
        lambda req: f"Step 1: add. Step 2: 99 items. The answer is {_gold_for(req)}."
    )
    sandbox = FakeSandbox()
    _, preds = await _run_all(get_method("cot"), student, sandbox)
    assert [p.answer for p in preds] == [1234569, 3000, 2.5]
    assert len(sandbox.calls) == 3  # one extraction per row, in the sandbox
    assert preds[1].raw.startswith("Step 1")
    assert all(r.json_schema is None for r in student.requests)


async def test_cot_records_failure_when_no_number() -> None:
    student = ScriptedBackend(["I do not know."])
    _, preds = await _run_all(get_method("cot"), student, FakeSandbox(), rows=ROWS[:1])
    assert preds[0].answer is None
    assert preds[0].error


async def test_fewshot_cot_shows_training_rows_as_question_answer_demos() -> None:
    student = FunctionBackend(lambda req: f"The answer is {_gold_for(req)}.")
    method = get_method("fewshot-cot")
    train, test = ROWS[:2], ROWS[2:]
    prepared = await method.prepare(
        train, teacher=None, student=student, sandbox=FakeSandbox(), budget=None, seed=0
    )
    pred = await method.predict(prepared, test[0], student=student, sandbox=FakeSandbox(), seed=0)
    prompt = _question(student.requests[0])
    assert ROWS[0]["question"] in prompt and "The answer is 1234569." in prompt
    assert ROWS[1]["question"] in prompt and "The answer is 3000." in prompt
    assert prompt.rstrip().endswith('"The answer is <number>."')
    assert pred.answer == 2.5


async def test_fewshot_demo_text_with_jinja_syntax_is_literal() -> None:
    rows = [{"id": "j", "question": "What is {{ 2 + 2 }} {% if x %}?", "answer": 4}]
    student = FunctionBackend(lambda req: "The answer is 1.")
    method = get_method("fewshot-cot")
    prepared = await method.prepare(
        rows, teacher=None, student=student, sandbox=FakeSandbox(), budget=None, seed=0
    )
    await method.predict(prepared, ROWS[0], student=student, sandbox=FakeSandbox(), seed=0)
    assert "What is {{ 2 + 2 }} {% if x %}?" in _question(student.requests[0])


async def test_self_consistency_majority_over_samples() -> None:
    replies = iter(["The answer is 7.", "The answer is 7.0", "The answer is 9.", "no idea", "x=7"])
    student = FunctionBackend(lambda req: next(replies))
    method = get_method("self-consistency", k=5)
    _, preds = await _run_all(method, student, FakeSandbox(), rows=ROWS[:1])
    pred = preds[0]
    assert pred.answer == 7
    assert pred.trace["valid"] == 4
    assert pred.trace["votes"][0] == {"answer": 7, "count": 3}
    assert len(pred.trace["runs"]) == 5
    temps = {r.temperature for r in student.requests}
    seeds = {r.seed for r in student.requests}
    assert temps == {0.7}
    assert len(seeds) == 5  # every sample gets its own seed
    assert pred.usage.calls == 5


async def test_self_consistency_tie_goes_to_first_seen() -> None:
    replies = iter(["The answer is 3.", "The answer is 4."])
    student = FunctionBackend(lambda req: next(replies))
    method = get_method("self-consistency", k=2)
    _, preds = await _run_all(method, student, FakeSandbox(), rows=ROWS[:1])
    assert preds[0].answer == 3


async def test_pal_runs_solution_in_the_sandbox() -> None:
    def reply(req: ChatRequest) -> str:
        gold = _gold_for(req)
        return f"```python\ndef solution():\n    return {gold}\nprint(solution())\n```"

    # ast.unparse drops comments, so the fake sandbox keys on the code itself.
    sandbox = FakeSandbox({"return 1234569": 1234569, "return 3000": 3000.0, "return 2.5": "2.5"})
    _, preds = await _run_all(get_method("pal"), FunctionBackend(reply), sandbox)
    assert [p.answer for p in preds] == [1234569, 3000, 2.5]
    assert [c[2] for c in sandbox.program_calls] == ["solution"] * 3
    assert all(c[1] == {} for c in sandbox.program_calls)
    assert all("print" not in c[0] for c in sandbox.program_calls)
    assert "program" in preds[0].trace


async def test_pal_records_sandbox_errors() -> None:
    student = ScriptedBackend(["```python\ndef solution():\n    return open('x')\n```"])
    sandbox = FakeSandbox(
        {"open(": SandboxError("open is forbidden", rule="policy:forbidden-name")}
    )
    _, preds = await _run_all(get_method("pal"), student, sandbox, rows=ROWS[:1])
    assert preds[0].answer is None
    assert preds[0].trace["sandbox_error"]["rule"] == "policy:forbidden-name"
    assert "forbidden" in (preds[0].error or "")


async def test_pal_non_numeric_result_is_no_answer() -> None:
    student = ScriptedBackend(["```python\ndef solution():\n    return [1]\n```"])
    _, preds = await _run_all(
        get_method("pal"), student, FakeSandbox({"return [1]": [1]}), rows=ROWS[:1]
    )
    assert preds[0].answer is None and "not a number" in (preds[0].error or "")


async def test_pot_wraps_program_and_calls_solution() -> None:
    student = ScriptedBackend(["```python\neggs = 12 * 250\nans = eggs\nprint(ans)\n```"])
    sandbox = FakeSandbox({"eggs = 12 * 250": 3000})
    _, preds = await _run_all(get_method("pot"), student, sandbox, rows=ROWS[1:2])
    assert preds[0].answer == 3000
    code, kwargs, entry = sandbox.program_calls[0]
    assert entry == "solution" and kwargs == {}
    assert code.startswith("def solution():") and code.rstrip().endswith("return ans")


@pytest.mark.parametrize("name", ["pal", "pot"])
async def test_program_methods_refuse_to_run_without_sandbox(name: str) -> None:
    method = get_method(name)
    with pytest.raises(UsageError, match="sandbox"):
        await method.prepare(
            ROWS, teacher=None, student=ScriptedBackend([]), sandbox=None, budget=None, seed=0
        )


def test_prediction_to_dict_is_json_ready() -> None:
    import json

    pred = Prediction(answer=1.0, raw="x", trace={"a": 1})
    assert json.loads(json.dumps(pred.to_dict()))["answer"] == 1.0
    assert numbers_match(pred.answer, 1)
