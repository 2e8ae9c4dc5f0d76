"""Deterministic per-field majority voting."""

from __future__ import annotations

from sgde.runtime.consensus import VoteResult, vote


def test_per_field_majority_with_numeric_normalisation() -> None:
    result = vote(
        [
            {"eggs": 16, "price": 2.0},
            {"eggs": 16.0, "price": 3},
            {"eggs": "16", "price": 2},
            None,
            {"eggs": 15, "price": 3},
        ]
    )
    assert result.value == {"eggs": 16, "price": 2.0}
    assert result.valid == 4
    assert result.n == 5
    assert result.tally["eggs"] == [("16", 3), ("15", 1)]
    # price: 2.0 (samples 0, 2) vs 3 (samples 1, 4) tie -> first occurrence (sample 0) wins.
    assert result.tally["price"] == [("2.0", 2), ("3", 2)]
    assert result.winners == {"eggs": 0, "price": 0}


def test_tie_break_is_lowest_first_index_not_value_order() -> None:
    assert vote([{"a": "z"}, {"a": "b"}]).value == {"a": "z"}
    assert vote([{"a": "b"}, {"a": "z"}]).value == {"a": "b"}
    assert vote([None, {"a": 9}, {"a": 1}, {"a": 1}, {"a": 9}]).value == {"a": 9}


def test_winning_value_is_first_original_in_class() -> None:
    result = vote([{"city": "paris"}, {"city": " Paris "}, {"city": "PARIS"}, {"city": "Rome"}])
    assert result.value == {"city": "paris"}
    assert result.tally["city"][0] == ('"paris"', 3)


def test_fields_vote_independently_and_missing_fields_do_not_vote() -> None:
    result = vote([{"a": 1, "b": 1}, {"a": 2}, {"a": 2, "b": 3}])
    assert result.value == {"a": 2, "b": 1}
    assert result.tally["b"] == [("1", 1), ("3", 1)]


def test_no_valid_samples() -> None:
    result = vote([None, None])
    assert result.value == {}
    assert result.valid == 0
    assert result.agreement() == {}


def test_agreement_and_roundtrip() -> None:
    result = vote([{"a": 1}, {"a": 1}, {"a": 2}, None])
    assert result.agreement() == {"a": 2 / 3}
    data = result.to_dict()
    assert data["agreement"] == {"a": round(2 / 3, 6)}
    back = VoteResult.from_dict(data)
    assert back == result


def test_order_independence_of_dict_keys_inside_values() -> None:
    result = vote([{"o": {"x": 1, "y": 2}}, {"o": {"y": 2.0, "x": 1}}, {"o": {"x": 3}}])
    assert result.value == {"o": {"x": 1, "y": 2}}
    assert result.tally["o"][0][1] == 2
