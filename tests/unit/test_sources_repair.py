"""Repair rounds of the candidate sources: a row no sample solved, a whole-task program that
fails on some rows. The teacher is shown the failing case (expected outputs, the sandbox error
or what the code returned); its corrected code is verified like any sample."""

from __future__ import annotations

from typing import Any

from _sources_fakes import ScriptedTeacher, case_of, fenced

from sgde.optimize.sources import SourceBudget, program_candidates, solve_rows
from sgde.optimize.sources.code import run_harnessed
from sgde.runtime.backend import ChatRequest
from sgde.task import TaskSpec, default_metric
from sgde.testing import InProcessCodeRunner

RULE = TaskSpec(
    description=(
        "Price of a parcel: base + rate x kg by zone. near: 4.00 + 1.50/kg; far: 9.00 + 2.50/kg."
    ),
    inputs={"zone": "string", "kg": "number"},
    outputs={"price": "number"},
)
ROWS = [
    {"zone": "near", "kg": 2.0, "price": 7.0},
    {"zone": "far", "kg": 4.0, "price": 19.0},
    {"zone": "far", "kg": 1.0, "price": 11.5},
]

_BROKEN_ROW = """def solution():
    zone = {zone!r}
    kg = {kg!r}
    rate = 1.50 if zone == "near" else 2.50
    return {{"price": round(base + rate * kg, 2)}}
"""
_FIXED_ROW = """def solution():
    zone = {zone!r}
    kg = {kg!r}
    base = 4.00 if zone == "near" else 9.00
    rate = 1.50 if zone == "near" else 2.50
    return {{"price": round(base + rate * kg, 2)}}
"""


def _text(req: ChatRequest) -> str:
    return "\n".join(m.content for m in req.messages if m.role == "user")


def _row_teacher(prompts: list[str]) -> ScriptedTeacher:
    def solve(req: ChatRequest) -> str:
        case = case_of(req)
        return fenced(_BROKEN_ROW.format(**case))

    def repair(req: ChatRequest) -> str:
        prompts.append(_text(req))
        case = case_of(req)
        return fenced(_FIXED_ROW.format(**case))

    return ScriptedTeacher({"solve": solve, "repair_row": repair})


async def test_a_row_no_sample_solved_is_repaired_from_its_error_and_expected_outputs() -> None:
    prompts: list[str] = []
    fake = _row_teacher(prompts)
    events: list[Any] = []
    sols = await solve_rows(
        fake.teacher,
        InProcessCodeRunner(),
        RULE,
        ROWS,
        default_metric(RULE),
        samples=1,
        seed=0,
        events=events.append,
    )
    assert [len(s) for s in sols] == [1, 1, 1]
    assert [s[0].style for s in sols] == ["repair@0"] * 3
    assert sols[1][0].intermediates["base"] == 9.0
    assert fake.seen == ["solve", "repair_row"] * 3
    # the repair prompt shows the failing code, the sandbox error and the row's gold
    assert "NameError" in prompts[0] and "base" in prompts[0]
    assert 'Expected outputs: {"price": 7.0}' in prompts[0]


async def test_without_repairs_no_row_is_solved() -> None:
    fake = _row_teacher([])
    sols = await solve_rows(
        fake.teacher,
        InProcessCodeRunner(),
        RULE,
        ROWS,
        default_metric(RULE),
        samples=1,
        seed=0,
        repairs=0,
    )
    assert sols == [[], [], []]
    assert fake.seen == ["solve"] * 3


async def test_a_repair_repeating_the_failed_code_is_not_kept() -> None:
    def solve(req: ChatRequest) -> str:
        return fenced(_BROKEN_ROW.format(**case_of(req)))

    fake = ScriptedTeacher({"solve": solve, "repair_row": solve})  # returns the same code
    sols = await solve_rows(
        fake.teacher,
        InProcessCodeRunner(),
        RULE,
        ROWS[:1],
        default_metric(RULE),
        samples=1,
        seed=0,
        repairs=2,
    )
    assert sols == [[]]
    assert fake.seen == ["solve", "repair_row", "repair_row"]  # greedy, then sampled


_WHOLE_WRONG = """def run(zone, kg):
    base = 4.00 if zone == "near" else 9.00
    return {"price": round(base + 2.50 * kg, 2)}
"""
_WHOLE_RIGHT = """def run(zone, kg):
    base, rate = (4.00, 1.50) if zone == "near" else (9.00, 2.50)
    return {"price": round(base + rate * kg, 2)}
"""


def _whole_teacher(prompts: list[str]) -> ScriptedTeacher:
    def repair(req: ChatRequest) -> str:
        prompts.append(_text(req))
        return fenced(_WHOLE_RIGHT)

    return ScriptedTeacher({"whole": lambda req: fenced(_WHOLE_WRONG), "repair_whole": repair})


async def test_a_whole_task_program_failing_a_row_is_repaired_from_that_row() -> None:
    prompts: list[str] = []
    fake = _whole_teacher(prompts)
    programs = await program_candidates(
        fake.teacher,
        InProcessCodeRunner(),
        RULE,
        ROWS,
        default_metric(RULE),
        [[], [], []],
        budget=SourceBudget(whole_samples=2, repair_rounds=1, enumerate=False),
    )
    assert len(programs) == 1
    p = programs[0]
    assert p.origin == "whole" and p.verified_rows == 3
    assert p.searched == 3  # two samples (the second repeats the first) and the repair
    assert fake.seen == ["whole", "whole", "repair_whole"]
    # only the failing row is shown, with its gold and what the program returned
    assert '"price": 7.0' in prompts[0] and "got" in prompts[0]
    assert '"price": 19.0' not in prompts[0]
    run = await run_harnessed(InProcessCodeRunner(), p.code, "run", {"zone": "near", "kg": 4})
    assert run.result == {"price": 10.0}


async def test_without_repair_rounds_the_failing_whole_program_is_dropped() -> None:
    fake = _whole_teacher([])
    programs = await program_candidates(
        fake.teacher,
        InProcessCodeRunner(),
        RULE,
        ROWS,
        default_metric(RULE),
        [[], [], []],
        budget=SourceBudget(whole_samples=2, repair_rounds=0, enumerate=False),
    )
    assert programs == []
    assert fake.seen == ["whole", "whole"]
