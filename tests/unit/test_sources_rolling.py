"""Loop rolling: numbers repeated in blocks through the text become one list parameter."""

from __future__ import annotations

import ast
from typing import Any

import pytest
from _sources_fakes import ScriptedTeacher, describer

from sgde.optimize.sources import Program, RowSolution, SourceBudget, program_candidates
from sgde.optimize.sources.code import run_harnessed
from sgde.optimize.sources.lifting import align_row, lift_row_solution, param_type
from sgde.optimize.sources.reader_code import ReaderRule, load_library
from sgde.optimize.sources.readers import reader_candidates
from sgde.optimize.sources.rolling import ScalarParam, roll_groups
from sgde.task import TaskSpec, default_metric
from sgde.testing import InProcessCodeRunner

PACKS = TaskSpec(
    description="How many stickers are left: every box holds packs of stickers, then some "
    "stickers are lost.",
    inputs={"note": "string"},
    outputs={"answer": "integer"},
)


def _packs(boxes: list[tuple[int, int]], lost: int) -> dict[str, Any]:
    listed = "; ".join(f"{n} packs of {size}" for n, size in boxes)
    return {
        "note": f"Shelf: {listed}. Then {lost} stickers get lost.",
        "answer": sum(n * size for n, size in boxes) - lost,
    }


ROWS = [
    _packs([(3, 12), (5, 8)], 4),  # the seed: two blocks
    _packs([(2, 10), (4, 6), (7, 3)], 9),  # three
    _packs([(1, 20), (2, 15), (3, 11), (6, 5)], 13),  # four
]

# The teacher's solution of the seed row spells out its two blocks, through variables.
SEED_CODE = (
    "def solution():\n"
    "    packs_first = 3\n    size_first = 12\n    packs_second = 5\n    size_second = 8\n"
    "    lost = 4\n"
    "    first_box = packs_first * size_first\n"
    "    second_box = packs_second * size_second\n"
    "    total = first_box + second_box\n"
    "    return {'answer': total - lost}\n"
)


def _sol(code: str, row: int = 0) -> list[list[RowSolution]]:
    out: list[list[RowSolution]] = [[], [], []]
    out[row] = [RowSolution(row, code, {}, {}, "direct@0.0")]
    return out


async def _answer(code: str, values: dict[str, Any]) -> Any:
    run = await run_harnessed(InProcessCodeRunner(), code, "run", values, trace=False)
    assert run.error is None, run.error
    return run.result


def test_two_blocks_become_one_list_that_aligns_three_and_four_blocks() -> None:
    seed = {"note": ROWS[0]["note"]}
    lift = lift_row_solution(SEED_CODE, PACKS, seed, 0)
    assert not isinstance(lift, str)
    kinds = {p.name: (p.kind, p.source.kind) for p in lift.params}
    assert sorted(kinds.values()) == [("list", "run"), ("number", "number")]
    assert lift.params[0].seed_value == [3, 12, 5, 8]
    listed = lift.params[0].name
    # Another row's run holds all its blocks, not the seed row's two.
    assert align_row(lift, PACKS, seed, {"note": ROWS[1]["note"]})[listed] == [2, 10, 4, 6, 7, 3]
    four = align_row(lift, PACKS, seed, {"note": ROWS[2]["note"]})
    assert four[listed] == [1, 20, 2, 15, 3, 11, 6, 5]
    assert four[lift.params[1].name] == 13


async def test_the_rolled_program_verifies_on_rows_with_two_three_and_four_blocks() -> None:
    fake = ScriptedTeacher({"describe": describer()})
    programs = await program_candidates(
        fake.teacher,
        InProcessCodeRunner(),
        PACKS,
        ROWS,
        default_metric(PACKS),
        _sol(SEED_CODE),
        budget=SourceBudget(whole_samples=0, enumerate=False, describe=False),
    )
    p = programs[0]
    assert p.origin == "lift"
    assert p.verified_rows == 3
    assert sorted(str(t) for t in p.params.values()) == ["integer", "list[integer]"]
    listed = next(n for n, t in p.params.items() if t.kind == "list")
    assert p.values[2] is not None and len(p.values[2][listed]) == 8
    # A fifth block the training rows never showed.
    values = dict(p.values[2])
    values[listed] = [*values[listed], 10, 2]
    assert await _answer(p.code, values) == {"answer": 20 + 30 + 33 + 30 + 20 - 13}


async def test_literals_written_inline_roll_too_and_the_seed_may_be_the_longest_row() -> None:
    code = "def solution():\n    return {'answer': 2 * 10 + 4 * 6 + 7 * 3 - 9}\n"
    seed = {"note": ROWS[1]["note"]}
    lift = lift_row_solution(code, PACKS, seed, 1)
    assert not isinstance(lift, str)
    listed = next(p.name for p in lift.params if p.kind == "list")
    two = align_row(lift, PACKS, seed, {"note": ROWS[0]["note"]})
    assert two[listed] == [3, 12, 5, 8]
    program = lift.program(["answer"])
    assert program is not None
    assert await _answer(program, two) == {"answer": ROWS[0]["answer"]}


def test_max_of_single_numbers_rolls_into_a_list() -> None:
    task = TaskSpec(
        description="The highest score.", inputs={"q": "string"}, outputs={"answer": "integer"}
    )
    code = "def solution():\n    return {'answer': max(71, 93, 88)}\n"
    lift = lift_row_solution(code, task, {"q": "Scores were 71, 93 and 88."}, 0)
    assert not isinstance(lift, str)
    assert [(p.kind, p.seed_value) for p in lift.params] == [("list", [71, 93, 88])]
    other = align_row(lift, task, {"q": "Scores were 71, 93 and 88."}, {"q": "Scores: 5, 9."})
    assert other == {lift.params[0].name: [5, 9]}


def _params(code: str) -> list[ScalarParam]:
    """``v<i> = <literal>``: the i-th number of the text."""
    out = []
    for stmt in ast.walk(ast.parse(code)):
        if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Constant):
            name = stmt.targets[0].id  # type: ignore[attr-defined]
            c = stmt.value
            key = (c.lineno, c.col_offset, c.end_lineno or 0, c.end_col_offset or 0)
            out.append(ScalarParam(name, "note", int(name[1:]), c.value, (key,)))
    return out


def test_terms_of_different_shapes_or_scattered_numbers_do_not_roll() -> None:
    code = "def solution():\n" + "".join(f"    v{i} = {v}\n" for i, v in enumerate([3, 12, 5, 8]))
    # a * b + c * d * 3: two terms of different shapes.
    shapes = code + "    return {'answer': v0 * v1 + v2 * v3 * 3}\n"
    assert roll_groups(shapes, _params(code)) is None
    # Same shape, but the blocks are (0, 2) and (1, 3): not consecutive in the text.
    scattered = code + "    return {'answer': v0 * v2 + v1 * v3}\n"
    assert roll_groups(scattered, _params(code)) is None
    # A grouped number read again elsewhere keeps the scalar program.
    reused = code + "    return {'answer': v0 * v1 + v2 * v3 + v0}\n"
    assert roll_groups(reused, _params(code)) is None
    rolled = code + "    return {'answer': v0 * v1 + v2 * v3}\n"
    assert roll_groups(rolled, _params(code)) is not None


def test_readers_drop_the_first_or_last_mentions_of_a_varying_list() -> None:
    lib = load_library()
    pick = lib["sgde_pick"]
    texts = [ROWS[0]["note"], ROWS[2]["note"]]
    but_last = ReaderRule("note", "number", "all_but_last", k=1)
    assert [pick(t, *but_last.as_tuple()[1:]) for t in texts] == [
        [3, 12, 5, 8],
        [1, 20, 2, 15, 3, 11, 6, 5],
    ]
    but_first = ReaderRule("note", "number", "all_but_first", k=2)
    assert pick("1 2", *but_first.as_tuple()[1:]) is None
    assert pick(texts[0], *but_first.as_tuple()[1:]) == [5, 8, 4]
    assert but_last.describe() == "every number of note but the last 1"


async def test_a_number_repeated_across_blocks_is_one_mention_per_block() -> None:
    code = (
        "def solution():\n    packs_a = 4\n    size_a = 10\n    packs_b = 4\n    size_b = 6\n"
        "    return {'answer': packs_a * size_a + packs_b * size_b - 9}\n"
    )
    row = _packs([(4, 10), (4, 6)], 9)
    lift = lift_row_solution(code, PACKS, {"note": row["note"]}, 0)
    assert not isinstance(lift, str)
    listed = next(p for p in lift.params if p.kind == "list")
    assert listed.seed_value == [4, 10, 4, 6]
    other = align_row(lift, PACKS, {"note": row["note"]}, {"note": ROWS[1]["note"]})
    program = lift.program(["answer"])
    assert program is not None
    assert await _answer(program, other) == {"answer": ROWS[1]["answer"]}


async def test_the_reader_search_reads_the_rolled_list_without_the_trailing_number() -> None:
    seed = {"note": ROWS[0]["note"]}
    lift = lift_row_solution(SEED_CODE, PACKS, seed, 0)
    assert not isinstance(lift, str)
    values = [align_row(lift, PACKS, seed, {"note": r["note"]}) for r in ROWS]
    types = {p.name: param_type(p, [v[p.name] for v in values], PACKS) for p in lift.params}
    code = lift.program(["answer"])
    assert code is not None
    program = Program(code=code, params=types, values=list(values), verified_rows=3)
    search = await reader_candidates(InProcessCodeRunner(), PACKS, ROWS, program, list(types))
    assert search.missing == [] and len(search.parsers) == 1
    unseen = _packs([(9, 2), (8, 3), (7, 4), (6, 5), (5, 6)], 1)
    run = await run_harnessed(
        InProcessCodeRunner(), search.parsers[0].code, "run", {"note": unseen["note"]}
    )
    assert await _answer(code, run.result) == {"answer": unseen["answer"]}


@pytest.mark.parametrize(
    "body",
    [
        # records: each tuple alone matches a run of two numbers of the text
        "    boxes = [(3, 12), (5, 8)]\n    return {'answer': sum(n * s for n, s in boxes) - 4}\n",
        # parallel lists: the packs and the sizes interleave in the text
        "    packs = [3, 5]\n    sizes = [12, 8]\n"
        "    return {'answer': sum(p * s for p, s in zip(packs, sizes)) - 4}\n",
    ],
)
async def test_records_and_parallel_lists_of_the_blocks_roll_into_one_list(body: str) -> None:
    code = "def solution():\n" + body
    seed = {"note": ROWS[0]["note"]}
    lift = lift_row_solution(code, PACKS, seed, 0)
    assert not isinstance(lift, str)
    assert [(p.kind, p.seed_value) for p in lift.params] == [("list", [3, 12, 5, 8]), ("number", 4)]
    four = align_row(lift, PACKS, seed, {"note": ROWS[2]["note"]})
    program = lift.program(["answer"])
    assert program is not None
    assert await _answer(program, four) == {"answer": ROWS[2]["answer"]}


def test_two_single_numbers_added_stay_scalars() -> None:
    task = TaskSpec(description="Apples.", inputs={"q": "string"}, outputs={"answer": "integer"})
    code = "def solution():\n    return {'answer': 5 + 3}\n"
    lift = lift_row_solution(code, task, {"q": "Tom has 5 apples and gets 3 more."}, 0)
    assert not isinstance(lift, str)
    assert [p.kind for p in lift.params] == ["number", "number"]


def test_a_reader_drops_numbers_on_both_sides_of_a_varying_list() -> None:
    pick = load_library()["sgde_pick"]
    inner = ReaderRule("note", "number", "all_but_ends", k=1, last=2)
    read = [pick(t, *inner.as_tuple()[1:]) for t in ("Day 3: 4, 5, 6, 7 then 8 and 9.", "1 2 3")]
    assert read == [[4, 5, 6, 7], None]
    assert inner.describe() == "every number of note but the first 1 and the last 2"


async def test_sums_that_interleave_in_the_text_become_slices_of_one_list() -> None:
    task = TaskSpec(
        description="Average speed over the legs.",
        inputs={"q": "string"},
        outputs={"answer": "number"},
    )
    code = (
        "def solution():\n    km_a = 120\n    hours_a = 2.5\n    km_b = 90\n    hours_b = 1.5\n"
        "    return {'answer': (km_a + km_b) / (hours_a + hours_b)}\n"
    )
    seed = {"q": "Legs: 120 km in 2.5 h, then 90 km in 1.5 h."}
    lift = lift_row_solution(code, task, seed, 0)
    assert not isinstance(lift, str)
    assert [(p.kind, p.seed_value) for p in lift.params] == [("list", [120, 2.5, 90, 1.5])]
    three = align_row(lift, task, seed, {"q": "Legs: 100 km in 2 h, 50 km in 3 h, 50 km in 5 h."})
    program = lift.program(["answer"])
    assert program is not None
    assert await _answer(program, three) == {"answer": 20.0}
