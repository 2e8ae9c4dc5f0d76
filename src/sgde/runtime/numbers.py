"""Numeric normalisation and comparison shared by voting, metrics and parsing.

The rules, in one place:

* :func:`to_number` reads a number from an ``int``/``float``/``Decimal``/``Fraction`` or
  from text such as ``"1,234.5"``, ``"$5"``, ``"-12.0"``, ``"50%"`` or ``"1e6"``. Text must
  be *only* a number (plus an optional currency sign, percent sign or surrounding
  whitespace); ``"5 eggs"`` is not a number. Booleans, NaN and infinities are not numbers.
* :func:`numbers_match` compares a prediction with a gold value using an **absolute**
  tolerance (default ``1e-6``) or, when the gold value is written with decimals, by
  accepting any prediction that rounds to it (within half a unit of the gold's last
  decimal). It is never relative: a relative tolerance of ``1e-6`` accepted ``26806603``
  for ``26806625``. A gold *integer* therefore needs the prediction within the absolute
  tolerance: ``12.4`` does not match ``12``.
* :func:`vote_key` maps a value to a hashable equivalence class for majority voting:
  numbers (and numeric strings) rounded to 6 decimals, integral values as ``int`` (so
  ``12``, ``12.0`` and ``"12"`` agree); other strings stripped, whitespace-collapsed and
  case-folded; lists and objects element-wise.
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable, Mapping
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

__all__ = ["decimals_of", "numbers_match", "to_number", "vote_key"]

_CURRENCY = "$€£¥₹"
_NUMBER_TEXT = re.compile(
    r"""
    ^(?P<sign>[+-]?)
    ["""
    + _CURRENCY
    + r"""]?
    (?P<sign2>[+-]?)
    (?P<body>
        \d{1,3}(?:,\d{3})+(?:\.\d*)?      # 1,234 / 1,234.5 (thousands separators)
      | \d+(?:_\d+)*(?:\.\d*)?            # 1234 / 1234. / 1_000
      | \.\d+                             # .5
    )
    (?P<exp>[eE][+-]?\d+)?
    \s*%?$
    """,
    re.VERBOSE,
)
_VOTE_DECIMALS = 6


def _number_text(text: str) -> str | None:
    """Return the plain decimal text of a number written as ``text`` (None if not one)."""
    m = _NUMBER_TEXT.match(text.strip())
    if m is None:
        return None
    if m.group("sign") and m.group("sign2"):
        return None
    sign = "-" if "-" in (m.group("sign") + m.group("sign2")) else ""
    body = m.group("body").replace(",", "").replace("_", "")
    if body.endswith("."):
        body = body[:-1]
    return sign + body + (m.group("exp") or "")


def to_number(value: Any) -> float | None:
    """Read a number from a value, or return None when it is not one.

    Args:
        value: An ``int``, ``float``, ``Decimal``, ``Fraction`` or numeric text such as
            ``"1,234.5"``, ``"$5"``, ``"12.0"``, ``"-3"``, ``"50%"`` (read as 50).

    Returns:
        The value as a float, or None for booleans, NaN/infinity, ``None`` and text that is
        not a number.
    """
    if isinstance(value, bool) or value is None:
        return None
    result: float
    if isinstance(value, (int, float, Decimal, Fraction)):
        try:
            result = float(value)
        except (OverflowError, ValueError):
            return None
    elif isinstance(value, str):
        text = _number_text(value)
        if text is None:
            return None
        try:
            result = float(text)
        except (OverflowError, ValueError):
            return None
    else:
        try:
            # numpy scalars and other numeric types implementing __float__.
            result = float(value)
        except (TypeError, ValueError, OverflowError):
            return None
    if math.isnan(result) or math.isinf(result):
        return None
    return result


def _exact_decimal(value: Any) -> Decimal | None:
    """The value as an exact ``Decimal`` of its shortest text (None if not a number)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, str):
        text = _number_text(value)
        if text is None:
            return None
        try:
            dec = Decimal(text)
        except InvalidOperation:
            return None
        return dec if dec.is_finite() else None
    number = to_number(value)
    if number is None:
        return None
    return Decimal(repr(number))


def decimals_of(gold: Any) -> int:
    """Number of decimals a gold value is written with.

    Text keeps its written decimals (``"12.50"`` -> 2); floats use their shortest repr
    without trailing zeros (``12.0`` -> 0, ``0.25`` -> 2); integers have 0.

    Args:
        gold: The gold value.

    Returns:
        The number of decimals (0 when not a number).
    """
    if isinstance(gold, (str, int, Decimal)):
        dec = _exact_decimal(gold)
    else:
        dec = _exact_decimal(gold)
        dec = dec.normalize() if dec is not None else None
    if dec is None:
        return 0
    exponent = dec.as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def numbers_match(pred: Any, gold: Any, *, abs_tol: float = 1e-6) -> bool:
    """Whether a predicted number matches a gold number.

    True when ``|pred - gold| <= abs_tol``, or when the gold is written with ``d >= 1``
    decimals and the prediction rounds to it at ``d`` decimals (``|pred - gold| <= 0.5 *
    10**-d``, computed exactly on the decimal text). Never relative.

    Args:
        pred: The predicted value (number or numeric text).
        gold: The expected value (number or numeric text).
        abs_tol: Absolute tolerance (default ``1e-6``).

    Returns:
        False when either side is not a number (see :func:`to_number`).
    """
    p = _exact_decimal(pred)
    g = _exact_decimal(gold)
    if p is None or g is None:
        return False
    diff = abs(p - g)
    if diff <= Decimal(repr(float(abs_tol))):
        return True
    d = decimals_of(gold)
    if d >= 1:
        return diff <= Decimal(5).scaleb(-(d + 1))
    return False


def _number_key(value: Any) -> Hashable | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return ("num", value)
    number = to_number(value)
    if number is None:
        return None
    rounded = round(number, _VOTE_DECIMALS)
    if rounded == 0:
        rounded = 0.0  # -0.0 and 0.0 vote together
    if rounded.is_integer():
        return ("num", int(rounded))
    return ("num", rounded)


def vote_key(value: Any) -> Hashable:
    """Map a value to the hashable class it votes for.

    Numbers and numeric strings: rounded to 6 decimals, integral values as ``int``
    (``12 == 12.0 == "12" == "12.0000001"``). Other strings: stripped, inner whitespace
    collapsed, case-folded (``" Paris" == "paris"``). Booleans and ``None`` stand for
    themselves. Lists and objects: element-wise (object keys as written).

    Args:
        value: Any JSON-like value.

    Returns:
        A hashable key; equal keys mean the values vote together.
    """
    if value is None:
        return ("null",)
    if isinstance(value, bool):
        return ("bool", value)
    number = _number_key(value)
    if number is not None:
        return number
    if isinstance(value, str):
        return ("str", " ".join(value.split()).casefold())
    if isinstance(value, Mapping):
        return ("obj", tuple(sorted((str(k), vote_key(v)) for k, v in value.items())))
    if isinstance(value, (list, tuple)):
        return ("list", tuple(vote_key(v) for v in value))
    return ("other", repr(value))
