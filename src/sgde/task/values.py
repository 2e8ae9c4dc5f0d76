"""Reading the values of task fields: text normalisation, numbers, booleans and dates.

The helpers :class:`~sgde.task.types.FieldType` and type inference share. Numbers are read by
:func:`sgde.runtime.numbers.to_number` (the one number reader); dates by :func:`parse_date`.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sgde.runtime.numbers import to_number

__all__ = [
    "ISO_DATE_PATTERN",
    "STRICT_ISO",
    "TaskValueError",
    "coerce_boolean",
    "coerce_numeric",
    "integral_text",
    "is_number_value",
    "normal_text",
    "parse_date",
    "plain_text",
    "short_repr",
]

ISO_DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_ISO_LIKE = re.compile(
    r"^(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
    r"(?:Z|[+-]\d{2}:?\d{2})?)?$"
)
_COMPACT_DATE = re.compile(r"^(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})$")
STRICT_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")
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


def short_repr(value: Any) -> str:
    """``repr`` of a value, cut to 60 characters for messages."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def is_number_value(value: Any) -> bool:
    """A numeric Python value (not a bool, not text)."""
    return isinstance(value, (int, float, Decimal, Fraction)) and not isinstance(value, bool)


def normal_text(text: str) -> str:
    """Unicode-normalised, whitespace-collapsed, case-folded text without surrounding quotes
    or trailing sentence punctuation."""
    text = " ".join(unicodedata.normalize("NFKC", text).split())
    for _ in range(3):
        stripped = text.strip().strip(_QUOTES).rstrip(_TRAILING).strip()
        if stripped == text:
            break
        text = stripped
    return text.casefold()


def plain_text(value: Any) -> str:
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
            raise TaskValueError(f"expected text, got {short_repr(value)}")
        return str(int(number)) if number.is_integer() else repr(number)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TaskValueError(f"expected text, got {short_repr(value)}")


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
        raise TaskValueError(f"expected a date (YYYY-MM-DD), got {short_repr(value)}")
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
        raise TaskValueError(f"expected a date (YYYY-MM-DD), got {short_repr(value)}")
    try:
        return dt.date(year, month, day)
    except ValueError as exc:
        raise TaskValueError(f"not a valid date: {short_repr(value)} ({exc})") from None


def integral_text(text: str) -> int | None:
    """The exact integer a numeric text such as ``"1,234"`` or ``"$5"`` writes (None if the
    text is not a number or has decimals); exact beyond float precision."""
    if to_number(text) is None:
        return None
    digits = re.sub(r"[,_$€£¥₹]", "", text.strip())
    return int(digits) if re.fullmatch(r"[+-]?\d+", digits) else None


def coerce_numeric(value: Any, *, integral: bool) -> int | float:
    """An integer (``integral``) or a number: ints and integral text stay exact ints."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    exact = integral_text(value) if isinstance(value, str) else None
    if exact is not None:
        return exact
    number = None if isinstance(value, bool) else to_number(value)
    if number is None or (integral and not number.is_integer()):
        what = "an integer" if integral else "a number"
        raise TaskValueError(f"expected {what}, got {short_repr(value)}")
    return int(number) if integral else number


def coerce_boolean(value: Any) -> bool:
    """``true/false/yes/no/y/n/t/f/1/0`` (any case), booleans, and the ints 0 and 1."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        key = normal_text(value)
        if key in _TRUE:
            return True
        if key in _FALSE:
            return False
    raise TaskValueError(f"expected a boolean (true or false), got {short_repr(value)}")
