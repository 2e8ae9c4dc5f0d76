"""Typed solve-then-lift: strings, dates, lists of varying length, constants, misalignment."""

from __future__ import annotations

import json
from typing import Any

import pytest
from _sources_fakes import ScriptedTeacher, case_of, describer

from sgde.optimize.sources import Program, RowSolution, SourceBudget, program_candidates
from sgde.optimize.sources.code import run_harnessed
from sgde.optimize.sources.lifting import align_row, lift_row_solution
from sgde.optimize.sources.mentions import read_mentions
from sgde.task import TaskSpec, default_metric
from sgde.testing import InProcessCodeRunner

LETTERS = TaskSpec(
    description="Count how many times a letter occurs in a word.",
    inputs={"question": "string"},
    outputs={"answer": "integer"},
)
LETTER_ROWS = [
    {"question": 'How many times does the letter "r" appear in "strawberry"?', "answer": 3},
    {"question": 'How many times does the letter "s" appear in "mississippi"?', "answer": 4},
    {"question": 'How many times does the letter "e" appear in "cheese"?', "answer": 3},
]
LETTER_CODE = (
    'def solution():\n    word = "strawberry"\n    letter = "r"\n'
    '    return {"answer": word.count(letter)}\n'
)

DATES = TaskSpec(
    description="Add a number of days to a start date.",
    inputs={"question": "string"},
    outputs={"answer": "date"},
)
DATE_ROWS = [
    {"question": "Start on March 5, 2024 and add 10 days.", "answer": "2024-03-15"},
    {"question": "Start on 2023-12-30 and add 3 days.", "answer": "2024-01-02"},
    {"question": "Start on July 1, 2024 and add 45 days.", "answer": "2024-08-15"},
]
DATE_CODE = (
    "import datetime\n\ndef solution():\n    start = datetime.date(2024, 3, 5)\n"
    "    days = 10\n    return {'answer': start + datetime.timedelta(days=days)}\n"
)

MEDIAN = TaskSpec(
    description="Give the median of a list of numbers.",
    inputs={"question": "string"},
    outputs={"answer": "number"},
)
MEDIAN_ROWS = [
    {"question": "Find the median of 3, 9, 4, 7 and 1.", "answer": 4},
    {"question": "Find the median of 10, 2, 8, 6, 4, 12 and 14.", "answer": 8},
    {"question": "Find the median of 5, 1, 9.", "answer": 5},
]
MEDIAN_CODE = (
    "import statistics\n\ndef solution():\n    numbers = [3, 9, 4, 7, 1]\n"
    "    return {'answer': statistics.median(numbers)}\n"
)


def _sol(code: str, row: int = 0) -> list[list[RowSolution]]:
    out: list[list[RowSolution]] = [[], [], []]
    out[row] = [RowSolution(row, code, {}, {}, "direct@0.0")]
    return out


def _no_teacher() -> ScriptedTeacher:
    return ScriptedTeacher({"describe": describer()})


async def _lifted(
    fake: ScriptedTeacher,
    task: TaskSpec,
    rows: list[dict[str, Any]],
    solutions: list[list[RowSolution]],
    **options: Any,
) -> list[Program]:
    """The lift source alone (no whole-task code, no enumerative search)."""
    events = options.pop("events", None)
    return await program_candidates(
        fake.teacher,
        InProcessCodeRunner(),
        task,
        rows,
        default_metric(task),
        solutions,
        budget=SourceBudget(whole_samples=0, enumerate=False, **options),
        events=events,
    )


def test_mentions_keep_date_digits_out_of_numbers() -> None:
    tm = read_mentions("Start on March 5, 2024 and add 10 days; or 2023-12-30 plus 3.")
    assert [m.value for m in tm.dates] == ["2024-03-05", "2023-12-30"]
    assert [m.value for m in tm.numbers] == [10, 3]


def test_string_params_lift_and_align_by_quotes() -> None:
    lift = lift_row_solution(LETTER_CODE, LETTERS, LETTER_ROWS[0], 0)
    assert not isinstance(lift, str)
    assert [(p.name, p.kind, p.seed_value) for p in lift.params] == [
        ("word", "string", "strawberry"),
        ("letter", "string", "r"),
    ]
    other = align_row(lift, LETTERS, LETTER_ROWS[0], LETTER_ROWS[1])
    assert other == {"word": "mississippi", "letter": "s"}


async def test_typed_lift_of_strings_verifies_and_folds_nothing_that_varies() -> None:
    fake = _no_teacher()
    programs = await _lifted(fake, LETTERS, LETTER_ROWS, _sol(LETTER_CODE))
    assert programs and programs[0].origin == "lift"
    p = programs[0]
    assert p.verified_rows == 3
    assert {k: str(v) for k, v in p.params.items()} == {"word": "string", "letter": "string"}
    assert p.values[2] == {"word": "cheese", "letter": "e"}
    assert p.descriptions == {"word": "the word of the task", "letter": "the letter of the task"}
    assert fake.seen == ["describe"]


async def test_a_literal_equal_in_every_row_that_a_reader_reads_stays_a_parameter() -> None:
    # three rows all asking for "r" cannot show that the letter is a value of the row: the
    # first quoted string reads it, so it is not frozen into the code
    rows = [
        {"question": f'How many times does the letter "r" appear in "{w}"?', "answer": w.count("r")}
        for w in ("strawberry", "carrot", "mirror")
    ]
    fake = _no_teacher()
    events: list[Any] = []
    programs = await _lifted(fake, LETTERS, rows, _sol(LETTER_CODE), events=events.append)
    p = programs[0]
    assert list(p.params) == ["word", "letter"]
    assert [v["letter"] for v in p.values if v] == ["r", "r", "r"]
    assert "letter = 'r'" not in p.code
    kept = [e.message for e in events if "kept a parameter" in e.message]
    assert kept and "letter" in kept[0]


FEES = TaskSpec(
    description="The total cost of an order of boxes with a delivery fee.",
    inputs={"question": "string"},
    outputs={"answer": "integer"},
)
FEE_CODE = (
    "def solution():\n    boxes = 12\n    price = 3\n    fee = 5\n"
    "    return {'answer': boxes * price + fee}\n"
)


def _fee_rows(orders: list[tuple[int, int]], fee: int = 5) -> list[dict[str, Any]]:
    return [
        {
            "question": f"Ann orders {b} boxes at {c} dollars each and pays {fee} dollars "
            "for delivery. What does she pay?",
            "answer": b * c + fee,
        }
        for b, c in orders
    ]


async def test_a_number_equal_in_every_row_is_read_not_frozen() -> None:
    rows = _fee_rows([(12, 3), (40, 7), (250, 11)])
    programs = await _lifted(_no_teacher(), FEES, rows, _sol(FEE_CODE))
    p = programs[0]
    assert list(p.params) == ["boxes", "price", "fee"]
    assert [v["fee"] for v in p.values if v] == [5, 5, 5]
    run = await run_harnessed(
        InProcessCodeRunner(), p.code, "run", {"boxes": 2, "price": 3, "fee": 100}, trace=False
    )
    assert run.result == {"answer": 106}


async def test_a_constant_no_reader_identifies_is_still_folded() -> None:
    # the second row holds 5 twice ("5 boxes ... 5 dollars for delivery"): the rows do not
    # say which mention the fee is, so no reader is trusted and the fee stays a constant
    rows = _fee_rows([(12, 3), (5, 7), (250, 11)])
    programs = await _lifted(_no_teacher(), FEES, rows, _sol(FEE_CODE))
    p = programs[0]
    assert list(p.params) == ["boxes", "price"]
    assert "fee = 5" in p.code


async def test_dates_lift_as_iso_params_across_formats() -> None:
    fake = _no_teacher()
    programs = await _lifted(fake, DATES, DATE_ROWS, _sol(DATE_CODE))
    p = programs[0]
    assert {k: str(v) for k, v in p.params.items()} == {"start": "date", "days": "integer"}
    assert p.values[0] == {"start": "2024-03-05", "days": 10}
    assert p.values[1] == {"start": "2023-12-30", "days": 3}
    assert p.verified_rows == 3


async def test_a_sequence_of_varying_length_becomes_a_list_param() -> None:
    fake = _no_teacher()
    programs = await _lifted(fake, MEDIAN, MEDIAN_ROWS, _sol(MEDIAN_CODE))
    p = programs[0]
    assert {k: str(v) for k, v in p.params.items()} == {"numbers": "list[integer]"}
    assert p.values[1] == {"numbers": [10, 2, 8, 6, 4, 12, 14]}
    assert p.values[2] == {"numbers": [5, 1, 9]}
    assert p.verified_rows == 3


async def test_misaligned_rows_are_read_by_the_teachers_typed_extraction() -> None:
    rows = [
        {"question": "Start on March 5, 2024 and add 10 days.", "answer": "2024-03-15"},
        {
            "question": "What date is 3 days after 2023-12-30? (count 1 day per night)",
            "answer": "2024-01-02",
        },
        {"question": "Add 45 days to July 1, 2024.", "answer": "2024-08-15"},
    ]
    extracted = {
        "What date is 3 days after 2023-12-30? (count 1 day per night)": {
            "start": "2023-12-30",
            "days": 3,
        },
        "Add 45 days to July 1, 2024.": {"start": "2024-07-01", "days": 45},
    }
    seen_schemas = []

    def extract(req):  # type: ignore[no-untyped-def]
        seen_schemas.append(req.json_schema)
        question = case_of(req, "Now this case:")["question"]
        return extracted[question]

    fake = ScriptedTeacher({"extract": extract, "describe": describer()})
    programs = await _lifted(fake, DATES, rows, _sol(DATE_CODE))
    p = programs[0]
    assert p.verified_rows == 3
    assert p.values[1] == {"start": "2023-12-30", "days": 3}
    # one typed extraction per row that did not line up (row 2 has an extra number)
    assert fake.seen.count("extract") >= 1
    schema = seen_schemas[0]
    assert schema["properties"]["start"]["type"] == "string"  # a date (the pattern is checked
    # on the answer; llama.cpp grammars drop it)
    assert schema["properties"]["days"]["type"] == "integer"


async def test_teacher_garbage_in_alignment_gives_no_program_not_an_error() -> None:
    rows = [
        DATE_ROWS[0],
        {"question": "Ten days after 2023-12-30, what day is it? 1 2", "answer": "2024-01-09"},
        DATE_ROWS[2],
    ]
    fake = ScriptedTeacher({"extract": lambda req: "nonsense", "describe": lambda req: {}})
    events = []
    programs = await _lifted(fake, DATES, rows, _sol(DATE_CODE), events=events.append)
    # verified on the two rows that line up; the third is unknown (None), not wrong
    assert programs and programs[0].verified_rows == 2
    assert programs[0].values[1] is None
    assert any("source" in e.data for e in events)


def test_program_round_trips_through_json() -> None:
    from sgde.optimize.sources import Program
    from sgde.task import FieldType

    p = Program(
        "def run(x):\n    return {'answer': x}\n",
        {"x": FieldType.parse("list[number]")},
        [{"x": [1.5]}, None],
        {},
        {"x": "the numbers"},
        "lift",
        2,
        1,
        {"x": ["add ___ and N"]},
    )
    assert Program.from_dict(json.loads(json.dumps(p.to_dict()))) == p


@pytest.mark.parametrize("bad", ["def solution(:\n", "x = 1\n", "def solution():\n    return 1\n"])
def test_unliftable_code_says_why(bad: str) -> None:
    assert isinstance(lift_row_solution(bad, LETTERS, LETTER_ROWS[0], 0), str)


async def test_numeric_word_problems_lift_as_before() -> None:
    """The GSM path: the duck-eggs solution lifts into four integer params, aligned by position."""
    from _optimize_fakes import GOOD_SOLUTION, ROWS

    task = TaskSpec(
        description="Answer the math word problem with one number.",
        inputs={"question": "string"},
        outputs={"answer": "number"},
    )
    code = GOOD_SOLUTION.format(a=16, b=3, c=4, d=2)
    fake = _no_teacher()
    programs = await _lifted(fake, task, ROWS, _sol(code))
    p = programs[0]
    assert list(p.params) == ["eggs_per_day", "eaten", "baked", "price"]
    assert all(str(t) == "integer" for t in p.params.values())
    assert p.values[1] == {"eggs_per_day": 1600, "eaten": 31, "baked": 47, "price": 7}
    assert p.verified_rows == 3 and p.raw_inputs == {}


def test_percent_literals_lift_as_the_written_percentage() -> None:
    task = TaskSpec(description="d", inputs={"question": "string"}, outputs={"answer": "number"})
    code = "def solution():\n    price = 80\n    return price * (1 - 0.25)\n"
    lift = lift_row_solution(code, task, {"question": "A coat costs 80 dollars, 25% off."}, 0)
    assert not isinstance(lift, str)
    assert [(p.name, p.seed_value, p.source.percent) for p in lift.params] == [
        ("price", 80, False),
        ("number_2", 25, True),
    ]
    program = lift.program(["answer"])
    assert program is not None and "number_2 / 100" in program


async def test_generic_params_get_the_teachers_names_and_bad_descriptions_fall_back() -> None:
    code = 'def solution():\n    word = "strawberry"\n    return {"answer": word.count("r")}\n'

    def describe(req):  # type: ignore[no-untyped-def]
        return {
            "word": {"name": "letter", "description": "strawberry"},  # a value, and name taken
            "string_2": {"name": "letter", "description": "the letter whose count is asked"},
        }

    fake = ScriptedTeacher({"describe": describe})
    programs = await _lifted(fake, LETTERS, LETTER_ROWS, _sol(code))
    p = programs[0]
    assert list(p.params) == ["word", "letter"]
    assert p.values[1] == {"word": "mississippi", "letter": "s"}
    assert p.descriptions["letter"] == "the letter whose count is asked"
    assert p.descriptions["word"].startswith("the word: text")  # the fallback
    run = await run_harnessed(
        InProcessCodeRunner(), p.code, "run", {"word": "kiwi", "letter": "i"}, trace=False
    )
    assert run.result == {"answer": 2}


async def test_the_describe_hint_is_masked_and_an_echo_of_it_falls_back() -> None:
    prompts: list[str] = []

    def describe(req):  # type: ignore[no-untyped-def]
        prompts.append(req.messages[-1].content)
        return {
            "word": {"name": "word", "description": "the word in 'appear in \"___\"?'"},
            "letter": {"name": "letter", "description": "the letter whose count is asked"},
        }

    fake = ScriptedTeacher({"describe": describe})
    p = (await _lifted(fake, LETTERS, LETTER_ROWS, _sol(LETTER_CODE)))[0]
    assert (
        '- word (text): "strawberry", "mississippi", "cheese" — the word: text (in "the letter'
        in prompts[0]
    )
    assert ' appear in "___"?")\n- letter (text): "r", "s", "e"' in prompts[0]
    assert p.descriptions == {"word": "the word: text", "letter": "the letter whose count is asked"}
    assert p.contexts["word"][0] == 'the letter "…" appear in "___"?'


async def test_searched_counts_every_lifted_candidate_examined() -> None:
    from _optimize_fakes import BAD_SOLUTION, GOOD_SOLUTION, ROWS, numbers

    task = TaskSpec(
        description="Answer the math word problem with one number.",
        inputs={"question": "string"},
        outputs={"answer": "number"},
    )
    solutions: list[list[RowSolution]] = [
        [RowSolution(0, BAD_SOLUTION.format(a=16, b=3, c=4, d=2), {}, {}, "direct@0.0")],
        [RowSolution(1, GOOD_SOLUTION.format(a=1600, b=31, c=47, d=7), {}, {}, "direct@0.0")],
        [],
    ]

    def extract(req):  # type: ignore[no-untyped-def]
        a, b, c, d = numbers(case_of(req, "Now this case:")["question"])[:4]
        return {"eggs_per_day": a, "eaten": b, "baked": c, "price": d}

    fake = ScriptedTeacher({"describe": describer(), "extract": extract})
    programs = await _lifted(fake, task, ROWS, solutions, repair_rounds=0)
    assert [(p.origin, p.verified_rows, p.searched) for p in programs] == [("lift", 3, 2)]
    # the failing rows of the first candidate were re-read by the teacher before giving up
    assert fake.seen.count("extract") == 2


def test_structural_literals_stay_in_the_code() -> None:
    code = (
        "def solution():\n    numbers = [3, 9, 4, 7, 1]\n    s = sorted(numbers)\n"
        "    n = len(s)\n    if n % 2 == 1:\n        return s[n // 2]\n"
        "    return (s[n // 2 - 1] + s[n // 2]) / 2\n"
    )
    lift = lift_row_solution(code, MEDIAN, MEDIAN_ROWS[0], 0)
    assert not isinstance(lift, str)
    assert [(p.name, p.kind) for p in lift.params] == [("numbers", "list")]
    other = align_row(lift, MEDIAN, MEDIAN_ROWS[0], MEDIAN_ROWS[1])
    assert other == {"numbers": [10, 2, 8, 6, 4, 12, 14]}


async def test_param_types_come_from_the_values_that_verified() -> None:
    task = TaskSpec(
        description="Order total.", inputs={"question": "string"}, outputs={"total": "number"}
    )
    rows = [
        {"question": "Buy 12 notebooks at $3.25 each, shipping $4.50.", "total": 43.5},
        {"question": "Shipping $7.20. Buy 5 lamps at $18.40 each.", "total": 99.2},
        {"question": "Buy 8 mugs at $6.75 each, shipping $2.95.", "total": 56.95},
    ]
    code = (
        "def solution():\n    quantity = 12\n    price = 3.25\n    shipping = 4.50\n"
        "    return {'total': quantity * price + shipping}\n"
    )

    def extract(req):  # type: ignore[no-untyped-def]
        return {"quantity": 5, "price": 18.4, "shipping": 7.2}

    fake = ScriptedTeacher({"extract": extract, "describe": describer()})
    programs = await _lifted(fake, task, rows, _sol(code))
    p = programs[0]
    assert p.verified_rows == 3 and p.values[1] == {"quantity": 5, "price": 18.4, "shipping": 7.2}
    assert {k: str(t) for k, t in p.params.items()} == {
        "quantity": "integer",
        "price": "number",
        "shipping": "number",
    }
