"""A quantity the cases write in different units: a unit field, and the conversion in code.

A design's ``run`` expects each number in one unit (the one its rule uses: a price per kg
wants kg), and a reader copies the number as the case writes it. When a case writes the
weight in grams (``a 17400 g box``), the copied 17400 fails where the rows written in kg
verify. The design prompt asks the teacher for a unit field in that case; a small teacher
rarely writes one, and its repairs rarely add one.

:func:`rescale` finds such a field from the failing rows themselves: for a number field,
the word after the number in each row's text names a unit sgde knows (:data:`UNITS`), all of
one dimension; the rows that verify fix the unit ``run`` expects; converting the failing
rows' numbers to it must then make ``run`` verify on every row (the caller checks that in the
sandbox). :func:`with_units` writes the program: a unit field per rescaled number (what the
reader copies next to it) and a ``run`` that converts before the rule. A unit no row wrote
but that the table knows converts too; one the table does not know leaves the number as
copied.

The table is hand-written rather than taken from a units library (``pint``): the conversion
runs inside the sandbox, where teacher-facing code imports only the standard library, and
it needs a few dozen everyday units, not a units system.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sgde.optimize.sources.code import program_source, wrap_run
from sgde.optimize.sources.context import row_inputs
from sgde.optimize.sources.verified import TEXT, Program, verify_program
from sgde.runtime.calls import CodeRunner
from sgde.task import FieldType, Metric, TaskSpec

__all__ = [
    "UNITS",
    "Rescaled",
    "normal_unit",
    "rescale",
    "unit_after",
    "unit_fields_program",
    "with_units",
]

# (dimension, factor to the dimension's base unit, spellings in lower case)
_TABLE: tuple[tuple[str, float, str], ...] = (
    ("mass", 0.001, "mg milligram milligrams"),
    ("mass", 1.0, "g gr gram grams"),
    ("mass", 1000.0, "kg kgs kilo kilos kilogram kilograms"),
    ("mass", 1_000_000.0, "t ton tons tonne tonnes"),
    ("mass", 453.59237, "lb lbs pound pounds"),
    ("mass", 28.349523125, "oz ounce ounces"),
    ("length", 0.001, "mm millimetre millimetres millimeter millimeters"),
    ("length", 0.01, "cm centimetre centimetres centimeter centimeters"),
    ("length", 1.0, "m metre metres meter meters"),
    ("length", 1000.0, "km kilometre kilometres kilometer kilometers"),
    ("length", 0.0254, "in inch inches"),
    ("length", 0.3048, "ft foot feet"),
    ("length", 0.9144, "yd yard yards"),
    ("length", 1609.344, "mi mile miles"),
    ("volume", 0.001, "ml millilitre millilitres milliliter milliliters"),
    ("volume", 0.01, "cl centilitre centilitres centiliter centiliters"),
    ("volume", 1.0, "l litre litres liter liters"),
    ("time", 1.0, "s sec secs second seconds"),
    ("time", 60.0, "min mins minute minutes"),
    ("time", 3600.0, "h hr hrs hour hours"),
    ("time", 86400.0, "day days"),
    ("time", 604800.0, "week weeks"),
)
# unit as written (lower case, no trailing dot) -> (dimension, factor to the dimension's base)
UNITS: dict[str, tuple[str, float]] = {
    unit: (dimension, factor) for dimension, factor, names in _TABLE for unit in names.split()
}

# The one definition of "the unit written after a number": run in-process to find the unit
# fields of the training rows, and written into the compiled code, which runs it in the
# sandbox on each case's text.
_UNIT_AFTER = r"""
def sgde_unit_after(text, value, units):
    found = set()
    pattern = r"(?<![\d.])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*-?\s*([A-Za-z]+\.?))?"
    for m in re.finditer(pattern, str(text)):
        written = m.group(0) if m.group(1) is None else m.group(0)[: m.start(1) - m.start(0)]
        if float(re.sub(r"[,+]", "", written.strip(" -"))) == float(value):
            unit = (m.group(1) or "").strip().lower().rstrip(".")
            found.add(unit if unit in units else None)
    return found.pop() if len(found) == 1 else None
"""


def _unit_after_function() -> Any:
    namespace: dict[str, Any] = {"re": re}
    exec(_UNIT_AFTER, namespace)  # sgde's own source above, not teacher code
    return namespace["sgde_unit_after"]


_unit_after = _unit_after_function()


def normal_unit(text: Any) -> str:
    """A unit as the table spells it: lower case, stripped, no trailing dot."""
    return str(text).strip().lower().rstrip(".")


def unit_after(text: str, value: float) -> str | None:
    """The known unit written right after ``value`` in ``text`` (``"17400 g"`` -> ``"g"``),
    when every place ``value`` is written has that one; else None."""
    unit: str | None = _unit_after(text, value, UNITS)
    return unit


@dataclass(frozen=True)
class Rescaled:
    """A number field the cases write in several units of one dimension.

    Attributes:
        field: The number field.
        unit_field: The new field: its unit as written.
        dimension: Mass, length, volume or time.
        target: The unit ``run`` expects (as the verifying rows write it).
        units: Per row, the unit as written.
    """

    field: str
    unit_field: str
    dimension: str
    target: str
    units: list[str]


def rescale(
    fields: Sequence[str],
    numbers: Sequence[str],
    values: Sequence[Mapping[str, Any] | None],
    failing: Sequence[bool],
    texts: Sequence[str],
) -> tuple[list[Rescaled], list[dict[str, Any] | None]] | None:
    """The number fields whose failing rows write another unit than the verifying rows, and
    each row's values converted to the verifying rows' unit (None: no such field).

    Args:
        fields: The design's fields (a unit field's name must not clash with one).
        numbers: The fields typed as numbers.
        values: Per row, the values read.
        failing: Per row, whether ``run`` failed there.
        texts: Per row, the free text the values were read from.
    """
    if not any(failing) or all(failing) or any(v is None for v in values):
        return None
    rescaled: list[Rescaled] = []
    converted = [dict(v) if v is not None else None for v in values]
    for name in numbers:
        units = [unit_after(t, float(v[name])) if v is not None else None
                 for t, v in zip(texts, values, strict=True)]  # fmt: skip
        if any(u is None for u in units):
            continue
        known = [UNITS[u] for u in units if u is not None]
        dims = {d for d, _ in known}
        targets = {known[i][1] for i, bad in enumerate(failing) if not bad}
        unit_field = f"{name}_unit"
        if len(dims) != 1 or len(targets) != 1 or unit_field in fields:
            continue
        (target,) = targets
        if all(f == target for _, f in known):
            continue
        for i, (_, factor) in enumerate(known):
            row = converted[i]
            if row is not None and factor != target:
                row[name] = float(row[name]) * factor / target
        spelled = next(u for u, bad in zip(units, failing, strict=True) if not bad)
        rescaled.append(
            Rescaled(name, unit_field, dims.pop(), str(spelled), [str(u) for u in units])
        )
    return (rescaled, converted) if rescaled else None


def with_units(
    code: str, fields: Sequence[str], rescaled: Sequence[Rescaled], texts: Sequence[str] = ()
) -> str:
    """``code`` (a design: ``def run(<fields>)``) with ``run`` renamed and a new ``run``
    that also takes each rescaled field's unit (and the free-text inputs ``texts``) and
    converts the number to the unit the rule expects before calling it. The unit is the one
    the text writes after the copied number when it names one the table knows (so a
    student's slip on the unit field does not matter), else the copied unit; a unit the
    table does not know leaves the number as copied."""
    body: list[str] = []
    for r in rescaled:
        table = {u: f for u, (d, f) in UNITS.items() if d == r.dimension}
        target = UNITS[r.target][1]
        body += [
            f"    factors = {table!r}",
            "    try:",
            f"        unit = sgde_unit_after(sgde_text, float({r.field}), factors)",
            "    except (TypeError, ValueError):",
            "        unit = None",
            "    if unit is None:",
            f"        unit = str({r.unit_field}).strip().lower().rstrip('.')",
            "    if unit in factors:",
            f"        {r.field} = float({r.field}) * factors[unit] / {target!r}",
        ]
    return wrap_run(
        code,
        inner="sgde_design_run",
        signature=[*fields, *(r.unit_field for r in rescaled)],
        call=fields,
        texts=texts,
        body=body,
        head="import re\n",
        between=_UNIT_AFTER,
    )


async def unit_fields_program(
    sandbox: CodeRunner,
    task: TaskSpec,
    rows: Sequence[Mapping[str, Any]],
    metric: Metric,
    design: tuple[str, Mapping[str, str]],
    read: tuple[Mapping[str, FieldType], Sequence[dict[str, Any] | None], Sequence[str | None]],
    texts: Sequence[str],
    searched: int,
) -> Program | None:
    """A design (``(code, field -> description)``, ``run`` over the fields) as a program with
    a unit field for each number the failing rows write in another unit (``read``: the
    fields' types, the values read and the rows' checks): ``run`` converts the number before
    the rule, reading the unit after it in the free-text inputs ``texts`` (the unit field
    where they name none). None unless it then verifies on every row; ``searched`` is the
    design source's count of hypotheses so far."""
    code, described = design
    fields = list(described)
    types, values, checks = read
    numbers = [f for f, t in types.items() if t.kind in ("number", "integer")]
    written = [" ".join(str(v) for v in row_inputs(task, row).values()) for row in rows]
    found = rescale(fields, numbers, values, [c is not None for c in checks], written)
    if found is None:
        return None
    rescaled, _ = found
    texts = [t for t in texts if t in task.inputs and t not in fields]
    code = with_units(code, fields, rescaled, texts)
    params = {
        **types,
        **{r.unit_field: TEXT for r in rescaled},
        **{t: task.inputs[t] for t in texts},
    }
    unit_values: list[dict[str, Any] | None] = [
        None
        if v is None
        else {**v, **{r.unit_field: r.units[i] for r in rescaled}, **{t: rows[i][t] for t in texts}}
        for i, v in enumerate(values)
    ]
    wrapped = program_source(code, "run", list(params), list(task.outputs))
    if wrapped is None:
        return None
    if any(await verify_program(sandbox, task, rows, metric, wrapped, unit_values)):
        return None
    descriptions = {f: d for f, d in described.items() if f not in task.inputs}
    for r in rescaled:
        descriptions[r.unit_field] = (
            f"the unit the {r.field.replace('_', ' ')} is written in, as the text writes it "
            "right after the number"
        )
    return Program(
        code=wrapped,
        params=params,
        values=unit_values,
        raw_inputs={f: f for f in params if f in task.inputs},
        descriptions=descriptions,
        origin="design",
        searched=searched,
        verified_rows=len(rows),
    )
