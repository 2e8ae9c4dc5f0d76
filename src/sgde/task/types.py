"""Field types of a task: spelling, JSON schema, coercion and the per-type metric.

A :class:`FieldType` is one of ``integer``, ``number``, ``string``, ``boolean``, ``date``
(ISO ``YYYY-MM-DD`` text), ``list[T]`` (ordered), ``set[T]`` (a list compared as a multiset)
or ``enum[a,b,c]`` (a fixed label set). Lists hold scalar items: a list of lists is refused.

Each type knows how to

* spell itself (:meth:`FieldType.parse` / ``str()`` round trip, as on the CLI:
  ``--output due:date``),
* describe itself to a student (:meth:`FieldType.json_schema`),
* normalise a value (:meth:`FieldType.coerce`: ``"1,234"`` -> ``1234``, ``"2024-1-5"`` ->
  ``"2024-01-05"``, ``"Yes"`` -> ``True``, ``"POS"`` -> ``"pos"``), and
* judge a prediction against a gold value (:meth:`FieldType.correct`, the one gold matcher:
  numbers by :func:`sgde.runtime.numbers.numbers_match` — absolute tolerance or the gold's
  decimals, never relative).

:func:`sgde.task.infer.infer_type` reads the type of a field from its training values.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections import Counter
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from sgde.errors import TaskSpecError
from sgde.runtime.numbers import numbers_match
from sgde.task.values import (
    ISO_DATE_PATTERN,
    TaskValueError,
    coerce_boolean,
    coerce_numeric,
    normal_text,
    parse_date,
    plain_text,
    short_repr,
)

__all__ = [
    "DEFAULT_TOLERANCE",
    "FieldType",
    "Kind",
    "TaskValueError",
    "parse_date",
]

_INFERENCE = ("gold_type", "infer_type", "same_value")


def __getattr__(name: str) -> Any:
    # Inference lives in sgde.task.infer (it builds FieldTypes, so it imports this module);
    # its functions stay importable from here, where the task API first documented them.
    if name in _INFERENCE:
        from sgde.task import infer

        return getattr(infer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


Kind = Literal["integer", "number", "string", "boolean", "date", "list", "enum"]

DEFAULT_TOLERANCE = 1e-6

_ALIASES = {
    "int": "integer",
    "integer": "integer",
    "float": "number",
    "number": "number",
    "num": "number",
    "str": "string",
    "string": "string",
    "text": "string",
    "bool": "boolean",
    "boolean": "boolean",
    "date": "date",
}
_ACCEPTED = (
    "integer, number, number(tol=0.01), string, boolean, date, list[integer], "
    "set[string] (an unordered list), enum[pos,neg,neutral]"
)
_TYPE_TEXT = re.compile(r"^\s*(?P<head>[A-Za-z_]+)\s*(?:(?P<open>[\[(])(?P<body>.*)[\])])?\s*$")
_TOL_BODY = re.compile(r"^\s*(?:tol(?:erance)?\s*=\s*)?(?P<tol>[0-9.eE+-]+)\s*$")
_LABEL_SAFE = re.compile(r"^[^,\[\]\"]+$")


class FieldType(BaseModel):
    """The type of one input or output field of a task.

    Attributes:
        kind: ``integer``, ``number``, ``string``, ``boolean``, ``date``, ``list`` or ``enum``.
        item: The item type of a list (a scalar or enum type; lists of lists are refused).
        ordered: For lists: False compares predictions as a multiset (spelled ``set[T]``).
        labels: For enums: the label set, in its canonical spelling.
        tolerance: For numbers: the absolute tolerance of :meth:`correct` (never relative).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Kind
    item: FieldType | None = None
    ordered: bool = True
    labels: tuple[str, ...] | None = None
    tolerance: float = DEFAULT_TOLERANCE

    @model_validator(mode="after")
    def _check(self) -> FieldType:
        if self.kind == "list":
            if self.item is None:
                raise ValueError("a list type needs an item type, e.g. list[integer]")
            if self.item.kind == "list":
                raise ValueError("lists of lists are not supported; use a list of scalars")
        elif self.item is not None:
            raise ValueError(f"only a list type has an item type, not {self.kind}")
        if not self.ordered and self.kind != "list":
            raise ValueError("only a list type can be unordered")
        if self.kind == "enum":
            if not self.labels:
                raise ValueError("an enum type needs at least one label, e.g. enum[yes,no]")
            keys = [normal_text(label) for label in self.labels]
            if any(not k for k in keys):
                raise ValueError("enum labels must not be empty")
            dup = [k for k, c in Counter(keys).items() if c > 1]
            if dup:
                raise ValueError(f"enum labels repeat (ignoring case): {', '.join(dup)}")
        elif self.labels is not None:
            raise ValueError(f"only an enum type has labels, not {self.kind}")
        if not (self.tolerance >= 0 and math.isfinite(self.tolerance)):
            raise ValueError(f"tolerance must be a finite number >= 0, got {self.tolerance}")
        if self.tolerance != DEFAULT_TOLERANCE and self.kind not in ("number", "integer"):
            raise ValueError(f"only numbers have a tolerance, not {self.kind}")
        return self

    # -- spelling -----------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str) -> FieldType:
        """Read a type from its spelling.

        Accepted: ``integer``, ``number``, ``number(tol=0.01)``, ``string``, ``boolean``,
        ``date``, ``list[T]``, ``set[T]`` (an unordered list), ``enum[a,b,c]`` (labels may be
        JSON strings: ``enum["a, b","c"]``); aliases ``int``, ``float``, ``str``, ``text``,
        ``bool``.

        Raises:
            TaskSpecError: naming the text and listing the accepted forms.
        """
        if isinstance(text, FieldType):
            return text
        m = _TYPE_TEXT.match(text) if isinstance(text, str) else None
        if m is None:
            raise _bad_type(text)
        head, body, opening = m["head"].lower(), m["body"], m["open"]
        try:
            if body is None:
                if head in _ALIASES:
                    return cls(kind=_ALIASES[head])  # type: ignore[arg-type]
                if head in ("list", "set", "array", "enum"):
                    example = "enum[yes,no]" if head == "enum" else f"{head}[integer]"
                    raise TaskSpecError(
                        f"invalid type {text!r}: say what it holds, e.g. {example}",
                        hint=f"accepted types: {_ACCEPTED}",
                    )
                raise _bad_type(text)
            if head in ("list", "set", "array") and opening == "[":
                try:
                    item = cls.parse(body)
                except TaskSpecError as exc:
                    raise TaskSpecError(
                        f"invalid type {text!r}: {exc.message}", hint=exc.hint
                    ) from None
                return cls(kind="list", item=item, ordered=head != "set")
            if head == "enum" and opening == "[":
                return cls(kind="enum", labels=_parse_labels(body))
            if _ALIASES.get(head) in ("number", "integer") and opening == "(":
                t = _TOL_BODY.match(body)
                if t is None:
                    raise _bad_type(text)
                return cls(kind=_ALIASES[head], tolerance=float(t["tol"]))  # type: ignore[arg-type]
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            if isinstance(exc, TaskSpecError):
                raise
            detail = _validation_text(exc)
            raise TaskSpecError(
                f"invalid type {text!r}: {detail}", hint=f"accepted types: {_ACCEPTED}"
            ) from None
        raise _bad_type(text)

    def __str__(self) -> str:
        if self.kind == "list":
            assert self.item is not None
            return f"{'list' if self.ordered else 'set'}[{self.item}]"
        if self.kind == "enum":
            assert self.labels is not None
            if all(_LABEL_SAFE.match(x) and x == x.strip() for x in self.labels):
                return "enum[" + ",".join(self.labels) + "]"
            return "enum[" + ",".join(json.dumps(x, ensure_ascii=False) for x in self.labels) + "]"
        if self.kind in ("number", "integer") and self.tolerance != DEFAULT_TOLERANCE:
            return f"{self.kind}(tol={self.tolerance!r})"
        return self.kind

    def describe(self) -> str:
        """The type in words, for messages and prompts (``"a date (YYYY-MM-DD)"``)."""
        if self.kind == "list":
            assert self.item is not None
            what = "an unordered list" if not self.ordered else "a list"
            return f"{what} of {self.item.describe_plural()}"
        if self.kind == "enum":
            assert self.labels is not None
            return "one of " + ", ".join(repr(x) for x in self.labels)
        return {
            "integer": "an integer",
            "number": "a number",
            "string": "text",
            "boolean": "a boolean (true or false)",
            "date": "a date (YYYY-MM-DD)",
        }[self.kind]

    def describe_plural(self) -> str:
        """The type in words, plural (``"integers"``), for list items."""
        if self.kind == "enum":
            assert self.labels is not None
            return "labels (" + ", ".join(repr(x) for x in self.labels) + ")"
        return {
            "integer": "integers",
            "number": "numbers",
            "string": "strings",
            "boolean": "booleans",
            "date": "dates (YYYY-MM-DD)",
        }.get(self.kind, self.describe())

    def plan_type(self) -> Literal["string", "number", "integer", "boolean", "array"]:
        """The plan input type that carries this field (dates and enums travel as text)."""
        if self.kind == "list":
            return "array"
        if self.kind in ("integer", "number", "boolean"):
            return self.kind
        return "string"

    # -- schema and values ----------------------------------------------------------------

    def json_schema(self) -> dict[str, Any]:
        """JSON schema of a value of this type, for a student's structured output."""
        if self.kind == "date":
            return {
                "type": "string",
                "pattern": ISO_DATE_PATTERN,
                "description": "a date as YYYY-MM-DD",
            }
        if self.kind == "enum":
            assert self.labels is not None
            return {"type": "string", "enum": list(self.labels)}
        if self.kind == "list":
            assert self.item is not None
            return {"type": "array", "items": self.item.json_schema()}
        return {"type": self.kind}

    def coerce(self, value: Any) -> Any:
        """Normalise a value of this type.

        ``integer``: ``12``, ``12.0``, ``"1,234"`` -> int. ``number``: ints stay ints,
        numeric text is read (``"$5.50"`` -> 5.5). ``string``: text as given, numbers and
        booleans as text. ``boolean``: ``true/false/yes/no/y/n/1/0`` (any case). ``date``:
        see :func:`parse_date`, returned as ``"YYYY-MM-DD"``. ``enum``: a label matched
        ignoring case, spaces, quotes and a trailing period -> its canonical spelling.
        ``list``: a list, tuple or set (or JSON array text) with each item coerced.

        Raises:
            TaskValueError: when the value cannot be read as this type (``None`` included).
        """
        if value is None:
            raise TaskValueError(f"expected {self.describe()}, got null")
        kind = self.kind
        if kind in ("integer", "number"):
            return coerce_numeric(value, integral=kind == "integer")
        if kind == "string":
            if isinstance(value, (list, tuple, set, dict)):
                raise TaskValueError(f"expected text, got {short_repr(value)}")
            return plain_text(value).strip()
        if kind == "boolean":
            return coerce_boolean(value)
        if kind == "date":
            return parse_date(value).isoformat()
        if kind == "enum":
            return self._coerce_label(value)
        return self._coerce_list(value)

    def _coerce_label(self, value: Any) -> str:
        assert self.labels is not None
        if isinstance(value, (list, tuple, set, dict)):
            raise TaskValueError(f"expected {self.describe()}, got {short_repr(value)}")
        key = normal_text(plain_text(value))
        for label in self.labels:
            if normal_text(label) == key:
                return label
        raise TaskValueError(f"expected {self.describe()}, got {short_repr(value)}")

    def _coerce_list(self, value: Any) -> list[Any]:
        assert self.item is not None
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                with contextlib.suppress(ValueError):
                    value = json.loads(text)
        if isinstance(value, set):
            value = sorted(value, key=repr)
        if not isinstance(value, (list, tuple)):
            raise TaskValueError(f"expected {self.describe()}, got {short_repr(value)}")
        out = []
        for i, v in enumerate(value):
            if isinstance(v, (list, tuple, set, dict)):
                raise TaskValueError(
                    f"item {i + 1} is {short_repr(v)}: nested lists and objects are not supported"
                )
            try:
                out.append(self.item.coerce(v))
            except TaskValueError as exc:
                raise TaskValueError(f"item {i + 1}: {exc.message}") from None
        return out

    # -- the metric -------------------------------------------------------------------------

    def correct(self, pred: Any, gold: Any) -> bool:
        """Whether a prediction is right for a gold value of this type (never raises).

        Numbers: :func:`~sgde.runtime.numbers.numbers_match` with this type's absolute
        tolerance, or at the gold's decimals. Text: Unicode-normalised, whitespace-collapsed,
        case-folded, without surrounding quotes or a trailing period. Booleans, dates and
        labels: equal after :meth:`coerce`. Lists: same length and item-wise correct (ordered),
        or a one-to-one matching of items (unordered). A ``None`` or uncoercible prediction is
        wrong.
        """
        if pred is None or gold is None:
            return False
        try:
            return self._correct(pred, gold)
        except (ValueError, TypeError, ArithmeticError, RecursionError):
            return False

    def _correct(self, pred: Any, gold: Any) -> bool:
        kind = self.kind
        if kind in ("integer", "number"):
            if isinstance(pred, bool) or isinstance(gold, bool):
                return False
            return numbers_match(pred, gold, abs_tol=self.tolerance)
        if kind == "string":
            if isinstance(pred, (list, tuple, set, dict)):
                return False
            return normal_text(plain_text(pred)) == normal_text(plain_text(gold))
        if kind == "enum":
            p = normal_text(plain_text(pred))
            try:
                g = normal_text(self._coerce_label(gold))
            except TaskValueError:  # a gold outside the label set still compares as text
                g = normal_text(plain_text(gold))
            return p == g
        if kind in ("boolean", "date"):
            return bool(self.coerce(pred) == self.coerce(gold))
        assert self.item is not None
        preds = _as_list(pred)
        golds = _as_list(gold)
        if preds is None or golds is None or len(preds) != len(golds):
            return False
        if self.ordered:
            return all(self.item.correct(p, g) for p, g in zip(preds, golds, strict=True))
        return _multiset_match(self.item, preds, golds)


def _as_list(value: Any) -> list[Any] | None:
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if isinstance(value, set):
        return sorted(value, key=repr)
    if isinstance(value, (list, tuple)):
        return list(value)
    return None


def _multiset_match(item: FieldType, preds: list[Any], golds: list[Any]) -> bool:
    """A perfect one-to-one matching of predictions to golds under ``item.correct``.

    Tolerant comparisons are not an equivalence, so this is bipartite matching (Kuhn's
    augmenting paths), not sorting; lists are short.
    """
    edges = [[j for j, g in enumerate(golds) if item.correct(p, g)] for p in preds]
    owner: list[int | None] = [None] * len(golds)

    def augment(i: int, seen: set[int]) -> bool:
        for j in edges[i]:
            if j in seen:
                continue
            seen.add(j)
            current = owner[j]
            if current is None or augment(current, seen):
                owner[j] = i
                return True
        return False

    return all(augment(i, set()) for i in range(len(preds)))


def _parse_labels(body: str) -> tuple[str, ...]:
    text = body.strip()
    if text.startswith('"'):
        try:
            labels = json.loads("[" + text + "]")
        except ValueError:
            raise TaskSpecError(
                f"enum labels {body!r} are not a list of JSON strings",
                hint='write enum[a,b,c] or enum["a, b","c"]',
            ) from None
        if not all(isinstance(x, str) for x in labels):
            raise TaskSpecError(f"enum labels {body!r} must all be strings")
        return tuple(labels)
    return tuple(x.strip() for x in text.split(","))


def _validation_text(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
            return str(first.get("msg", exc)).removeprefix("Value error, ")
        except (IndexError, TypeError, KeyError):
            pass
    return str(exc)


def _bad_type(text: Any) -> TaskSpecError:
    return TaskSpecError(f"unknown type {text!r}", hint=f"accepted types: {_ACCEPTED}")
