"""Structured teacher calls: schema validation, retry with the error, fallback error."""

from __future__ import annotations

import pytest

from sgde.errors import BudgetExceeded
from sgde.optimize.teacher import Teacher, TeacherOutputError, render_prompt
from sgde.runtime.backend import Capabilities
from sgde.testing import ScriptedBackend

SCHEMA = {
    "type": "object",
    "properties": {"n": {"type": "integer"}},
    "required": ["n"],
    "additionalProperties": False,
}


async def test_malformed_json_is_retried_with_the_error() -> None:
    backend = ScriptedBackend(["not json at all", '{"n": "seven"}', 'Sure! {"n": 7}'])
    teacher = Teacher(backend, retries=2)
    assert await teacher.json("give n", SCHEMA, purpose="test") == {"n": 7}
    assert backend.calls == 3
    retry_prompt = backend.requests[2].messages[-1].content
    assert "invalid" in retry_prompt and "'seven' is not of type 'integer'" in retry_prompt
    assert teacher.usage.calls == 3
    assert teacher.calls[-1].attempts == 3


async def test_malformed_after_all_retries_raises_recoverable_error() -> None:
    teacher = Teacher(ScriptedBackend(["{", "[]"]), retries=1)
    with pytest.raises(TeacherOutputError, match="no valid JSON for test after 2 attempts"):
        await teacher.json("give n", SCHEMA, purpose="test")
    assert teacher.calls[-1].ok is False


async def test_a_raw_newline_inside_a_string_is_read_not_retried() -> None:
    # the 1.5B teacher writes multi-line prompts with raw newlines inside JSON strings
    schema = {
        "type": "object",
        "properties": {"prompt": {"type": "string"}},
        "required": ["prompt"],
    }
    backend = ScriptedBackend(['{"prompt": "Rules first.\n\nText: {{ text }}"}'])
    teacher = Teacher(backend, retries=0)
    answer = await teacher.json("rewrite", schema, purpose="test")
    assert answer == {"prompt": "Rules first.\n\nText: {{ text }}"}
    assert backend.calls == 1


async def test_semantic_check_feeds_back_like_a_schema_error() -> None:
    backend = ScriptedBackend([{"n": 3}, {"n": 4}])
    teacher = Teacher(backend)
    answer = await teacher.json(
        "even n", SCHEMA, purpose="test", check=lambda d: None if d["n"] % 2 == 0 else "odd"
    )
    assert answer == {"n": 4}
    assert "odd" in backend.requests[1].messages[-1].content


async def test_schema_sent_only_to_backends_that_constrain() -> None:
    plain = ScriptedBackend([{"n": 1}])
    await Teacher(plain).json("n", SCHEMA, purpose="t")
    assert plain.requests[0].json_schema is None
    assert "JSON object only" in plain.requests[0].messages[-1].content
    constrained = ScriptedBackend([{"n": 1}], capabilities=Capabilities(json_schema=True))
    await Teacher(constrained).json("n", SCHEMA, purpose="t")
    assert constrained.requests[0].json_schema == SCHEMA


async def test_length_limits_are_validated_but_not_sent_as_grammar() -> None:
    schema = {
        "type": "object",
        "properties": {"s": {"type": "string", "maxLength": 3}},
        "required": ["s"],
    }
    backend = ScriptedBackend(
        [{"s": "toolong"}, {"s": "ok"}], capabilities=Capabilities(json_schema=True)
    )
    assert await Teacher(backend).json("s", schema, purpose="t") == {"s": "ok"}
    assert "maxLength" not in str(backend.requests[0].json_schema)
    assert "too long" in backend.requests[1].messages[-1].content


async def test_budget_exceeded_is_never_swallowed() -> None:
    teacher = Teacher(ScriptedBackend([BudgetExceeded("out of tokens")]))
    with pytest.raises(BudgetExceeded):
        await teacher.json("n", SCHEMA, purpose="t")


async def test_code_call_strips_fences() -> None:
    teacher = Teacher(ScriptedBackend(["Here:\n```python\ndef solution():\n    return 1\n```"]))
    assert await teacher.code("write", purpose="solve") == "def solution():\n    return 1\n"


def test_prompts_are_package_data() -> None:
    text = render_prompt("solve.j2", text="Two apples.", previous="", feedback="")
    assert "Problem: Two apples." in text and "def solution" in text


@pytest.mark.parametrize(
    ("template", "extra"),
    [
        ("solve_row.j2", {"case": {"question": '"Add 3 days to 2024-01-05."'}}),
        ("solve_row_plan.j2", {"case": {"question": '"Add 3 days to 2024-01-05."'}}),
        (
            "whole_task.j2",
            {"cases": [{"inputs": '{"question": "..."}', "outputs": '{"due": "2024-01-08"}'}]},
        ),
        (
            "extract_values.j2",
            {
                "params": [{"name": "days", "describe": "an integer", "description": "days"}],
                "example": {"question": '"..."'},
                "example_values": '{"days": 3}',
                "case": {"question": '"..."'},
                "convert": False,
            },
        ),
        (
            "describe_params.j2",
            {"params": [{"name": "days", "describe": "an integer", "seen": "3, 4"}], "cases": []},
        ),
        (
            "repair_program.j2",
            {"code": "def solution(days): ...", "params": ["days"], "cases": []},
        ),
        (
            "parser.j2",
            {
                "fields": [{"name": "days", "describe": "an integer", "description": "days"}],
                "cases": [],
                "params": ["question"],
            },
        ),
    ],
)
def test_source_prompts_speak_of_the_users_task(template: str, extra: dict) -> None:
    from sgde.optimize.sources.context import task_context
    from sgde.task import TaskSpec

    task = TaskSpec(
        description="Give the due date of a loan.",
        inputs={"question": "string"},
        outputs={"due": "date", "late": "boolean"},
    )
    text = render_prompt(template, **task_context(task), **extra)
    assert "Task: Give the due date of a loan." in text
    assert "- due: a date (YYYY-MM-DD)" in text and "- late: a boolean" in text
    assert "word problem" not in text.lower() and "numeric answer" not in text.lower()
