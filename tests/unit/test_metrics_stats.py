"""Correctness, Wilson intervals, McNemar and summaries against known values."""

from __future__ import annotations

import pytest
from scipy import stats

from sgde.errors import UsageError
from sgde.evaluation.metrics import (
    accuracy,
    answer_correct,
    mcnemar,
    percentile,
    summarise,
    wilson_interval,
)


@pytest.mark.parametrize(
    ("pred", "gold", "ok"),
    [
        (18, 18, True),
        ("1,234", 1234, True),
        ("$5", 5.0, True),
        (26806603, 26806625, False),  # a relative 1e-6 tolerance would accept this
        (12.4, 12, False),
        (0.67, "0.67", True),
        ({"answer": 18}, 18, True),
        (None, 18, False),
        ("eighteen", 18, False),
        (" Paris ", "paris", True),
    ],
)
def test_answer_correct(pred: object, gold: object, ok: bool) -> None:
    assert answer_correct(pred, gold) is ok


@pytest.mark.parametrize(("k", "n"), [(5, 10), (0, 10), (10, 10), (81, 263), (1, 1)])
def test_wilson_interval_matches_scipy(k: int, n: int) -> None:
    z = stats.norm.ppf(0.975)
    ci = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
    assert wilson_interval(k, n, z=z) == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_wilson_interval_hand_computed() -> None:
    # k = 0: hi = (z^2/n) / (1 + z^2/n) with z = 1.96, n = 10
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.38416 / 1.38416), abs=1e-12)
    lo, hi = wilson_interval(5, 10)
    assert (lo + hi) / 2 == pytest.approx(0.5)


def test_wilson_interval_edges() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(UsageError):
        wilson_interval(3, 2)


def test_mcnemar_exact_for_few_discordant_pairs() -> None:
    # b = 1 (A right, B wrong), c = 9: exact two-sided binomial p = 22/1024
    a = [True] + [False] * 9 + [True] * 5
    b = [False] + [True] * 9 + [True] * 5
    stat, p = mcnemar(a, b)
    assert stat == 1.0
    assert p == pytest.approx(22 / 1024, rel=1e-9)


def test_mcnemar_chi_square_with_continuity() -> None:
    a = [True] * 30 + [False] * 10 + [True] * 20
    b = [False] * 30 + [True] * 10 + [True] * 20
    stat, p = mcnemar(a, b)
    assert stat == pytest.approx((20 - 1) ** 2 / 40)
    assert p == pytest.approx(0.0026640, abs=1e-6)


def test_mcnemar_no_discordance_and_misuse() -> None:
    assert mcnemar([True, False], [True, False]) == (0.0, 1.0)
    with pytest.raises(UsageError, match="paired"):
        mcnemar([True], [True, False])


def test_summaries() -> None:
    assert accuracy([True, False, True, True]) == 0.75
    assert accuracy([]) == 0.0
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile(list(range(1, 101)), 95) == pytest.approx(95.05)
    assert percentile([], 50) is None
    s = summarise([3.0, 1.0, 2.0])
    assert s["n"] == 3 and s["median"] == 2.0 and s["max"] == 3.0
    assert summarise([])["median"] is None
