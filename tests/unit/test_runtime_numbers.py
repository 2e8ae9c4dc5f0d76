"""Numeric normalisation: absolute tolerance, gold decimals, vote keys."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from sgde.runtime.numbers import decimals_of, numbers_match, to_number, vote_key


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3, 3.0),
        (2.5, 2.5),
        ("1,234.5", 1234.5),
        ("$5", 5.0),
        ("-$5", -5.0),
        ("$-5", -5.0),
        ("12.0", 12.0),
        (" 42 ", 42.0),
        ("50%", 50.0),
        ("1e6", 1_000_000.0),
        (".5", 0.5),
        ("7.", 7.0),
        ("1_000", 1000.0),
        ("+3", 3.0),
        (Decimal("1.25"), 1.25),
        (Fraction(1, 4), 0.25),
    ],
)
def test_to_number_reads_numbers(value: object, expected: float) -> None:
    assert to_number(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        None,
        "",
        "abc",
        "5 eggs",
        "12,5",
        "1,23",
        "--5",
        "$",
        float("nan"),
        float("inf"),
        "1.2.3",
        [1],
        {"a": 1},
    ],
)
def test_to_number_rejects_non_numbers(value: object) -> None:
    assert to_number(value) is None


def test_relative_tolerance_regression_is_rejected() -> None:
    # A relative 1e-6 tolerance accepted this pair; the absolute rule must not.
    assert not numbers_match(26806603, 26806625)
    assert not numbers_match(26806625.5, 26806625)


def test_absolute_tolerance() -> None:
    assert numbers_match(12.0000001, 12)
    assert numbers_match(0.1 + 0.2, 0.3)
    assert not numbers_match(12.00001, 12)
    assert numbers_match(12.00001, 12, abs_tol=1e-4)


def test_integer_gold_is_not_matched_by_rounding() -> None:
    assert not numbers_match(12.4, 12)
    assert not numbers_match("12.4", "12")


def test_gold_decimals_allow_rounding_of_prediction() -> None:
    assert numbers_match(3.3333333, "3.33")
    assert numbers_match(3.3333333, 3.33)
    assert numbers_match(2.675, "2.68")  # half-way rounds to the gold in either mode
    assert not numbers_match(3.336, "3.33")
    assert numbers_match(12.504, "12.50")
    assert not numbers_match(12.51, "12.50")


def test_numbers_match_accepts_text_and_rejects_non_numbers() -> None:
    assert numbers_match("1,234", 1234)
    assert numbers_match("$18", "18")
    assert not numbers_match("eighteen", 18)
    assert not numbers_match(None, 0)
    assert not numbers_match(True, 1)


def test_decimals_of() -> None:
    assert decimals_of(12) == 0
    assert decimals_of(12.0) == 0
    assert decimals_of(0.25) == 2
    assert decimals_of("12.50") == 2
    assert decimals_of("x") == 0


def test_vote_key_normalises_numbers() -> None:
    assert vote_key(12) == vote_key(12.0) == vote_key("12") == vote_key("12.0000001")
    assert vote_key(-0.0) == vote_key(0)
    assert vote_key(1.5) != vote_key(1.500002)
    assert vote_key(26806603) != vote_key(26806625)
    assert vote_key("1,234") == vote_key(1234)


def test_vote_key_strings_bools_and_structures() -> None:
    assert vote_key(" Paris ") == vote_key("paris")
    assert vote_key("New  York") == vote_key("new york")
    assert vote_key("a") != vote_key("b")
    assert vote_key(True) != vote_key(1)
    assert vote_key(None) != vote_key("null")
    assert vote_key([1, "A"]) == vote_key([1.0, "a"])
    assert vote_key({"b": 1, "a": 2.0}) == vote_key({"a": 2, "b": 1})
    hash(vote_key({"x": [1, {"y": None}]}))
