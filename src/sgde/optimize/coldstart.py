"""Cold start: the teacher drafts the initial plan from the task text and the examples.

The draft is one student LLM node answering the task with a JSON output (one number per
output field). The teacher writes the node's name, system prompt and template
(JSON-constrained); the assembled plan must pass ``check_plan`` and read every input, else
the validator's messages go back to the teacher (bounded retries). When no draft validates,
a deterministic minimal plan is used so that compile never dies on a bad draft; the report
records which happened.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from sgde.errors import CompileError
from sgde.optimize.operators.base import validated
from sgde.optimize.settings import CompileSettings
from sgde.optimize.teacher import Teacher, TeacherOutputError, render_prompt
from sgde.plan import template_variables
from sgde.plan.model import LlmNode, Plan

__all__ = ["COLDSTART_SCHEMA", "cold_start", "infer_inputs", "minimal_plan"]

COLDSTART_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 60},
        "system": {"type": "string", "minLength": 1, "maxLength": 2000},
        "prompt": {"type": "string", "minLength": 1, "maxLength": 4000},
    },
    "required": ["name", "system", "prompt"],
    "additionalProperties": False,
}


def infer_inputs(rows: Sequence[Mapping[str, Any]], settings: CompileSettings) -> list[str]:
    """Plan inputs of a cold start: ``settings.input_fields`` or the rows' text fields.

    Raises:
        CompileError: when no input can be found.
    """
    if settings.input_fields:
        return list(settings.input_fields)
    skip = set(settings.output_fields) | {"id", "template_id"}
    names = [k for k, v in rows[0].items() if isinstance(v, str) and k not in skip] if rows else []
    if not names:
        raise CompileError(
            "cannot tell the task's inputs from the training rows",
            hint="give the rows a text field such as 'question', or set input_fields",
        )
    return names


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return (slug or "task")[:40]


def _plan(
    name: str, task: str, inputs: list[str], outputs: Sequence[str], system: str, prompt: str
) -> Plan:
    node = LlmNode(
        id="solve",
        model="student",
        description="answers the task",
        inputs={v: f"input.{v}" for v in inputs},
        system=system,
        prompt=prompt,
        output_schema={
            "type": "object",
            "properties": {o: {"type": "number"} for o in outputs},
            "required": list(outputs),
            "additionalProperties": False,
        },
        temperature=0.0,
        max_tokens=24 + 16 * len(outputs),
    )
    return Plan(
        name=_slug(name),
        description=task,
        inputs={v: "string" for v in inputs},
        outputs={o: f"solve.{o}" for o in outputs},
        nodes=[node],
    )


def minimal_plan(task: str, inputs: list[str], outputs: Sequence[str]) -> Plan:
    """The deterministic fallback plan: one student node, a generic instruction."""
    safe_task = task.replace("{", "(").replace("}", ")")
    fields = ", ".join(f'"{o}": <number>' for o in outputs)
    lines = [f"{v}: {{{{ {v} }}}}" for v in inputs]
    prompt = "\n".join([*lines, "", f"Answer with JSON {{{fields}}}."])
    return _plan(task, task, inputs, outputs, f"Solve the task. {safe_task}".strip(), prompt)


async def cold_start(
    task: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    teacher: Teacher,
    settings: CompileSettings,
) -> tuple[Plan, dict[str, Any]]:
    """Draft the initial plan; returns it and a record for the report.

    The record says whether the teacher's draft was used (``"teacher"``) or the fallback
    (``"fallback"``) and lists the validator messages of rejected drafts.
    """
    inputs = infer_inputs(rows, settings)
    outputs = list(settings.output_fields)
    examples = [
        {"inputs": {v: r.get(v) for v in inputs}, "outputs": {o: r.get(o) for o in outputs}}
        for r in rows[:3]
    ]
    rejected: list[list[str]] = []
    box: dict[str, Plan] = {}

    def check(answer: dict[str, Any]) -> str | None:
        try:
            used = template_variables(answer["prompt"])
        except Exception as exc:  # PlanError; message goes back to the teacher
            return f"the prompt template does not parse: {exc}"
        missing = [v for v in inputs if v not in used]
        if missing:
            msg = f"the prompt must insert {', '.join('{{ ' + v + ' }}' for v in missing)}"
            rejected.append([msg])
            return msg
        draft = _plan(answer["name"], task, inputs, outputs, answer["system"], answer["prompt"])
        checked, problems = validated(draft)
        if checked is None:
            rejected.append(problems)
            return "the drafted plan is invalid: " + "; ".join(problems)
        box["plan"] = checked
        return None

    prompt = render_prompt(
        "coldstart.j2",
        task=task,
        examples=examples,
        variables=inputs,
        outputs=outputs,
        problems=[],
    )
    try:
        await teacher.json(
            prompt,
            COLDSTART_SCHEMA,
            purpose="coldstart",
            check=check,
            retries=settings.coldstart_retries,
        )
    except TeacherOutputError as exc:
        record = {"source": "fallback", "rejected_drafts": rejected, "error": exc.message}
        return minimal_plan(task, inputs, outputs), record
    return box["plan"], {"source": "teacher", "rejected_drafts": rejected}
