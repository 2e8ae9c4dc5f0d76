"""Candidate sources: multi-sample supervision, whole-task code, enumerative search, parsers."""

from __future__ import annotations

import math
from typing import Any

import pytest
from _sources_fakes import ScriptedTeacher, case_of, describer, fenced

from sgde.errors import TaskMetricError
from sgde.optimize.sources import (
    Program,
    SourceBudget,
    parser_candidates,
    program_candidates,
    search_expressions,
    solve_rows,
)
from sgde.optimize.sources.code import instrument, run_harnessed
from sgde.optimize.sources.parsers import perturbed_rows
from sgde.optimize.sources.solutions import sample_plan
from sgde.task import FieldType, TaskSpec, default_metric
from sgde.testing import InProcessCodeRunner

STRUCTURED = TaskSpec(
    description="Count how many times a letter occurs in a word.",
    inputs={"word": "string", "letter": "string"},
    outputs={"count": "integer"},
)
S_ROWS = [
    {"word": "strawberry", "letter": "r", "count": 3},
    {"word": "banana", "letter": "a", "count": 3},
    {"word": "kiwi", "letter": "i", "count": 2},
]

ORDER = TaskSpec(
    description="Compute the order total.",
    inputs={"question": "string"},
    outputs={"total": "number"},
)
O_ROWS = [
    {"question": "Buy 3 boxes at 4 dollars each, shipping 5.", "total": 17},
    {"question": "Buy 10 boxes at 2 dollars each, shipping 1.", "total": 21},
    {"question": "Buy 7 boxes at 6 dollars each, shipping 9.", "total": 51},
]


def test_sample_plan_alternates_styles_greedy_first() -> None:
    plan = sample_plan(4, seed=5)
    assert [(a.style, a.temperature) for a in plan] == [
        ("direct", 0.0),
        ("plan", 0.0),
        ("direct", 0.7),
        ("plan", 0.7),
    ]
    assert len({a.seed for a in plan[2:]}) == 2


async def test_solve_rows_keeps_every_verified_sample_with_intermediates() -> None:
    answers = {
        "direct@0": "def solution():\n    word = {w!r}\n    n = word.count({l!r})\n"
        "    return {{'count': n}}\n",
        "plan@0": "def solution():\n    return {{'count': 99}}\n",  # wrong
        "direct@1": "def solution():\n    word = {w!r}\n    return len([c for c in word "
        "if c == {l!r}])\n",
        "plan@1": "this is not code",
    }
    calls = {"solve": 0, "solve_plan": 0}

    def solve(kind: str):  # type: ignore[no-untyped-def]
        def reply(req):  # type: ignore[no-untyped-def]
            case = case_of(req, "The case:" if kind == "solve" else "Solve this case of the task:")
            style = "direct" if kind == "solve" else "plan"
            key = f"{style}@{0 if req.temperature == 0 else 1}"
            calls[kind] += 1
            return fenced(answers[key].format(w=case["word"], l=case["letter"]))

        return reply

    fake = ScriptedTeacher({"solve": solve("solve"), "solve_plan": solve("solve_plan")})
    events: list[Any] = []
    sols = await solve_rows(
        fake.teacher,
        InProcessCodeRunner(),
        STRUCTURED,
        S_ROWS,
        default_metric(STRUCTURED),
        samples=4,
        seed=0,
        events=events.append,
    )
    assert [len(s) for s in sols] == [2, 2, 2]
    first = sols[0][0]
    assert first.outputs == {"count": 3}
    assert first.intermediates == {"word": "strawberry", "n": 3}
    assert [s.style for s in sols[1]] == ["direct@0.0", "direct@0.7#16838"]  # 1000 + 2 * 7919
    assert calls == {"solve": 6, "solve_plan": 6}
    assert [e.data["verified"] for e in events] == [2, 2, 2]
    assert "scored 0.00" in " ".join(events[0].data["failures"])


async def test_solve_rows_stops_a_row_at_enough() -> None:
    fake = ScriptedTeacher(
        {"solve": lambda req: fenced("def solution():\n    return {'count': 3}\n")}
    )
    sols = await solve_rows(
        fake.teacher,
        InProcessCodeRunner(),
        STRUCTURED,
        S_ROWS[:1],
        default_metric(STRUCTURED),
        samples=4,
        seed=0,
        enough=1,
    )
    assert len(sols[0]) == 1 and fake.seen == ["solve"]


async def test_a_metric_that_raises_is_the_users_error() -> None:
    def broken(row, outputs):  # type: ignore[no-untyped-def]
        raise ValueError("boom")

    fake = ScriptedTeacher(
        {"solve": lambda req: fenced("def solution():\n    return {'count': 3}\n")}
    )
    with pytest.raises(TaskMetricError, match="boom"):
        await solve_rows(
            fake.teacher,
            InProcessCodeRunner(),
            STRUCTURED,
            S_ROWS[:1],
            broken,
            samples=1,
            seed=0,
        )


async def test_whole_task_code_over_structured_inputs_needs_no_student() -> None:
    whole = "```python\ndef run(word, letter):\n    return {'count': word.count(letter)}\n```"
    fake = ScriptedTeacher({"whole": lambda req: whole})
    programs = await program_candidates(
        fake.teacher,
        InProcessCodeRunner(),
        STRUCTURED,
        S_ROWS,
        default_metric(STRUCTURED),
        [[], [], []],
        budget=SourceBudget(whole_samples=2, enumerate=False),
    )
    assert len(programs) == 1
    p = programs[0]
    assert p.origin == "whole" and p.verified_rows == 3 and p.extracted == []
    assert p.raw_inputs == {"word": "word", "letter": "letter"}
    assert fake.seen == ["whole"]  # verified on the first sample: no more calls
    run = await run_harnessed(InProcessCodeRunner(), p.code, "run", {"word": "xx", "letter": "x"})
    assert run.result == {"count": 2}


async def test_whole_task_garbage_gives_no_program_and_says_why() -> None:
    fake = ScriptedTeacher({"whole": lambda req: "def run(x):\n    import os\n"})
    events: list[Any] = []
    programs = await program_candidates(
        fake.teacher,
        InProcessCodeRunner(),
        STRUCTURED,
        S_ROWS,
        default_metric(STRUCTURED),
        [[], [], []],
        budget=SourceBudget(whole_samples=2, enumerate=False),
        events=events.append,
    )
    assert programs == []
    assert any("run() must take" in e.message for e in events)


def test_enumerative_search_finds_a_times_b_plus_c_and_counts_hypotheses() -> None:
    rows = [[3, 4, 5], [10, 2, 1], [7, 6, 9]]
    golds = [17, 21, 51]
    result = search_expressions(["a", "b", "c"], rows, golds)
    assert result.expression in ("(a * b) + c", "c + (a * b)", "(a * b) + c".replace(" ", " "))
    assert result.ops == 2
    assert result.searched > 50
    # a constant or a one-row fit is never accepted
    assert search_expressions(["a"], [[1], [2]], [5, 5]).expression is None
    assert search_expressions(["a"], [[2]], [4]).expression is None


def test_enumerative_search_meets_in_the_middle_above_the_forward_levels() -> None:
    # b + t/2 + p + n - total: five operators, beyond the three built bottom-up
    rows = [[4, 94, 5, 7, 10], [384, 357, 2, 818, 39], [17, 5, 30, 12, 200]]
    golds = [r[1] + r[0] / 2 + r[2] + r[3] - r[4] for r in rows]
    names = ["t", "b", "p", "n", "total"]
    result = search_expressions(names, rows, golds, max_ops=5)
    assert result.expression is not None and result.ops == 5
    for row, gold in zip(rows, golds, strict=True):
        assert eval(result.expression, dict(zip(names, row, strict=True))) == gold
    # the hypotheses count every left-op-right the lookups cover, not only the lookups
    assert result.searched > 10**7
    # the same search capped at three operators finds nothing
    assert search_expressions(names, rows, golds, max_ops=3).expression is None
    # a capped lookup budget stops the stage without a result
    assert search_expressions(names, rows, golds, max_ops=5, max_lookups=10).expression is None


def test_meet_in_the_middle_floors_to_a_whole_gold_of_an_integer_output() -> None:
    # the golds are the halves floored (76.5 -> 76): found only with integer=True, as int(e // 1)
    rows = [[5, 70, 28, 6, 30], [7, 9, 6249, 914, 3], [80, 6867, 59346, 25382, 70552]]
    golds = [math.floor(r[1] + r[0] / 2 + r[2] + r[3] - r[4]) for r in rows]
    names = ["t", "b", "p", "n", "total"]
    assert search_expressions(names, rows, golds, max_ops=5).expression is None
    result = search_expressions(names, rows, golds, max_ops=5, integer=True)
    assert result.expression is not None and result.expression.startswith("int(")
    assert eval(result.expression, {"t": 3, "b": 10, "p": 1, "n": 1, "total": 2}) == 11


async def test_enumerative_source_when_no_teacher_code_verifies() -> None:
    fake = ScriptedTeacher(
        {
            "whole": lambda req: "no idea",
            "describe": describer(text="the {} meaning here"),
        }
    )
    programs = await program_candidates(
        fake.teacher,
        InProcessCodeRunner(),
        ORDER,
        O_ROWS,
        default_metric(ORDER),
        [[], [], []],
        budget=SourceBudget(whole_samples=1),
    )
    assert [p.origin for p in programs] == ["enumerative"]
    p = programs[0]
    assert p.verified_rows == 3 and p.searched > 50
    assert list(p.params) == ["q1_boxes", "q2_dollars", "q3_number"]
    assert p.values[1] == {"q1_boxes": 10, "q2_dollars": 2, "q3_number": 1}
    assert p.descriptions["q1_boxes"] == "the q1_boxes meaning here"


async def test_parser_verified_on_rows_and_perturbations() -> None:
    program = Program(
        "def run(boxes, price, shipping):\n    return {'total': boxes * price + shipping}\n",
        {n: FieldType(kind="integer") for n in ("boxes", "price", "shipping")},
        [
            {"boxes": 3, "price": 4, "shipping": 5},
            {"boxes": 10, "price": 2, "shipping": 1},
            {"boxes": 7, "price": 6, "shipping": 9},
        ],
        descriptions={"boxes": "how many boxes", "price": "price of a box"},
        verified_rows=3,
    )
    good = (
        "```python\nimport re\n\ndef run(question):\n"
        "    boxes = int(re.search(r'(\\d+) boxes', question).group(1))\n"
        "    price = int(re.search(r'at (\\d+) dollars', question).group(1))\n"
        "    return {'boxes': boxes, 'price': price}\n```"
    )
    hard_coded = (
        "def run(question):\n    table = {'Buy 3': (3, 4), 'Buy 1': (10, 2), 'Buy 7': (7, 6)}\n"
        "    b, p = table[question[:5]]\n    return {'boxes': b, 'price': p}\n"
    )
    answers = iter([hard_coded, good])
    fake = ScriptedTeacher({"parser": lambda req: next(answers)})
    extra = perturbed_rows(ORDER, O_ROWS, program, ["boxes", "price"])
    assert extra[0] == (
        {"question": "Buy 10 boxes at 4 dollars each, shipping 5."},
        {"boxes": 10, "price": 4},
    )
    parsers = await parser_candidates(
        fake.teacher,
        InProcessCodeRunner(),
        ORDER,
        O_ROWS,
        program,
        ["boxes", "price"],
        samples=2,
        seed=0,
    )
    assert len(parsers) == 1
    assert parsers[0].fields == ["boxes", "price"] and parsers[0].verified_rows == 3
    assert parsers[0].searched == 2 and parsers[0].checked_perturbations == len(extra)


def test_instrument_reports_straight_line_intermediates() -> None:
    code = (
        "def run(x):\n    y = x + 1\n    if y > 2:\n        z = 5\n        return y\n"
        "    w = y * 2\n    return w\n"
    )
    out = instrument(code, "run")
    env: dict[str, Any] = {}
    exec(compile(out, "<test>", "exec"), env)  # our own test code
    assert env["run"](5) == {"result": 6, "vars": {"y": 6}}
    assert env["run"](0) == {"result": 2, "vars": {"y": 1, "w": 2}}


async def test_usage_examples_after_the_solution_do_not_fail_verification() -> None:
    reply = fenced(
        "def solution():\n    return {'count': 3}\n\nprint(solution())\n"
        "if __name__ == '__main__':\n    solution()\n"
    )
    fake = ScriptedTeacher({"solve": lambda req: reply})
    sols = await solve_rows(
        fake.teacher,
        InProcessCodeRunner(),
        STRUCTURED,
        S_ROWS[:1],
        default_metric(STRUCTURED),
        samples=1,
        seed=0,
    )
    assert len(sols[0]) == 1 and "print" not in sols[0][0].code


async def test_over_fields_a_lift_reads_inputs_raw_and_whole_code_ranks_first() -> None:
    from sgde.optimize.sources import RowSolution

    whole = "```python\ndef run(word, letter):\n    return {'count': word.count(letter)}\n```"
    fake = ScriptedTeacher({"whole": lambda req: whole})
    code = "def solution():\n    word = 'strawberry'\n    return {'count': word.count('r')}\n"
    programs = await program_candidates(
        fake.teacher,
        InProcessCodeRunner(),
        STRUCTURED,
        S_ROWS,
        default_metric(STRUCTURED),
        [[RowSolution(0, code, {"count": 3})], [], []],
        budget=SourceBudget(whole_samples=1, enumerate=False),
    )
    assert [p.origin for p in programs] == ["whole", "lift"]
    lifted = programs[1]
    assert lifted.raw_inputs == {"word": "word", "letter": "letter"} and not lifted.extracted
    assert lifted.values[1] == {"word": "banana", "letter": "a"}


async def test_enumerative_reads_a_reordered_row_with_the_teacher() -> None:
    rows = [
        O_ROWS[0],
        {"question": "Shipping is 1. Buy 10 boxes at 2 dollars each.", "total": 21},
        O_ROWS[2],
    ]

    def extract(req):  # type: ignore[no-untyped-def]
        assert "Shipping is 1." in case_of(req, "Now this case:")["question"]
        return {"q1_boxes": 10, "q2_dollars": 2, "q3_number": 1}

    fake = ScriptedTeacher({"extract": extract, "describe": describer()})
    programs = await program_candidates(
        fake.teacher,
        InProcessCodeRunner(),
        ORDER,
        rows,
        default_metric(ORDER),
        [[], [], []],
        budget=SourceBudget(whole_samples=0),
    )
    assert [p.origin for p in programs] == ["enumerative"]
    assert programs[0].values[1] == {"q1_boxes": 10, "q2_dollars": 2, "q3_number": 1}
    assert fake.seen.count("extract") == 1
