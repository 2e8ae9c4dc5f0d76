"""Scoring and statistics: answer correctness, Wilson intervals, McNemar, summaries.

Correctness is :func:`sgde.task.answer_correct` (the one gold matcher): numbers match within
an absolute tolerance of 1e-6 or exactly after rounding the prediction to the gold's decimals —
never relatively (:func:`sgde.runtime.numbers.numbers_match`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from sgde.errors import UsageError
from sgde.task import FieldType
from sgde.task import answer_correct as task_answer_correct

__all__ = [
    "EXACT_MCNEMAR_MAX_DISCORDANT",
    "accuracy",
    "answer_correct",
    "mcnemar",
    "percentile",
    "summarise",
    "wilson_interval",
]

EXACT_MCNEMAR_MAX_DISCORDANT = 25
"""Up to this many discordant pairs :func:`mcnemar` uses the exact binomial test."""


def answer_correct(pred: Any, gold: Any, ftype: FieldType | None = None) -> bool:
    """Whether a prediction is correct for a gold answer.

    Delegates to :func:`sgde.task.answer_correct`, the one gold matcher (numbers by
    :func:`~sgde.runtime.numbers.numbers_match`, text normalised, dates, lists, labels; the
    type read from the gold value unless ``ftype`` is given). A prediction that is a mapping
    with exactly one value is unwrapped (``{"answer": 18}``) unless the gold is a mapping too.

    Args:
        pred: The predicted answer (``None`` for "no answer").
        gold: The gold answer.
        ftype: The answer's type, when the task declares it.
    """
    if isinstance(pred, Mapping) and len(pred) == 1 and not isinstance(gold, Mapping):
        pred = next(iter(pred.values()))
    return task_answer_correct(pred, gold, ftype)


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion ``k / n``.

    Args:
        k: Successes (``0 <= k <= n``).
        n: Trials; ``n == 0`` gives the uninformative ``(0.0, 1.0)``.
        z: Normal quantile (1.96 for 95 %).

    Returns:
        ``(lo, hi)`` within ``[0, 1]``.

    Raises:
        UsageError: if ``k`` or ``n`` are out of range.
    """
    if n < 0 or k < 0 or k > n:
        raise UsageError(f"wilson_interval needs 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def mcnemar(a_correct: Sequence[bool], b_correct: Sequence[bool]) -> tuple[float, float]:
    """McNemar's test for two methods scored on the same items.

    Only discordant pairs count: ``b`` (a right, b wrong) and ``c`` (a wrong, b right).
    With ``b + c <= 25`` (:data:`EXACT_MCNEMAR_MAX_DISCORDANT`) the exact two-sided binomial
    test is used (as ``scipy.stats.binomtest(b, b + c, 0.5)``; the statistic returned is
    ``min(b, c)``); above it the chi-square statistic with continuity correction
    ``(|b - c| - 1)^2 / (b + c)`` with one degree of freedom. No discordant pairs gives
    ``(0.0, 1.0)``.

    Args:
        a_correct: Per-item correctness of method A.
        b_correct: Per-item correctness of method B, same items in the same order.

    Returns:
        ``(statistic, p_value)``.

    Raises:
        UsageError: if the sequences differ in length.
    """
    if len(a_correct) != len(b_correct):
        raise UsageError(
            f"mcnemar needs paired results: {len(a_correct)} vs {len(b_correct)} items"
        )
    b = sum(1 for x, y in zip(a_correct, b_correct, strict=True) if x and not y)
    c = sum(1 for x, y in zip(a_correct, b_correct, strict=True) if y and not x)
    n = b + c
    if n == 0:
        return (0.0, 1.0)
    # Both tails in closed form with the standard library (no scipy at run time): the
    # binomial(n, 1/2) distribution is symmetric, so the two-sided exact p-value is twice the
    # lower tail (what ``scipy.stats.binomtest`` returns); the chi-square survival function
    # with one degree of freedom is ``erfc(sqrt(x / 2))``.
    if n <= EXACT_MCNEMAR_MAX_DISCORDANT:
        tail = sum(math.comb(n, k) for k in range(min(b, c) + 1))
        return (float(min(b, c)), min(1.0, 2 * tail / 2**n))
    statistic = (abs(b - c) - 1) ** 2 / n
    return (float(statistic), math.erfc(math.sqrt(statistic / 2)))


def accuracy(correct: Sequence[bool]) -> float:
    """Fraction of true values (0.0 for an empty sequence)."""
    return sum(1 for c in correct if c) / len(correct) if correct else 0.0


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100, linear interpolation); None for no values."""
    if not values:
        return None
    if not 0 <= q <= 100:
        raise UsageError(f"percentile q must be in [0, 100], got {q}")
    ordered = sorted(float(v) for v in values)
    pos = (len(ordered) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarise(values: Sequence[float]) -> dict[str, float | int | None]:
    """``{"n", "mean", "median", "p95", "min", "max"}`` of a sample (None when empty)."""
    if not values:
        return {"n": 0, "mean": None, "median": None, "p95": None, "min": None, "max": None}
    return {
        "n": len(values),
        "mean": sum(values) / len(values),
        "median": percentile(values, 50),
        "p95": percentile(values, 95),
        "min": float(min(values)),
        "max": float(max(values)),
    }
