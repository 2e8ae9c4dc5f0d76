"""How numbers read in reports: percentages, counts, p-values and costs.

These are the jinja filters of the report templates, and the functions scripts use for the
same numbers, so a value reads the same everywhere.
"""

from __future__ import annotations

import math
from typing import Any

from sgde.models.usage import format_cost

__all__ = ["format_cost", "format_number", "format_p_value", "format_pct"]

P_FLOOR = 1e-16
"""Below this a p-value is shown as ``< 1e-16``: double precision cannot resolve it."""


def format_pct(value: Any) -> str:
    """``0.925`` -> ``"92.5 %"``; ``None`` -> ``"–"``."""
    return "–" if value is None else f"{100 * float(value):.1f} %"


def format_number(value: Any, digits: int = 1) -> str:
    """A number with thousands separators and ``digits`` decimals; ``None`` -> ``"–"``."""
    if value is None:
        return "–"
    number = float(value)
    if number.is_integer() and digits == 0:
        return f"{int(number):,}"
    return f"{number:,.{digits}f}"


def format_p_value(value: Any) -> str:
    """A p-value that never reads as zero.

    ``0.0312`` -> ``"0.031"``; ``0.00042`` -> ``"4.2e-04"``; ``3.25e-09`` -> ``"3.2e-09"``;
    anything below 1e-16 (including an underflow to 0.0) -> ``"< 1e-16"``; ``None`` -> ``"–"``.
    """
    if value is None:
        return "–"
    p = float(value)
    if math.isnan(p):
        return "–"
    if p < P_FLOOR:
        return "< 1e-16"
    if p < 0.001:
        return f"{p:.1e}"
    return f"{p:.3f}"
