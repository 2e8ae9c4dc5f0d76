"""McNemar's test (closed forms, standard library) agrees with scipy on every small table."""

from __future__ import annotations

import pytest

from sgde.evaluation.metrics import EXACT_MCNEMAR_MAX_DISCORDANT, mcnemar

stats = pytest.importorskip("scipy.stats")  # the reference; scipy is a dev dependency


def _pairs(b: int, c: int, both: int = 3) -> tuple[list[bool], list[bool]]:
    a = [True] * b + [False] * c + [True] * both
    other = [False] * b + [True] * c + [True] * both
    return a, other


@pytest.mark.parametrize("n", range(1, 61))
def test_mcnemar_matches_scipy(n: int) -> None:
    for b in range(n + 1):
        c = n - b
        stat, p = mcnemar(*_pairs(b, c))
        if n <= EXACT_MCNEMAR_MAX_DISCORDANT:
            expected = min(1.0, stats.binomtest(b, n, 0.5).pvalue)
            assert stat == min(b, c)
        else:
            expected = stats.chi2.sf((abs(b - c) - 1) ** 2 / n, df=1)
            assert stat == pytest.approx((abs(b - c) - 1) ** 2 / n)
        assert p == pytest.approx(expected, rel=1e-9, abs=1e-300), (b, c)
