"""Final-number extraction and program extraction (PAL/PoT) edge cases."""

from __future__ import annotations

import pytest

from sgde.evaluation.baselines.final_number import extract_final_number, run
from sgde.evaluation.baselines.plans import final_number_source, format_number
from sgde.evaluation.baselines.programs import pal_program, pot_program


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The answer is 42.", 42.0),
        ("The answer is -17", -17.0),
        ("so x = -3.25 in the end", -3.25),
        ("The answer is $1,234,567.50.", 1234567.5),
        ("Total: 26,806,625 dollars", 26806625.0),
        ("The answer is: **-3.5**", -3.5),
        ("It costs -$5.", -5.0),
        ("It costs $-4 net", -4.0),
        ("5-3=2", 2.0),  # a subtraction, not -3
        ("We get 12.", 12.0),  # full stop ends the sentence
        ("values 1,2,3", 3.0),  # not thousands groups
        ("The answer is 5 + 3 = 8. Check: 2 steps", 8.0),  # '=' in the answer segment
        ("The answer is 14. Step 3 was easy", 14.0),  # marker beats the last number
        ("Answer: 7\nThen I doubt it: 9", 7.0),
        ("#### 1000000", 1000000.0),
        ("\\boxed{3.75} done 9", 3.75),
        ("about 1.5e6 units", 1500000.0),
        ("50% of them", 50.0),
        ("no digits at all", None),
        ("", None),
    ],
)
def test_extract_final_number(text: str, expected: float | None) -> None:
    assert extract_final_number(text) == expected


def test_run_returns_int_for_integral_and_none_for_missing() -> None:
    assert run("The answer is 12.0") == {"answer": 12}
    assert isinstance(run("The answer is 12.0")["answer"], int)
    assert run("answer is 2.5") == {"answer": 2.5}
    assert run("nothing") == {"answer": None}


def test_extraction_source_is_sandbox_friendly() -> None:
    source = final_number_source()
    assert "def run(" in source
    assert "__future__" not in source
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert imports == ["import re"]


@pytest.mark.parametrize(
    ("value", "text"),
    [(42.0, "42"), (2.5, "2.5"), (-3, "-3"), (1.2345678901234567e16, "12345678901234568")],
)
def test_format_number(value: float, text: str) -> None:
    assert format_number(value) == text


def test_pal_program_keeps_defs_and_drops_prints_and_main_guard() -> None:
    reply = (
        "Here you go:\n```python\nimport math\nRATE = 3\ndef solution():\n    return RATE * 2\n"
        "print(solution())\nif __name__ == '__main__':\n    solution()\n```\nDone."
    )
    program = pal_program(reply)
    assert "def solution():" in program
    assert "RATE = 3" in program and "import math" in program
    assert "print" not in program and "__name__" not in program


def test_pal_program_prefers_block_defining_solution() -> None:
    reply = "```\nx = 1\n```\nand\n```python\ndef solution():\n    return 5\n```"
    assert pal_program(reply).strip() == "def solution():\n    return 5"


def test_pal_program_without_fence_or_parse_passes_text_through() -> None:
    assert pal_program("def solution(:\n  return") == "def solution(:\n  return"


def test_pot_program_wraps_body_and_returns_ans() -> None:
    program = pot_program("```python\nx = 5\ny = 7\nans = x * y\nprint(ans)\n```")
    assert program.startswith("def solution():\n")
    assert "    ans = x * y" in program
    assert program.rstrip().endswith("return ans")
    assert "print" not in program
    compile(program, "<pot>", "exec")  # syntactically valid (compiled, never run)


def test_pot_program_picks_block_assigning_ans() -> None:
    program = pot_program("```python\nprint('hi')\n```\n```python\nans = 3\n```")
    assert "ans = 3" in program
