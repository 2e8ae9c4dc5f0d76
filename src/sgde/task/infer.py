"""Type inference: the type of a field read from its training values.

:func:`infer_type` (used by :func:`sgde.task.infer_task` for each field) and
:func:`gold_type` (the type one gold value suggests, for matching without a task spec).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from sgde.runtime.numbers import to_number, vote_key
from sgde.task.types import FieldType
from sgde.task.values import (
    STRICT_ISO,
    TaskValueError,
    is_number_value,
    normal_text,
    parse_date,
    plain_text,
    short_repr,
)

__all__ = ["ENUM_MAX_LABELS", "gold_type", "infer_type", "same_value"]

ENUM_MAX_LABELS = 12
"""At most this many distinct values make a string output an enum (when labels are asked)."""
ENUM_MAX_LABEL_CHARS = 40


def _classify(value: Any) -> tuple[str, bool]:
    """``(kind, typed)``: the kind a single value suggests, and whether it came as a typed
    (non-text) value. Text that reads as a number, date or boolean suggests that kind."""
    if isinstance(value, bool):
        return "boolean", True
    if isinstance(value, int):
        return "integer", True
    if is_number_value(value):
        if to_number(value) is None:
            raise TaskValueError(f"{short_repr(value)} is not a finite number")
        return "number", True
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0) and value.tzinfo is None:
            return "date", True
        return "string", False
    if isinstance(value, dt.date):
        return "date", True
    if isinstance(value, str):
        text = value.strip()
        if STRICT_ISO.match(text):
            try:
                parse_date(text)
                return "date", False
            except TaskValueError:
                return "string", False
        if text.lower() in ("true", "false"):
            return "boolean", False
        if len(text) > 1 and text.startswith("0") and text[1].isdigit():
            return "string", False  # 007, 02139: identifiers and codes keep their zeros
        number = to_number(text)
        if number is not None:
            integral = re.fullmatch(r"[+-]?[$€£¥₹]?[+-]?[\d,_]+", text) is not None
            return ("integer" if integral else "number"), False
        return "string", False
    raise TaskValueError(
        f"{short_repr(value)} is {type(value).__name__}: objects are not supported, "
        "give each value its own field"
    )


def infer_type(values: Sequence[Any], *, labels: bool = False) -> FieldType:
    """The type of a field, read from its training values.

    All booleans -> ``boolean``; all integers (or integral numeric text) -> ``integer``;
    numbers -> ``number``; ISO dates (or ``datetime.date``) -> ``date``; lists ->
    ``list[item type]``; other text -> ``string``, or, when ``labels`` is true and there are at
    most 12 distinct short values of which at least one repeats, ``enum[...]`` with the labels
    in order of first appearance. Text whose values disagree (``"12"`` and ``"twelve"``) is
    ``string``; typed values that disagree (``12`` and ``"twelve"``) are an error.

    Args:
        values: The field's values, one per row (no ``None``).
        labels: Whether string values may become an enum.

    Raises:
        TaskValueError: for a missing value, an object, a nested list or values of
            inconsistent types; ``index`` is the first offending value's position.
    """
    if not values:
        raise TaskValueError("no values to infer a type from")
    for i, v in enumerate(values):
        if v is None:
            raise TaskValueError("the value is missing (null)", index=i)
    if any(isinstance(v, (list, tuple)) for v in values):
        return _infer_list(values)
    kinds: list[tuple[str, bool]] = []
    for i, v in enumerate(values):
        try:
            kinds.append(_classify(v))
        except TaskValueError as exc:
            raise TaskValueError(exc.message, index=i) from None
    kind = _merge_kinds(values, kinds)
    if kind == "string" and labels:
        enum = _enum_of(values)
        if enum is not None:
            return enum
    return FieldType(kind=kind)  # type: ignore[arg-type]


def _merge_kinds(values: Sequence[Any], kinds: list[tuple[str, bool]]) -> str:
    found = {k for k, _ in kinds}
    if len(found) == 1:
        return found.pop()
    if found == {"integer", "number"}:
        return "number"
    if not any(typed for _, typed in kinds):
        return "string"  # free text in which some values happen to look like numbers or dates
    # Typed values (JSON numbers, booleans, dates) mixed with values of another kind.
    first_typed = next(k for k, typed in kinds if typed)
    base = "number" if first_typed == "integer" else first_typed
    for i, (k, _) in enumerate(kinds):
        k2 = "number" if k == "integer" else k
        if k2 != base:
            want = FieldType(kind=base)  # type: ignore[arg-type]
            raise TaskValueError(
                f"expected {want.describe()} like the other rows, got {short_repr(values[i])}",
                index=i,
            )
    return base  # pragma: no cover - the loop finds the disagreement


def _infer_list(values: Sequence[Any]) -> FieldType:
    items: list[Any] = []
    owners: list[int] = []
    for i, v in enumerate(values):
        if not isinstance(v, (list, tuple)):
            raise TaskValueError(
                f"expected a list like the other rows, got {short_repr(v)}", index=i
            )
        for x in v:
            if isinstance(x, (list, tuple, set, dict)):
                raise TaskValueError(
                    f"{short_repr(v)} holds {short_repr(x)}: nested lists and objects are not "
                    "supported; flatten the list or split it into fields",
                    index=i,
                )
            items.append(x)
            owners.append(i)
    if not items:
        return FieldType(kind="list", item=FieldType(kind="string"))
    try:
        item = infer_type(items)
    except TaskValueError as exc:
        index = owners[exc.index] if exc.index is not None else None
        raise TaskValueError(f"list item: {exc.message}", index=index) from None
    return FieldType(kind="list", item=item)


def _enum_of(values: Sequence[Any]) -> FieldType | None:
    texts = [plain_text(v).strip() for v in values]
    if any(not t or "\n" in t or len(t) > ENUM_MAX_LABEL_CHARS for t in texts):
        return None
    by_key: dict[str, Counter[str]] = {}
    for t in texts:
        by_key.setdefault(normal_text(t), Counter())[t] += 1
    if "" in by_key or len(by_key) > ENUM_MAX_LABELS or len(by_key) >= len(texts):
        return None
    # The canonical label of each class: its most frequent spelling (first seen on ties).
    labels = tuple(spellings.most_common(1)[0][0] for spellings in by_key.values())
    return FieldType(kind="enum", labels=labels)


def gold_type(gold: Any) -> FieldType | None:
    """The type a gold value suggests on its own (for matching without a task spec).

    Booleans -> boolean; numbers and numeric text -> number; dates and ISO date text ->
    date; lists of scalars -> list of the items' type; other text -> string; anything else
    (objects, lists of lists) -> None.
    """
    if isinstance(gold, bool):
        return FieldType(kind="boolean")
    if isinstance(gold, dt.date):
        return FieldType(kind="date")
    if to_number(gold) is not None:
        return FieldType(kind="number")
    if isinstance(gold, str):
        if STRICT_ISO.match(gold.strip()):
            try:
                parse_date(gold)
                return FieldType(kind="date")
            except TaskValueError:
                pass
        return FieldType(kind="string")
    if isinstance(gold, (list, tuple)) and gold:
        try:
            return FieldType(kind="list", item=infer_type(list(gold)))
        except (TaskValueError, ValueError):
            return None
    return None


def same_value(pred: Any, gold: Any) -> bool:
    """Equality of values no field type describes (objects, lists of lists): by vote key."""
    return bool(vote_key(pred) == vote_key(gold))
