"""Cold start: the teacher drafts the initial plan from the task text and the examples.

The draft is one student LLM node answering the task with a JSON output typed from the
task's outputs (:class:`~sgde.task.TaskSpec`: a string label stays a string, a date an ISO
date, several outputs are allowed). The teacher writes the node's name, system prompt and template
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
from sgde.plan.model import InputType, LlmNode, Plan
from sgde.planfile import template_variables
from sgde.task import FieldType, TaskSpec

__all__ = ["COLDSTART_SCHEMA", "cold_start", "minimal_plan", "plan_input_type"]

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


def plan_input_type(ftype: FieldType) -> InputType:
    """The plan-level type of a task input (plans know JSON types; dates, enums are text)."""
    kinds: dict[str, InputType] = {
        "integer": "integer",
        "number": "number",
        "boolean": "boolean",
        "list": "array",
    }
    return kinds.get(ftype.kind, "string")


def _output_schema(task: TaskSpec) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {o: dict(t.json_schema()) for o, t in task.outputs.items()},
        "required": list(task.outputs),
        "additionalProperties": False,
    }


def _describe_outputs(task: TaskSpec) -> list[str]:
    return [f"{o} ({t})" for o, t in task.outputs.items()]


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return (slug or "task")[:40]


def _plan(name: str, task: TaskSpec, system: str, prompt: str) -> Plan:
    outputs = list(task.outputs)
    long_outputs = sum(1 for t in task.outputs.values() if t.kind in ("list", "string"))
    node = LlmNode(
        id="solve",
        model="student",
        description="answers the task",
        inputs={v: f"input.{v}" for v in task.inputs},
        system=system,
        prompt=prompt,
        output_schema=_output_schema(task),
        temperature=0.0,
        max_tokens=24 + 16 * len(outputs) + 48 * long_outputs,
    )
    return Plan(
        name=_slug(name),
        description=task.description,
        inputs={v: plan_input_type(t) for v, t in task.inputs.items()},
        outputs={o: f"solve.{o}" for o in outputs},
        nodes=[node],
        metadata={"task": task.to_metadata()},
    )


def minimal_plan(task: TaskSpec) -> Plan:
    """The deterministic fallback plan: one student node, a generic instruction."""
    safe_task = task.description.replace("{", "(").replace("}", ")")
    fields = ", ".join(f'"{o}": <{t}>' for o, t in task.outputs.items())
    lines = [f"{v}: {{{{ {v} }}}}" for v in task.inputs]
    prompt = "\n".join([*lines, "", f"Answer with JSON {{{fields}}}."])
    return _plan(task.description, task, f"Solve the task. {safe_task}".strip(), prompt)


async def cold_start(
    task: TaskSpec,
    rows: Sequence[Mapping[str, Any]],
    *,
    teacher: Teacher,
    settings: CompileSettings,
) -> tuple[Plan, dict[str, Any]]:
    """Draft the initial plan of ``task``; returns it and a record for the report.

    The record says whether the teacher's draft was used (``"teacher"``) or the fallback
    (``"fallback"``) and lists the validator messages of rejected drafts.

    Raises:
        CompileError: when the task has no input field.
    """
    inputs = list(task.inputs)
    outputs = list(task.outputs)
    if not inputs:
        raise CompileError(
            "the task has no input field",
            hint="training rows need at least one input field besides the output(s)",
        )
    examples = [
        {"inputs": {v: r.get(v) for v in inputs}, "outputs": {o: r.get(o) for o in outputs}}
        for r in rows[:3]
    ]
    rejected: list[list[str]] = []
    box: dict[str, Plan] = {}
    box_notes: list[str] = []

    def check(answer: dict[str, Any]) -> str | None:
        try:
            used = template_variables(answer["prompt"])
        except Exception as exc:  # PlanError; message goes back to the teacher
            return f"the prompt template does not parse: {exc}"
        missing = [v for v in inputs if v not in used]
        template = answer["prompt"]
        if missing and not rejected:
            msg = f"the prompt must insert {', '.join('{{ ' + v + ' }}' for v in missing)}"
            rejected.append([msg])
            return msg
        if missing:
            # A second draft that still leaves inputs out: show them after its instruction
            # rather than discard the draft (small teachers often write a prompt without them).
            lines = [f"{v.replace('_', ' ').capitalize()}: {{{{ {v} }}}}" for v in missing]
            template = template.rstrip() + "\n\n" + "\n".join(lines)
            box_notes.append(f"appended the input(s) {', '.join(missing)} to the draft's prompt")
        draft = _plan(answer["name"], task, answer["system"], template)
        checked, problems = validated(draft)
        if checked is None:
            rejected.append(problems)
            return "the drafted plan is invalid: " + "; ".join(problems)
        box["plan"] = checked
        return None

    prompt = render_prompt(
        "coldstart.j2",
        task=task.description,
        examples=examples,
        variables=inputs,
        outputs=_describe_outputs(task),
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
        failed = {"source": "fallback", "rejected_drafts": rejected, "error": exc.message}
        return minimal_plan(task), failed
    record: dict[str, Any] = {"source": "teacher", "rejected_drafts": rejected}
    if box_notes:
        record["repairs"] = box_notes[-1:]
    return box["plan"], record
