"""The teacher reads and describes typed parameters (grammar-constrained JSON calls).

* :func:`teacher_extract` — the teacher reads typed params from one row's inputs, with one
  worked example: alignment where positions do not line up.
* :func:`describe_params` — names and descriptions of params that hold across phrasings
  (for the student's typed extraction schema), checked: a description that is not a phrase
  or quotes a training value falls back; only generic names (``string_2``) are replaced.
"""

from __future__ import annotations

import ast
import keyword
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sgde.optimize.sources.context import row_inputs, task_context, value_text
from sgde.optimize.teacher import Teacher, TeacherOutputError, render_prompt
from sgde.task import FieldType, TaskSpec
from sgde.task.types import TaskValueError

if TYPE_CHECKING:
    from sgde.optimize.sources.verified import Program

__all__ = ["describe_params", "renamed", "teacher_extract"]


async def teacher_extract(
    teacher: Teacher,
    task: TaskSpec,
    params: Mapping[str, FieldType],
    descriptions: Mapping[str, str],
    example: Mapping[str, Any],
    example_values: Mapping[str, Any],
    inputs: Mapping[str, Any],
    *,
    purpose: str = "extract",
    convert: bool = False,
) -> dict[str, Any] | None:
    """The teacher reads typed ``params`` from ``inputs`` (grammar-constrained JSON, with
    one worked example when ``example`` is not empty); ``None`` when its answer stays
    malformed or mistyped. Values are copied as written, or with ``convert`` given in the
    unit their description names (a weight the case writes in grams, described in kg), else
    in the unit the task's rule uses."""
    if not params:
        return {}
    schema = {
        "type": "object",
        "properties": {
            n: {**t.json_schema(), "description": descriptions.get(n, "")}
            for n, t in params.items()
        },
        "required": list(params),
        "additionalProperties": False,
    }
    prompt = render_prompt(
        "extract_values.j2",
        params=[
            {"name": n, "describe": t.describe(), "description": descriptions.get(n, "")}
            for n, t in params.items()
        ],
        example={k: value_text(v) for k, v in example.items()},
        example_values=value_text(dict(example_values)),
        case={k: value_text(v) for k, v in inputs.items()},
        convert=convert,
        **task_context(task),
    )
    try:
        data = await teacher.json(prompt, schema, purpose=purpose)
    except TeacherOutputError:
        return None
    out: dict[str, Any] = {}
    for n, t in params.items():
        try:
            out[n] = t.coerce(data.get(n))
        except TaskValueError:
            return None
    return out


def _hint(fallback: str, contexts: Sequence[str]) -> str:
    return f'{fallback} (in "{contexts[0]}")' if contexts else fallback


_GENERIC_NAME = re.compile(r"^(?:(?:number|string|date|numbers|value)_\d+|q\d+_number)$")
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{1,31}$")


def _good_description(text: str, name: str, values: Sequence[Mapping[str, Any] | None]) -> bool:
    """A description says what the value means: several words, no training value quoted,
    not the masked context it was shown (where the value stands is a context of its own)."""
    if len(text.split()) < 3 or "___" in text:
        return False
    lowered = f" {text.casefold()} "
    for v in values:
        value = v.get(name) if v is not None else None
        if isinstance(value, list):
            continue
        shown = str(value).casefold() if value is not None else ""
        if shown and (shown == text.casefold().strip() or f" {shown} " in lowered):
            return False
    return True


async def describe_params(
    teacher: Teacher,
    task: TaskSpec,
    rows: Sequence[Mapping[str, Any]],
    params: Mapping[str, FieldType],
    values: Sequence[Mapping[str, Any] | None],
    fallback: Mapping[str, str],
    contexts: Mapping[str, Sequence[str]] | None = None,
) -> tuple[dict[str, str], dict[str, str]]:
    """Descriptions of ``params`` that hold across phrasings, and better names.

    The teacher names and describes each param in one JSON call (it sees the fallback and
    where the value stands in the first row it occurs in, from ``contexts``, values masked);
    a description that is not a phrase or quotes a training value falls back to
    ``fallback``; a name is only taken for a generic one (``string_2``) and when it is a
    fresh snake_case identifier.

    Returns:
        ``(descriptions, renames)`` — ``renames`` maps old to new names.
    """
    if not params:
        return {}, {}
    listing = [
        {
            "name": n,
            "describe": t.describe(),
            "seen": ", ".join(value_text(v.get(n), 60) for v in values if v is not None),
            "hint": _hint(fallback.get(n, ""), (contexts or {}).get(n, ())),
        }
        for n, t in params.items()
    ]
    item = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 40},
            "description": {"type": "string", "minLength": 3, "maxLength": 240},
        },
        "required": ["name", "description"],
        "additionalProperties": False,
    }
    schema = {
        "type": "object",
        "properties": dict.fromkeys(params, item),
        "required": list(params),
        "additionalProperties": False,
    }
    cases = [value_text(row_inputs(task, r), 300) for r in rows[:6]]
    prompt = render_prompt("describe_params.j2", params=listing, cases=cases, **task_context(task))
    try:
        data = await teacher.json(prompt, schema, purpose="describe")
    except TeacherOutputError:
        return dict(fallback), {}
    descriptions: dict[str, str] = {}
    renames: dict[str, str] = {}
    taken = set(params)
    for n in params:
        raw = data.get(n)
        entry: dict[str, Any] = raw if isinstance(raw, dict) else {}
        text = " ".join(str(entry.get("description", "")).split())
        descriptions[n] = text if _good_description(text, n, values) else fallback.get(n, text)
        new = str(entry.get("name", "")).strip().lower()
        if (
            _GENERIC_NAME.match(n)
            and _IDENTIFIER.match(new)
            and not keyword.iskeyword(new)
            and new not in taken
            and new not in _NOT_PARAM_NAMES
        ):
            renames[n] = new
            taken.add(new)
    return descriptions, renames


_NOT_PARAM_NAMES = frozenset(
    {"run", "solution", "sgde_json", "sgde_compute", "value", "names", "result", "int", "list"}
)


def renamed(program: Program, renames: Mapping[str, str]) -> Program:
    """``program`` with params renamed in its code, types, values and descriptions."""
    if not renames:
        return program
    try:
        tree = ast.parse(program.code)
    except (SyntaxError, ValueError, RecursionError):
        return program
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    used |= {a.arg for a in ast.walk(tree) if isinstance(a, ast.arg)}
    safe = {old: new for old, new in renames.items() if new not in used}
    if not safe:
        return program
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in safe:
            node.id = safe[node.id]
        elif isinstance(node, (ast.arg, ast.keyword)) and node.arg is not None:
            node.arg = safe.get(node.arg, node.arg)

    def rn(name: str) -> str:
        return safe.get(name, name)

    return replace(
        program,
        code=ast.unparse(tree) + "\n",
        params={rn(k): v for k, v in program.params.items()},
        values=[None if v is None else {rn(k): x for k, x in v.items()} for v in program.values],
        raw_inputs={rn(k): v for k, v in program.raw_inputs.items()},
        descriptions={rn(k): v for k, v in program.descriptions.items()},
        contexts={rn(k): v for k, v in program.contexts.items()},
    )
