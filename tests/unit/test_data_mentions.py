"""Numbers written in text: digits, words, money, percentages, and what stays fixed."""

from __future__ import annotations

from sgde.evaluation.gsm._mentions import find_mentions, pair_mentions
from sgde.evaluation.gsm.templates import format_number


def _summary(text: str) -> list[tuple[str, float, bool]]:
    return [(m.text, m.value, m.slot) for m in find_mentions(text)]


def test_digits_words_money_and_percent() -> None:
    found = find_mentions("She eats three eggs, pays $1,500.50 and gets 20% off twenty-five times.")
    assert [(m.text, m.value) for m in found] == [
        ("three", 3.0),
        ("1,500.50", 1500.5),
        ("20", 20.0),
        ("twenty-five", 25.0),
    ]
    assert found[1].money and found[1].decimals == 2
    assert found[2].percent
    assert all(m.slot for m in found)


def test_structural_numbers_stay_fixed() -> None:
    summary = _summary("On the 3rd day at 2:30 she ate 1/2 of one pie and two-thirds of 1 cake.")
    assert all(not slot for _, _, slot in summary), summary


def test_numbers_broken_by_replacement_are_malformed() -> None:
    assert any(m.malformed for m in find_mentions("costs $1,9999999 in all"))
    assert any(m.malformed for m in find_mentions("forty-870373 apples"))
    assert any(m.malformed for m in find_mentions("pay $0.5000000000000001 each"))
    assert not any(m.malformed for m in find_mentions("pay $0.50 each for 80,000 items"))


def test_pair_mentions_lines_up_two_wordings() -> None:
    a = "She eats three and bakes with 4933828. She sells at $2."
    b = "She eats three and bakes with four. She sells at $2."
    pairs = pair_mentions(a, find_mentions(a), b, find_mentions(b))
    assert pairs == {0: 0, 1: 1, 2: 2}


def test_format_number_writes_numbers_like_a_person() -> None:
    assert format_number(12.0) == "12"
    assert format_number(12) == "12"
    assert format_number(10_000_000) == "10000000"
    assert format_number(2.5) == "2.5"
    assert format_number(2.5, decimals=2) == "2.50"
    assert format_number(1234567, thousands=True) == "1,234,567"
    assert format_number(0.1 + 0.2) == "0.3"
