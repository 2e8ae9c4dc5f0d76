"""The user's task as prompt context, and the outputs of teacher code read against it.

Every teacher prompt speaks of the user's task (issue 9 item 8): its description and its
input and output fields with their types. :func:`task_context` is the one place that turns a
:class:`~sgde.task.TaskSpec` into template variables; :func:`read_outputs` is the one place
that reads a code result as the task's typed outputs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sgde.task import FieldType, TaskSpec
from sgde.task.types import TaskValueError

__all__ = ["field_lines", "read_outputs", "row_inputs", "task_context", "value_text"]

_VALUE_CHARS = 600


def value_text(value: Any, limit: int = _VALUE_CHARS) -> str:
    """A value as JSON text for a prompt (cut at ``limit`` characters)."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def field_lines(fields: Mapping[str, FieldType]) -> list[dict[str, str]]:
    """``[{"name", "type", "describe"}]`` of fields, for templates."""
    return [{"name": n, "type": str(t), "describe": t.describe()} for n, t in fields.items()]


def task_context(task: TaskSpec) -> dict[str, Any]:
    """Template variables describing the task (``task``, ``inputs``, ``outputs``)."""
    return {
        "task": task.description.strip(),
        "inputs": field_lines(task.inputs),
        "outputs": field_lines(task.outputs),
        "output_example": "{"
        + ", ".join(f'"{n}": <{t.describe()}>' for n, t in task.outputs.items())
        + "}",
    }


def row_inputs(task: TaskSpec, row: Mapping[str, Any]) -> dict[str, Any]:
    """The input fields of a row (in the task's order; missing ones left out)."""
    names: Sequence[str] = list(task.inputs) or [k for k in row if k not in task.outputs]
    return {n: row[n] for n in names if n in row}


def training_cases(task: TaskSpec, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """``[{"inputs", "outputs"}]`` of the training rows as text, for the prompts that show the
    teacher the solved cases (whole-task code, designs)."""
    return [
        {
            "inputs": value_text(row_inputs(task, r), 400),
            "outputs": value_text({o: r.get(o) for o in task.outputs}),
        }
        for r in rows
    ]


def read_outputs(result: Any, outputs: Mapping[str, FieldType]) -> dict[str, Any] | str:
    """Read a code result as the task's typed outputs, or say why it cannot be read.

    A dict holding every output field is read field by field; with one output field, a
    one-key dict or a bare value is that field; with several, a list or tuple of the right
    length is read in order. Each value is coerced to its field type.
    """
    names = list(outputs)
    values: dict[str, Any]
    if isinstance(result, dict) and all(n in result for n in names):
        values = {n: result[n] for n in names}
    elif len(names) == 1:
        if isinstance(result, dict) and len(result) == 1:
            values = {names[0]: next(iter(result.values()))}
        elif isinstance(result, dict):
            return f"it returned a dict with keys {sorted(result)[:6]}, not {names[0]!r}"
        else:
            values = {names[0]: result}
    elif isinstance(result, list) and len(result) == len(names):
        values = dict(zip(names, result, strict=True))
    else:
        shown = sorted(result)[:6] if isinstance(result, dict) else value_text(result, 80)
        return f"it returned {shown}, not a dict with the fields {', '.join(names)}"
    out: dict[str, Any] = {}
    for name, value in values.items():
        try:
            out[name] = outputs[name].coerce(value)
        except TaskValueError as exc:
            return f"field {name!r}: {exc}"
    return out
