"""Checking and coercing plan inputs against the types a plan declares.

Coercion is deliberately narrow: text that *is* a number becomes a number for ``number`` and
``integer`` inputs (``"12"`` -> 12, ``"1,234.5"`` -> 1234.5), ``"true"``/``"false"`` become
booleans, JSON text becomes an object or array, and numbers/booleans become text for
``string`` inputs. Anything else is a :class:`~sgde.errors.UsageError` that names the input.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

from sgde.errors import UsageError
from sgde.plan.model import Plan
from sgde.runtime.numbers import to_number

__all__ = ["coerce_input", "coerce_inputs"]

_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0"}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def coerce_input(name: str, kind: str, value: Any) -> Any:
    """Coerce one input value to its declared type.

    Args:
        name: Input name (for messages).
        kind: Declared type: ``string``, ``number``, ``integer``, ``boolean``, ``object`` or
            ``array``.
        value: The given value.

    Returns:
        The coerced value.

    Raises:
        UsageError: when the value cannot be read as ``kind``.
    """
    if kind == "string":
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int) or (isinstance(value, float) and to_number(value) is not None):
            return str(int(value)) if float(value).is_integer() else repr(value)
    elif kind == "number":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if to_number(value) is not None:
                return value
        elif isinstance(value, str):
            number = to_number(value)
            if number is not None:
                return int(number) if number.is_integer() and "." not in value else number
    elif kind == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        number = None if isinstance(value, bool) else to_number(value)
        if number is not None and number.is_integer():
            return int(number)
    elif kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
    elif kind in ("object", "array"):
        wanted: type = dict if kind == "object" else list
        if isinstance(value, str):
            with contextlib.suppress(ValueError, RecursionError):  # not JSON, or too deep
                value = json.loads(value)
        if isinstance(value, wanted):
            return value
    raise UsageError(
        f"input '{name}' must be {'an' if kind[0] in 'aeiou' else 'a'} {kind}, got {_short(value)}",
        hint=f"pass a valid {kind} for '{name}'",
    )


def coerce_inputs(plan: Plan, values: Mapping[str, Any]) -> dict[str, Any]:
    """Check that every plan input is given and coerce it to its declared type.

    Keys that are not plan inputs are ignored (dataset rows carry gold answers and ids).

    Args:
        plan: The plan.
        values: Given input values.

    Returns:
        The plan's inputs, coerced, in the plan's order.

    Raises:
        UsageError: naming a missing input or one that cannot be coerced.
    """
    missing = [name for name in plan.inputs if name not in values]
    if missing:
        declared = ", ".join(f"{n} ({t})" for n, t in plan.inputs.items())
        raise UsageError(
            f"missing plan input{'s' if len(missing) > 1 else ''}: {', '.join(missing)}; "
            f"plan '{plan.name}' takes: {declared}",
            hint="pass each input, e.g. --input " + f"{missing[0]}=VALUE",
        )
    return {name: coerce_input(name, kind, values[name]) for name, kind in plan.inputs.items()}
