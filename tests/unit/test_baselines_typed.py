"""Typed baselines: answer extraction per output type, typed plans, PAL outputs, scoring."""

from __future__ import annotations

from typing import Any

import pytest

from sgde.evaluation.baselines.base import Prepared
from sgde.evaluation.baselines.typed import (
    program_outputs,
    typed_cot_plan,
    typed_direct_plan,
    typed_extract_source,
)
from sgde.evaluation.evaluate import score_prediction
from sgde.evaluation.sgde_method import resolve_method
from sgde.evaluation.tasks import get_family
from sgde.runtime.backend import ChatRequest
from sgde.runtime.sandbox.policy import check_source
from sgde.task import TaskSpec
from sgde.testing import FunctionBackend
from sgde.testing.code import InProcessCodeRunner


def _spec(outputs: dict[str, str]) -> TaskSpec:
    return TaskSpec.model_validate(
        {"description": "t", "inputs": {"text": "string"}, "outputs": outputs}
    )


async def _prepare(method: Any, student: Any, sandbox: Any) -> Prepared:
    prepared: Prepared = await method.prepare(
        [], teacher=None, student=student, sandbox=sandbox, budget=None, seed=0
    )
    return prepared


def _extract(spec: TaskSpec, reply: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(typed_extract_source(spec), namespace)  # the sandbox runs this same code
    result: dict[str, Any] = namespace["run"](reply)
    return result


@pytest.mark.parametrize(
    ("kind", "reply", "gold"),
    [
        ("date", "So 2024-03-05 plus 3 days.\nAnswer: 2024-03-08.", "2024-03-08"),
        ("date", "It arrives on March 8, 2024, a Friday.", "2024-03-08"),
        ("number", "Subtotal $160.35, minus 5 %.\nAnswer: $152.33", 152.33),
        ("number", "The total is 1,234.50 dollars.", 1234.5),
        ("integer", "r appears at 3 and 8 and 9. The answer is 3 times.", 3),
        ("list[integer]", "Sorted: 491, 407, 364, 281.\nAnswer: [491, 407, 364]", [491, 407, 364]),
        ("list[integer]", "Answer: 491, 407 and 364", [491, 407, 364]),
        ("enum[negative,positive]", "Two good points, one bad.\nAnswer: **Positive**", "positive"),
        ("enum[negative,positive]", "Mostly complaints, so it is negative overall.", "negative"),
        ("boolean", "Both sides are 7, so yes.", True),
        ("string", 'The initials are below.\nAnswer: "ALK".', "ALK"),
    ],
)
def test_single_output_extraction_by_type(kind: str, reply: str, gold: Any) -> None:
    spec = _spec({"answer": kind})
    value = _extract(spec, reply)["answer"]
    assert spec.outputs["answer"].correct(value, gold), value


def test_several_outputs_from_lines_or_json() -> None:
    spec = get_family("rectangle").spec()
    lines = "Area is 7*3.\n**area**: 21\n- perimeter = 20\nis_square: no"
    assert _extract(spec, lines) == {"area": "21", "perimeter": "20", "is_square": "no"}
    blob = 'Result: {"area": 21, "perimeter": 20, "is_square": false}'
    assert _extract(spec, blob) == {"area": 21, "perimeter": 20, "is_square": False}
    missing = _extract(spec, "area: 21")
    assert missing == {"area": "21", "perimeter": None, "is_square": None}


def test_extraction_code_passes_the_sandbox_policy() -> None:
    for family in ("rectangle", "date-add", "review-sentiment", "list-top-three"):
        assert check_source(typed_extract_source(get_family(family).spec())) == []


def test_program_outputs_map_return_values() -> None:
    one = _spec({"answer": "date"})
    assert program_outputs(one, "2024-01-05") == {"answer": "2024-01-05"}
    assert program_outputs(one, {"Answer": "x"}) == {"answer": "x"}
    assert program_outputs(one, {"date": "x"}) == {"answer": "x"}
    several = get_family("rectangle").spec()
    assert program_outputs(several, {"area": 1, "perimeter": 4, "is_square": True}) == {
        "area": 1,
        "perimeter": 4,
        "is_square": True,
    }
    assert program_outputs(several, (1, 4, True))["is_square"] is True
    assert program_outputs(several, 5) == {"area": None, "perimeter": None, "is_square": None}


def test_direct_plan_is_typed_by_the_task() -> None:
    spec = get_family("rectangle").spec()
    plan = typed_direct_plan(spec)
    assert plan.nodes[0].output_schema == spec.output_schema()
    assert list(plan.outputs) == ["area", "perimeter", "is_square"]
    assert list(plan.inputs) == ["text"]


async def test_typed_cot_runs_and_is_scored_by_the_task_metric() -> None:
    spec = get_family("date-add").spec()
    method = resolve_method("cot", task=spec)

    def reply(request: ChatRequest) -> str:
        assert "Task: Add the given number of days" in request.messages[-1].content
        return "Start 2024-03-05, add 3 days.\nAnswer: March 8, 2024."

    student = FunctionBackend(reply)
    sandbox = InProcessCodeRunner()
    prepared = await method.prepare(
        [], teacher=None, student=student, sandbox=sandbox, budget=None, seed=0
    )
    assert prepared.task == spec
    row = {"id": "r1", "text": "What is the date 3 days after 2024-03-05?", "answer": "2024-03-08"}
    prediction = await method.predict(prepared, row, student=student, sandbox=sandbox, seed=0)
    assert prediction.outputs == {"answer": "March 8, 2024"}
    item = score_prediction(row, prediction, task=prepared.task)
    assert item.correct and item.gold == "2024-03-08"
    wrong = score_prediction({**row, "answer": "2024-03-09"}, prediction, task=prepared.task)
    assert not wrong.correct


async def test_typed_pal_and_self_consistency() -> None:
    spec = get_family("rectangle").spec()
    program = (
        "```python\ndef solution():\n    a, b = 7, 3\n"
        "    return {'area': a * b, 'perimeter': 2 * (a + b), 'is_square': a == b}\n```"
    )
    student = FunctionBackend(lambda request: program)
    sandbox = InProcessCodeRunner()
    pal = resolve_method("pal", task=spec)
    prepared = await pal.prepare(
        [], teacher=None, student=student, sandbox=sandbox, budget=None, seed=0
    )
    row = {"id": "r", "text": "7 by 3", "area": 21, "perimeter": 20, "is_square": False}
    prediction = await pal.predict(prepared, row, student=student, sandbox=sandbox, seed=0)
    assert score_prediction(row, prediction, task=spec).correct

    replies = iter(
        ["area: 21\nperimeter: 20\nis_square: no"] * 2 + ["area: 22\nperimeter: 20\nis_square: yes"]
    )
    voter = FunctionBackend(lambda request: next(replies))
    sc = resolve_method("self-consistency", {"k": 3}, task=spec)
    prepared = await sc.prepare(
        [], teacher=None, student=voter, sandbox=sandbox, budget=None, seed=0
    )
    voted = await sc.predict(prepared, row, student=voter, sandbox=sandbox, seed=0)
    assert voted.outputs == {"area": 21, "perimeter": 20, "is_square": False}


async def test_student_alone_runs_the_minimal_or_given_plan() -> None:
    spec = get_family("rectangle").spec()
    method = resolve_method("student", {"draft": "minimal"}, task=spec)
    assert not method.uses_teacher
    student = FunctionBackend(lambda r: {"area": 21, "perimeter": 20, "is_square": False})
    prepared = await method.prepare(
        [], teacher=None, student=student, sandbox=None, budget=None, seed=0
    )
    assert prepared.report["source"] == "minimal"
    row = {"id": "r", "text": "7 by 3", "area": 21, "perimeter": 20, "is_square": False}
    prediction = await method.predict(prepared, row, student=student, sandbox=None, seed=0)
    assert score_prediction(row, prediction, task=spec).correct
    given = typed_direct_plan(spec, name="mine")
    method = resolve_method("student", task=spec, plan=given)
    assert not method.uses_teacher
    prepared = await method.prepare(
        [], teacher=None, student=student, sandbox=None, budget=None, seed=0
    )
    assert prepared.plan is given and prepared.report["source"] == "user plan"
    with pytest.raises(Exception, match="teacher"):
        await resolve_method("student", task=spec).prepare(
            [], teacher=None, student=student, sandbox=None, budget=None, seed=0
        )


def test_prepared_round_trips_the_task_for_workers() -> None:
    spec = get_family("review-sentiment").spec()
    data = Prepared(method="cot", plan=typed_cot_plan(spec), task=spec).to_dict()
    assert TaskSpec.from_metadata(data["task"]) == spec


async def test_ape_optimises_a_typed_prompt() -> None:
    spec = get_family("date-add").spec()
    seen: list[str] = []

    def teacher(request: ChatRequest) -> dict[str, str]:
        seen.append(request.messages[-1].content)
        return {"instruction": "Count the days month by month, then give the ISO date."}

    def student(request: ChatRequest) -> str:
        system = request.messages[0].content
        return "Answer: 2024-03-08" if system.startswith("Count the days") else "Answer: never"

    method = resolve_method("ape", {"num_candidates": 1, "resample_rounds": 0}, task=spec)
    rows = [{"id": "t", "text": "3 days after 2024-03-05?", "answer": "2024-03-08"}]
    prepared = await method.prepare(
        rows,
        teacher=FunctionBackend(teacher),
        student=FunctionBackend(student),
        sandbox=InProcessCodeRunner(),  # type: ignore[arg-type]
        budget=None,
        seed=0,
    )
    assert "this task: Add the given number of days" in seen[0]
    assert "answer: 2024-03-08" in seen[0]
    assert prepared.task == spec and prepared.report["best"]["score"] == 1.0
    assert prepared.plan is not None and prepared.plan.nodes[0].system.startswith("Count the days")
    start = prepared.report["candidates"][0]
    assert start["origin"] == "zero-shot CoT" and start["score"] == 0.0
