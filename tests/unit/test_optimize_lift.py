"""Deterministic literal lifting (solve, then lift)."""

from __future__ import annotations

import pytest
from _optimize_fakes import GOOD_SOLUTION, TEXT

from sgde.optimize.lift import (
    LiftError,
    align_params,
    extract_code,
    find_numbers,
    lift_solution,
    snippet,
)


def _run(code: str, **kwargs: object) -> object:
    env: dict[str, object] = {}
    exec(code, env)
    return env["run"](**kwargs)  # type: ignore[operator]


def test_find_numbers_reads_commas_decimals_and_percent() -> None:
    found = find_numbers("Pay $1,234.50 for 3 items, 25% off; 7.")
    assert [n.value for n in found] == [1234.5, 3, 25, 7]
    assert [n.percent for n in found] == [False, False, True, False]
    assert isinstance(found[1].value, int)


def test_lift_names_parameters_after_assigned_variables() -> None:
    text = TEXT.format(a=16, b=3, c=4, d=2)
    lift = lift_solution(GOOD_SOLUTION.format(a=16, b=3, c=4, d=2), text)
    assert [p.name for p in lift.params] == ["eggs_per_day", "eaten", "baked", "price"]
    assert [p.position for p in lift.params] == [0, 1, 2, 3]
    assert lift.seed_values() == {"eggs_per_day": 16, "eaten": 3, "baked": 4, "price": 2}
    assert "def run(eggs_per_day, eaten, baked, price)" in lift.code
    assert _run(lift.code, eggs_per_day=1600, eaten=31, baked=47, price=7) == {
        "answer": (1600 - 31 - 47) * 7
    }
    # the student sees the context with the number masked, not the seed's number
    assert "lay ___ eggs" in lift.params[0].context
    assert "16" in lift.params[0].snippet and "16" not in lift.params[0].context


def test_align_params_by_position_and_refuses_other_templates() -> None:
    text = TEXT.format(a=16, b=3, c=4, d=2)
    lift = lift_solution(GOOD_SOLUTION.format(a=16, b=3, c=4, d=2), text)
    other = TEXT.format(a=9021, b=250, c=33, d=13)
    assert align_params(lift, other) == {
        "eggs_per_day": 9021,
        "eaten": 250,
        "baked": 33,
        "price": 13,
    }
    assert align_params(lift, "A different problem with 1 and 2 numbers.") is None


def test_literals_in_expressions_percent_and_constants() -> None:
    code = (
        "import math\n"
        "def solution():\n"
        "    total = 16 * 2 - 3\n"
        "    share = 0.25 * total\n"
        "    weeks = 7\n"
        "    return share * weeks\n"
    )
    text = "He has 16 apples and 3 pears; 25% go to 2 friends."
    lift = lift_solution(code, text)
    names = [p.name for p in lift.params]
    assert len(names) == len(set(names)) == 4  # 16, 3, 25%, 2 lifted; 7 stays a constant
    pct = [p for p in lift.params if p.percent]
    assert len(pct) == 1 and pct[0].value == 25
    args = {p.name: p.value for p in lift.params}
    assert _run(lift.code, **args) == {"answer": 0.25 * (16 * 2 - 3) * 7}
    assert "7" in lift.code and "import math" in lift.code


def test_same_value_twice_becomes_one_parameter() -> None:
    code = "def solution():\n    a = 5\n    return a * 5 + 5\n"
    lift = lift_solution(code, "Take 5 boxes.")
    assert [p.name for p in lift.params] == ["a"]
    assert _run(lift.code, a=6) == {"answer": 6 * 6 + 6}


def test_lift_errors() -> None:
    with pytest.raises(LiftError, match="does not parse"):
        lift_solution("def solution(:\n", "1 2")
    with pytest.raises(LiftError, match="no top-level function"):
        lift_solution("def other():\n    return 1\n", "1 2")
    with pytest.raises(LiftError, match="no numeric literal"):
        lift_solution("def solution():\n    return 99\n", "Take 5 boxes.")
    with pytest.raises(LiftError, match="no number"):
        lift_solution("def solution():\n    return 99\n", "no numbers here")


def test_returns_in_branches_are_wrapped_but_nested_functions_are_not() -> None:
    code = (
        "def solution():\n"
        "    def helper(x):\n"
        "        return x * 2\n"
        "    n = 4\n"
        "    if n > 3:\n"
        "        return helper(n)\n"
        "    return 0\n"
    )
    lift = lift_solution(code, "There are 4 cats.")
    assert _run(lift.code, n=4) == {"answer": 8}
    assert _run(lift.code, n=2) == {"answer": 0}


def test_extract_code_and_snippet() -> None:
    assert extract_code("Here:\n```python\ndef f():\n    return 1\n```\nDone") == (
        "def f():\n    return 1\n"
    )
    assert extract_code("def f():\n    return 1") == "def f():\n    return 1\n"
    text = "one two three four 42 five six seven eight"
    s = snippet(text, text.index("42"), text.index("42") + 2, width=10)
    assert "42" in s and "four" in s and "one" not in s
