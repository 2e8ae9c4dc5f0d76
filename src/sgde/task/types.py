"""Field types of a task: parsing, JSON schema, coercion, the per-type metric and inference.

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

:func:`infer_type` reads the type of a field from its training values.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from sgde.errors import TaskSpecError
from sgde.runtime.numbers import numbers_match, to_number, vote_key

__all__ = [
    "FieldType",
    "Kind",
    "TaskValueError",
    "gold_type",
    "infer_type",
    "parse_date",
    "same_value",
]

Kind = Literal["integer", "number", "string", "boolean", "date", "list", "enum"]

SCALAR_KINDS: tuple[str, ...] = ("integer", "number", "string", "boolean", "date")
ENUM_MAX_LABELS = 12
"""At most this many distinct values make a string output an enum (when labels are asked)."""
ENUM_MAX_LABEL_CHARS = 40
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

ISO_DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_ISO_LIKE = re.compile(
    r"^(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
    r"(?:Z|[+-]\d{2}:?\d{2})?)?$"
)
_COMPACT_DATE = re.compile(r"^(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})$")
_STRICT_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTHS = {
    name: i + 1
    for i, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ]
    )
    for name in names
}
_WEEKDAYS = re.compile(
    r"^(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)(?:day|nesday|sday|urday)?\.?,?\s+",
    re.IGNORECASE,
)
_DAY = r"(?P<d>\d{1,2})(?:st|nd|rd|th)?"
_MONTH = r"(?P<mon>[A-Za-z]+)\.?"
_YEAR = r"(?P<y>\d{4})"
_NAMED_DATES = [
    re.compile(rf"^{_MONTH}\s+{_DAY},?\s+{_YEAR}$"),  # January 5, 2024
    re.compile(rf"^{_DAY}\s+(?:of\s+)?{_MONTH},?\s+{_YEAR}$"),  # 5 January 2024
    re.compile(rf"^{_YEAR}\s+{_MONTH}\s+{_DAY}$"),  # 2024 Jan 5
    re.compile(rf"^{_DAY}-{_MONTH}-{_YEAR}$"),  # 05-Jan-2024
]
_TRUE = {"true", "yes", "y", "t", "1"}
_FALSE = {"false", "no", "n", "f", "0"}
_QUOTES = "\"'`“”‘’«»"
_TRAILING = ".,;:!?"


class TaskValueError(ValueError):
    """A value that cannot be read as a field type.

    ``index`` is the 0-based position of the offending value when a sequence of values was
    examined (:func:`infer_type`), else None.
    """

    def __init__(self, message: str, *, index: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.index = index


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_number_value(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal, Fraction)) and not isinstance(value, bool)


def _normal_text(text: str) -> str:
    """Unicode-normalised, whitespace-collapsed, case-folded text without surrounding quotes
    or trailing sentence punctuation."""
    text = " ".join(unicodedata.normalize("NFKC", text).split())
    for _ in range(3):
        stripped = text.strip().strip(_QUOTES).rstrip(_TRAILING).strip()
        if stripped == text:
            break
        text = stripped
    return text.casefold()


def _plain_text(value: Any) -> str:
    """A scalar as text: numbers without a spurious ``.0``, booleans as ``true``/``false``."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (float, Decimal, Fraction)):
        number = to_number(value)
        if number is None:
            raise TaskValueError(f"expected text, got {_short(value)}")
        return str(int(number)) if number.is_integer() else repr(number)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TaskValueError(f"expected text, got {_short(value)}")


def parse_date(value: Any) -> dt.date:
    """Read a calendar date.

    Accepted: ``datetime.date`` (a ``datetime`` gives its date), ISO text with 1- or 2-digit
    month and day and ``-``, ``/`` or ``.`` separators, year first (``2024-1-5``,
    ``2024/01/05``, an ISO timestamp), ``20240105``, and English month names (``January 5,
    2024``, ``5 Jan 2024``, ``Friday, 5th of January 2024``). Day-first or month-first
    numeric dates (``01/05/2024``) are ambiguous and refused.

    Raises:
        TaskValueError: when the value is not a date.
    """
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str):
        raise TaskValueError(f"expected a date (YYYY-MM-DD), got {_short(value)}")
    text = " ".join(value.strip().strip(_QUOTES).rstrip(".").split())
    year = month = day = None
    m = _ISO_LIKE.match(text) or _COMPACT_DATE.match(text)
    if m is not None:
        year, month, day = int(m["y"]), int(m["m"]), int(m["d"])
    else:
        named = _WEEKDAYS.sub("", text)
        for pattern in _NAMED_DATES:
            n = pattern.match(named)
            if n is not None and n["mon"].lower() in _MONTHS:
                year, month, day = int(n["y"]), _MONTHS[n["mon"].lower()], int(n["d"])
                break
    if year is None or month is None or day is None:
        raise TaskValueError(f"expected a date (YYYY-MM-DD), got {_short(value)}")
    try:
        return dt.date(year, month, day)
    except ValueError as exc:
        raise TaskValueError(f"not a valid date: {_short(value)} ({exc})") from None


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
            keys = [_normal_text(label) for label in self.labels]
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
            return _coerce_numeric(value, integral=kind == "integer")
        if kind == "string":
            if isinstance(value, (list, tuple, set, dict)):
                raise TaskValueError(f"expected text, got {_short(value)}")
            return _plain_text(value).strip()
        if kind == "boolean":
            return _coerce_boolean(value)
        if kind == "date":
            return parse_date(value).isoformat()
        if kind == "enum":
            return self._coerce_label(value)
        return self._coerce_list(value)

    def _coerce_label(self, value: Any) -> str:
        assert self.labels is not None
        if isinstance(value, (list, tuple, set, dict)):
            raise TaskValueError(f"expected {self.describe()}, got {_short(value)}")
        key = _normal_text(_plain_text(value))
        for label in self.labels:
            if _normal_text(label) == key:
                return label
        raise TaskValueError(f"expected {self.describe()}, got {_short(value)}")

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
            raise TaskValueError(f"expected {self.describe()}, got {_short(value)}")
        out = []
        for i, v in enumerate(value):
            if isinstance(v, (list, tuple, set, dict)):
                raise TaskValueError(
                    f"item {i + 1} is {_short(v)}: nested lists and objects are not supported"
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
            return _normal_text(_plain_text(pred)) == _normal_text(_plain_text(gold))
        if kind == "enum":
            p = _normal_text(_plain_text(pred))
            try:
                g = _normal_text(self._coerce_label(gold))
            except TaskValueError:  # a gold outside the label set still compares as text
                g = _normal_text(_plain_text(gold))
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


def _integral_text(text: str) -> int | None:
    """The exact integer a numeric text such as ``"1,234"`` or ``"$5"`` writes (None if the
    text is not a number or has decimals); exact beyond float precision."""
    if to_number(text) is None:
        return None
    digits = re.sub(r"[,_$€£¥₹]", "", text.strip())
    return int(digits) if re.fullmatch(r"[+-]?\d+", digits) else None


def _coerce_numeric(value: Any, *, integral: bool) -> int | float:
    """An integer (``integral``) or a number: ints and integral text stay exact ints."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    exact = _integral_text(value) if isinstance(value, str) else None
    if exact is not None:
        return exact
    number = None if isinstance(value, bool) else to_number(value)
    if number is None or (integral and not number.is_integer()):
        what = "an integer" if integral else "a number"
        raise TaskValueError(f"expected {what}, got {_short(value)}")
    return int(number) if integral else number


def _coerce_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        key = _normal_text(value)
        if key in _TRUE:
            return True
        if key in _FALSE:
            return False
    raise TaskValueError(f"expected a boolean (true or false), got {_short(value)}")


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


# -- inference --------------------------------------------------------------------------------


def _classify(value: Any) -> tuple[str, bool]:
    """``(kind, typed)``: the kind a single value suggests, and whether it came as a typed
    (non-text) value. Text that reads as a number, date or boolean suggests that kind."""
    if isinstance(value, bool):
        return "boolean", True
    if isinstance(value, int):
        return "integer", True
    if _is_number_value(value):
        if to_number(value) is None:
            raise TaskValueError(f"{_short(value)} is not a finite number")
        return "number", True
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0) and value.tzinfo is None:
            return "date", True
        return "string", False
    if isinstance(value, dt.date):
        return "date", True
    if isinstance(value, str):
        text = value.strip()
        if _STRICT_ISO.match(text):
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
        f"{_short(value)} is {type(value).__name__}: objects are not supported, "
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
                f"expected {want.describe()} like the other rows, got {_short(values[i])}",
                index=i,
            )
    return base  # pragma: no cover - the loop finds the disagreement


def _infer_list(values: Sequence[Any]) -> FieldType:
    items: list[Any] = []
    owners: list[int] = []
    for i, v in enumerate(values):
        if not isinstance(v, (list, tuple)):
            raise TaskValueError(f"expected a list like the other rows, got {_short(v)}", index=i)
        for x in v:
            if isinstance(x, (list, tuple, set, dict)):
                raise TaskValueError(
                    f"{_short(v)} holds {_short(x)}: nested lists and objects are not "
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
    texts = [_plain_text(v).strip() for v in values]
    if any(not t or "\n" in t or len(t) > ENUM_MAX_LABEL_CHARS for t in texts):
        return None
    by_key: dict[str, Counter[str]] = {}
    for t in texts:
        by_key.setdefault(_normal_text(t), Counter())[t] += 1
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
        if _STRICT_ISO.match(gold.strip()):
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
