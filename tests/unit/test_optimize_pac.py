"""PAC bound calculators."""

from __future__ import annotations

import math

import pytest

from sgde.errors import UsageError
from sgde.optimize.pac import (
    delta_for,
    epsilon_for,
    epsilon_occam,
    pac_statement,
    sample_size,
    sample_size_occam,
)


def test_finite_class_bound_round_trips() -> None:
    m = sample_size(0.1, 0.05, 10)
    assert m == math.ceil((math.log(10) + math.log(20)) / 0.1)
    assert epsilon_for(m, 0.05, 10) <= 0.1
    assert epsilon_for(m - 1, 0.05, 10) > 0.1
    assert delta_for(m, 0.1, 10) <= 0.05 + 1e-12


def test_occam_form_with_uniform_prior_equals_finite_class() -> None:
    assert sample_size_occam(0.1, 0.05, math.log(10)) == sample_size(0.1, 0.05, 10)
    assert epsilon_occam(3, 0.05, math.log(4)) == pytest.approx(epsilon_for(3, 0.05, 4))


def test_invalid_arguments_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="epsilon"):
        sample_size(0.0, 0.05, 3)
    with pytest.raises(UsageError, match="delta"):
        sample_size(0.1, 1.5, 3)
    with pytest.raises(UsageError, match="hypotheses"):
        sample_size(0.1, 0.05, 0)
    with pytest.raises(UsageError, match="m must be"):
        epsilon_for(0, 0.05, 3)


def test_statement_for_consistent_and_inconsistent_compiles() -> None:
    ok = pac_statement(m=3, hypotheses=4, delta=0.05, consistent=True, ln_inv_prior=1.0)
    assert ok.epsilon_finite == pytest.approx((math.log(4) + math.log(20)) / 3)
    assert "vacuous" in ok.text()  # m = 3 gives eps > 1: said plainly
    bad = pac_statement(m=3, hypotheses=4, delta=0.05, consistent=False, ln_inv_prior=1.0)
    assert bad.epsilon_finite is None and "no guarantee" in bad.text()
    assert ok.to_dict()["hypotheses"] == 4
