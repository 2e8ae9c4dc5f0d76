"""A task: its description, typed input and output fields, and how rows are checked.

:func:`infer_task` reads a :class:`TaskSpec` from training rows (which fields are inputs,
which are outputs, and their types); options such as ``--output due:date`` override it
(:func:`parse_field_option`). A spec travels with a compiled plan in
``plan.metadata["task"]`` (:meth:`TaskSpec.to_metadata`).
"""

from __future__ import annotations

import keyword
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from sgde.errors import TaskDataError, TaskSpecError
from sgde.task.infer import infer_type
from sgde.task.types import FieldType, TaskValueError

__all__ = [
    "OUTPUT_NAMES",
    "TaskSpec",
    "declared_outputs",
    "infer_task",
    "parse_field_option",
    "row_where",
]

OUTPUT_NAMES = ("answer", "output", "label", "target", "result", "y")
"""Field names taken as the output, in this order of preference, when none is named."""

IGNORED_NAMES = ("id",)
"""Fields left out of the default split (besides names starting with ``_``)."""

METADATA_VERSION = 1


def row_where(where: str, number: int) -> str:
    """Where a row is, for messages: ``"rows.jsonl:3"`` (``"row 3"`` for ``where="rows"``)."""
    return f"row {number}" if where == "rows" else f"{where}:{number}"


def _check_name(name: str, role: str) -> None:
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise TaskSpecError(
            f"{role} field {name!r} is not a valid name",
            hint="field names are identifiers (letters, digits and _, not starting with a "
            "digit, not a Python keyword): rename the field in the rows",
        )


def _as_type(name: str, value: str | FieldType) -> FieldType:
    if isinstance(value, FieldType):
        return value
    try:
        return FieldType.parse(value)
    except TaskSpecError as exc:
        raise TaskSpecError(f"field '{name}': {exc.message}", hint=exc.hint) from None


class TaskSpec(BaseModel):
    """What a task reads and produces.

    Attributes:
        description: The user's task text.
        inputs: Input fields and their types, in order.
        outputs: Output fields and their types, in order (at least one).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    description: str
    inputs: dict[str, FieldType]
    outputs: dict[str, FieldType]

    @field_validator("inputs", "outputs", mode="before")
    @classmethod
    def _parse_types(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: _as_type(str(k), v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _check(self) -> TaskSpec:
        if not self.outputs:
            raise TaskSpecError(
                "a task needs at least one output field",
                hint="name the output with --output NAME[:TYPE]",
            )
        for name in self.inputs:
            _check_name(name, "input")
        for name in self.outputs:
            _check_name(name, "output")
        both = [n for n in self.inputs if n in self.outputs]
        if both:
            raise TaskSpecError(
                f"field '{both[0]}' is both an input and an output",
                hint="a field is either read (--input) or produced (--output)",
            )
        return self

    def field_type(self, name: str) -> FieldType:
        """The type of an input or output field (KeyError when it is neither)."""
        if name in self.outputs:
            return self.outputs[name]
        return self.inputs[name]

    def to_metadata(self) -> dict[str, Any]:
        """JSON-able form, stored in ``plan.metadata["task"]`` (types as their spelling)."""
        return {
            "version": METADATA_VERSION,
            "description": self.description,
            "inputs": {name: str(t) for name, t in self.inputs.items()},
            "outputs": {name: str(t) for name, t in self.outputs.items()},
        }

    @classmethod
    def from_metadata(cls, data: Any) -> TaskSpec:
        """Read a spec written by :meth:`to_metadata`.

        Raises:
            TaskSpecError: when the data is not a task spec.
        """
        if not isinstance(data, Mapping):
            raise TaskSpecError(
                f"task metadata must be a mapping, got {type(data).__name__}",
                hint="plan.metadata['task'] is written by the compiler; recompile the plan",
            )
        version = data.get("version", METADATA_VERSION)
        if version != METADATA_VERSION:
            raise TaskSpecError(
                f"task metadata version {version!r} is not supported (this sgde reads "
                f"{METADATA_VERSION})",
                hint="upgrade sgde or recompile the plan",
            )
        for key in ("inputs", "outputs"):
            if not isinstance(data.get(key, {}), Mapping):
                raise TaskSpecError(f"task metadata '{key}' must map field names to types")
        try:
            return cls(
                description=str(data.get("description", "")),
                inputs=dict(data.get("inputs", {})),
                outputs=dict(data.get("outputs", {})),
            )
        except TaskSpecError:
            raise
        except ValueError as exc:
            raise TaskSpecError(f"invalid task metadata: {exc}") from None

    def check_row(
        self, row: Mapping[str, Any], where: str, *, outputs: bool = True
    ) -> dict[str, Any]:
        """A validated, coerced copy of a row.

        Every input (and, with ``outputs``, every output) must be present, not null and of
        its type; values are normalised by :meth:`FieldType.coerce`. Other keys are kept
        unchanged.

        Args:
            row: The row.
            where: Where the row is, for messages (``"rows.jsonl:3"``).
            outputs: Whether output fields are required (False for rows to run, not score).

        Raises:
            TaskDataError: naming ``where`` and the field.
        """
        if not isinstance(row, Mapping):
            raise TaskDataError(
                f"a row must be a JSON object, got {type(row).__name__}",
                where=where,
                hint='write one JSON object per line, e.g. {"question": "...", "answer": "..."}',
            )
        out = dict(row)
        fields = list(self.inputs.items())
        if outputs:
            fields += list(self.outputs.items())
        for name, ftype in fields:
            role = "output" if name in self.outputs else "input"
            if name not in row:
                raise TaskDataError(
                    f"{role} is missing",
                    where=where,
                    field=name,
                    hint=f"give every row a value for '{name}' ({ftype.describe()})",
                )
            value = row[name]
            if value is None:
                raise TaskDataError(
                    f"{role} is null",
                    where=where,
                    field=name,
                    hint=f"give a value for '{name}' ({ftype.describe()}) or drop the row",
                )
            try:
                out[name] = ftype.coerce(value)
            except TaskValueError as exc:
                raise TaskDataError(
                    exc.message,
                    where=where,
                    field=name,
                    hint=f"fix the row, or declare another type with --{role} {name}:TYPE",
                ) from None
        return out

    def plan_inputs(self) -> dict[str, str]:
        """The plan's ``inputs`` declaration: each input's plan type (dates and labels travel
        as strings, lists as arrays; see :meth:`FieldType.plan_type`)."""
        return {name: t.plan_type() for name, t in self.inputs.items()}

    def output_schema(self) -> dict[str, Any]:
        """JSON schema (an object) of all outputs, for a student's structured output."""
        return {
            "type": "object",
            "properties": {name: t.json_schema() for name, t in self.outputs.items()},
            "required": list(self.outputs),
        }

    def describe(self) -> str:
        """The fields, one line each, for the user (``"in   question: string (text)"``)."""
        lines = [f"in   {n}: {t} ({t.describe()})" for n, t in self.inputs.items()]
        lines += [f"out  {n}: {t} ({t.describe()})" for n, t in self.outputs.items()]
        return "\n".join(lines)


def declared_outputs(metadata: Mapping[str, Any]) -> dict[str, FieldType]:
    """The output types a plan declares in ``metadata["task"]`` (empty when it has none).

    Raises:
        TaskSpecError: when ``metadata["task"]`` is present but not a task spec.
    """
    data = metadata.get("task")
    if data is None:
        return {}
    return dict(TaskSpec.from_metadata(data).outputs)


def parse_field_option(text: str) -> tuple[str, FieldType | None]:
    """Read ``--input NAME`` / ``--output NAME[:TYPE]`` (``"due:date"``, ``"tags:set[string]"``).

    Returns:
        ``(name, type)``, the type None when not given.

    Raises:
        TaskSpecError: for an empty or invalid name or an unknown type.
    """
    name, sep, type_text = text.partition(":")
    name = name.strip()
    if not name:
        raise TaskSpecError(
            f"field option {text!r} has no name", hint="write NAME or NAME:TYPE, e.g. due:date"
        )
    _check_name(name, "the")
    if not sep:
        return name, None
    if not type_text.strip():
        raise TaskSpecError(
            f"field option {text!r} has no type after ':'", hint="write NAME:TYPE, e.g. due:date"
        )
    return name, _as_type(name, type_text.strip())


def _all_keys(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every field of the rows, in order of first appearance."""
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            if isinstance(key, str):
                seen.setdefault(key, None)
    return list(seen)


def _default_split(
    rows: Sequence[Mapping[str, Any]],
    inputs: Sequence[str] | None,
    outputs: Sequence[str] | None,
) -> tuple[list[str], list[str]]:
    if inputs is not None and outputs is not None:
        return list(inputs), list(outputs)
    keys = [k for k in _all_keys(rows) if not k.startswith("_") and k not in IGNORED_NAMES]
    if outputs is not None:
        outs = list(outputs)
        return [k for k in keys if k not in outs], outs
    if inputs is not None:
        ins = list(inputs)
        return ins, [k for k in keys if k not in ins]
    first = [k for k in rows[0] if k in keys]
    output = next((n for n in OUTPUT_NAMES if n in keys), None)
    if output is None:
        if not first:
            return [], []
        output = first[-1]
    return [k for k in keys if k != output], [output]


def infer_task(
    rows: Sequence[Mapping[str, Any]],
    *,
    description: str,
    inputs: Sequence[str] | None = None,
    outputs: Sequence[str] | None = None,
    types: Mapping[str, str | FieldType] | None = None,
    where: str = "rows",
) -> TaskSpec:
    """Read a task's fields and types from its training rows.

    Which fields: with neither ``inputs`` nor ``outputs``, the output is the first field
    named ``answer``, ``output``, ``label``, ``target``, ``result`` or ``y``, else the last
    field of the first row, and every other field (of any row) is an input. With only
    ``outputs`` (only ``inputs``) given, the other fields are the inputs (outputs). A field
    named ``id`` or starting with ``_`` is left out unless named.

    Which types: :func:`~sgde.task.types.infer_type` over each field's values (outputs may
    become an enum), unless ``types`` names one.

    Args:
        rows: The training rows (at least one).
        description: The task text.
        inputs: Input field names (``--input``).
        outputs: Output field names (``--output``).
        types: Type overrides by field name, as spellings (``"date"``) or types.
        where: The rows' file name, for messages (``"rows.jsonl"`` -> ``rows.jsonl:3``).

    Raises:
        TaskDataError: a field missing or null in a row, or of another type than in the
            other rows (naming the row, 1-based, and the field).
        TaskSpecError: a named field that is not in the rows, an invalid name or type.
    """
    if not rows:
        raise TaskDataError(
            "no rows to infer the task from",
            where=where if where != "rows" else None,
            hint="give at least one training row",
        )
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise TaskDataError(
                f"a row must be a JSON object, got {type(row).__name__}",
                where=row_where(where, i + 1),
            )
    overrides = {name: _as_type(name, t) for name, t in (types or {}).items()}
    ins, outs = _default_split(rows, inputs, outputs)
    if not outs:
        raise TaskDataError(
            "the rows have no field to use as the output",
            where=row_where(where, 1),
            hint="name the output with --output NAME[:TYPE]",
        )
    if not ins:
        raise TaskDataError(
            f"the rows have no input field besides the output {', '.join(outs)}",
            where=row_where(where, 1),
            hint="each row needs the task's inputs and its expected outputs",
        )
    named = {*ins, *outs}
    known = _all_keys(rows)
    for name in [*ins, *outs, *overrides]:
        if name not in known:
            raise TaskSpecError(
                f"field '{name}' is in no row"
                + (f" of {where}" if where != "rows" else "")
                + "; the rows' fields are "
                + ", ".join(known),
                hint="name fields as the rows spell them",
            )
    extra = [n for n in overrides if n not in named]
    if extra:
        raise TaskSpecError(
            f"a type is given for '{extra[0]}', which is neither an input nor an output",
            hint="name it with --input or --output too",
        )
    for name in named:
        _check_name(name, "output" if name in outs else "input")
    field_types: dict[str, FieldType] = {}
    for name in [*ins, *outs]:
        values = _values(rows, name, where)
        if name in overrides:
            field_types[name] = overrides[name]
            continue
        try:
            field_types[name] = infer_type(values, labels=name in outs)
        except TaskValueError as exc:
            raise TaskDataError(
                exc.message,
                where=row_where(where, (exc.index or 0) + 1),
                field=name,
                hint=f"make '{name}' the same type in every row, or declare its type with "
                f"--{'output' if name in outs else 'input'} {name}:TYPE",
            ) from None
    spec = TaskSpec(
        description=description,
        inputs={n: field_types[n] for n in ins},
        outputs={n: field_types[n] for n in outs},
    )
    for i, row in enumerate(rows):
        spec.check_row(row, row_where(where, i + 1))
    return spec


def _values(rows: Sequence[Mapping[str, Any]], name: str, where: str) -> list[Any]:
    values = []
    for i, row in enumerate(rows):
        if name not in row or row[name] is None:
            have = "missing" if name not in row else "null"
            other = next((j for j, r in enumerate(rows) if r.get(name) is not None), None)
            also = f" ({row_where(where, other + 1)} has it)" if other is not None else ""
            raise TaskDataError(
                f"the value is {have}{also}",
                where=row_where(where, i + 1),
                field=name,
                hint="give every row the same fields, or drop the row",
            )
        values.append(row[name])
    return values
