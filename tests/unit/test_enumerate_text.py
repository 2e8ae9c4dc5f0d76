"""Enumerative search over string transforms: the source of last resort for string outputs."""

from __future__ import annotations

from collections.abc import Callable

from _sources_fakes import ScriptedTeacher, describer

from sgde.optimize.sources import SourceBudget, program_candidates
from sgde.optimize.sources.code import run_harnessed
from sgde.optimize.sources.enumerate_text import (
    enumerative_text_program,
    search_text_transforms,
    text_functions,
)
from sgde.task import FieldType, TaskSpec, default_metric
from sgde.testing import InProcessCodeRunner

CITY = TaskSpec(
    description="Return the first three letters of the city the customer writes from, "
    "in capital letters.",
    inputs={"message": "string"},
    outputs={"city_code": "string"},
)
CITY_ROWS = [
    {
        "message": "Hi, this is Gus writing from Cork. My parcel has not arrived yet.",
        "city_code": "COR",
    },
    {
        "message": "Order question - sent by Gus (Porto office): can I change the address?",
        "city_code": "POR",
    },
    {
        "message": "Ben here. I live in Bergen and the invoice shows the wrong amount.",
        "city_code": "BER",
    },
    {"message": "Greetings from Lille! Dev again, asking about a refund.", "city_code": "LIL"},
]

CODE = TaskSpec(
    description="Return the product code in capitals.",
    inputs={"code": "string", "note": "string"},
    outputs={"upper_code": "string"},
)
CODE_ROWS = [
    {"code": "ab-12", "note": "x", "upper_code": "AB-12"},
    {"code": "zq-7", "note": "y", "upper_code": "ZQ-7"},
    {"code": "mm-30", "note": "z", "upper_code": "MM-30"},
]


def _fits(golds: list[str]) -> Callable[[int, str], bool]:
    t = FieldType(kind="string")
    return lambda i, v: t.correct(v, golds[i])


def _events() -> tuple[list[tuple[str, str, int]], Callable[..., None]]:
    seen: list[tuple[str, str, int]] = []

    def log(source: str, message: str, **data: object) -> None:
        seen.append((source, message, int(str(data.get("searched", 0)))))

    return seen, log


async def test_city_code_is_upper_first_three_of_an_extracted_word() -> None:
    fake = ScriptedTeacher(
        {
            "whole": lambda req: "no idea",
            "describe": describer({"string_1": "city"}, text="the city the customer writes from"),
        }
    )
    programs = await program_candidates(
        fake.teacher,
        InProcessCodeRunner(),
        CITY,
        CITY_ROWS,
        default_metric(CITY),
        [[] for _ in CITY_ROWS],
        budget=SourceBudget(whole_samples=1),
    )
    assert [p.origin for p in programs] == ["enumerative"]
    p = programs[0]
    assert list(p.params) == ["city"] and p.raw_inputs == {}
    assert [v["city"] if v else None for v in p.values] == ["Cork", "Porto", "Bergen", "Lille"]
    assert p.verified_rows == 4
    assert p.searched == len(list(text_functions(2))) * 2  # the raw message, then mentions
    assert p.descriptions["city"] == "the city the customer writes from"
    # the fallback the teacher is shown says what the code makes of the value
    found = await enumerative_text_program(
        fake.teacher,
        InProcessCodeRunner(),
        CITY,
        CITY_ROWS,
        default_metric(CITY),
        budget=SourceBudget(),
        log=lambda *a, **k: None,
    )
    assert found is not None
    fallback = found.descriptions["string_1"]
    assert fallback == (
        "the word or phrase of the message that city_code is made from "
        "(city_code = first3(upper(it)))"
    )
    assert not any(c in fallback for c in ("Cork", "Porto", "Bergen", "Lille"))
    # the code transforms a city never seen in training
    run = await run_harnessed(InProcessCodeRunner(), p.code, "run", {"city": "Lyon"}, trace=False)
    assert run.ok and run.result == {"city_code": "LYO"}
    assert fake.seen.count("describe") == 1


def test_search_prefers_an_exact_transform_over_a_case_folded_one() -> None:
    golds = ["COR", "POR"]
    result = search_text_transforms(
        [["Gus", "Cork"], ["Porto", "office"]], golds, fits=_fits(golds)
    )
    # first3 alone fits under the case-folding metric; upper(first3) gives the gold exactly
    assert result.function is not None and set(result.function.steps) == {"upper", "first3"}
    assert result.exact and result.choices == (1, 0)
    assert result.fits >= 2
    assert result.searched == len(list(text_functions(2))) == 1 + 14 + 14 * 14


def test_search_refuses_an_ambiguous_row_and_says_which() -> None:
    golds = ["BER", "LIL"]
    result = search_text_transforms(
        [["Berlin", "Bergen", "from"], ["Lille", "from"]], golds, fits=_fits(golds)
    )
    assert result.function is None
    assert "row 1 is ambiguous" in result.reason and "'Berlin'" in result.reason
    # the kind of mention the other rows use settles it
    resolved = search_text_transforms(
        [["Berlin", "Bergen"], ["Lille", "from"]],
        golds,
        fits=_fits(golds),
        kinds=[["quoted", "word"], ["word", "word"]],
    )
    assert resolved.function is not None and resolved.choices == (1, 0)


def test_search_refuses_a_constant_gold_and_a_single_row() -> None:
    assert (
        "same gold"
        in search_text_transforms([["a"], ["a"]], ["A", "A"], fits=_fits(["A", "A"])).reason
    )
    assert search_text_transforms([["a"]], ["A"], fits=_fits(["A"])).function is None


async def test_nothing_fits_returns_none_with_a_reason() -> None:
    rows = [
        {"message": "Hi from Cork.", "city_code": "XQZ"},
        {"message": "Hi from Porto.", "city_code": "WWK"},
    ]
    seen, log = _events()
    found = await enumerative_text_program(
        ScriptedTeacher({}).teacher,
        InProcessCodeRunner(),
        CITY,
        rows,
        default_metric(CITY),
        budget=SourceBudget(),
        log=log,
    )
    assert found is None
    source, message, searched = seen[-1]
    assert source == "enumerative-text" and "nothing fits 'city_code'" in message
    assert "no composition of <= 2 transforms fits every row" in message
    assert searched == 2 * len(list(text_functions(2)))


async def test_a_whole_string_input_becomes_a_raw_param_without_a_student() -> None:
    fake = ScriptedTeacher({})  # any teacher call fails the test
    seen, log = _events()
    p = await enumerative_text_program(
        fake.teacher,
        InProcessCodeRunner(),
        CODE,
        CODE_ROWS,
        default_metric(CODE),
        budget=SourceBudget(),
        log=log,
    )
    assert p is not None and p.origin == "enumerative"
    assert p.raw_inputs == {"code": "code"} and p.extracted == []
    assert p.values[1] == {"code": "zq-7"}
    assert "upper(code) fits 3/3 rows" in seen[0][1]
    assert fake.seen == []


async def test_numeric_outputs_are_not_applicable() -> None:
    task = TaskSpec(description="d", inputs={"q": "string"}, outputs={"n": "integer"})
    seen, log = _events()
    found = await enumerative_text_program(
        ScriptedTeacher({}).teacher,
        InProcessCodeRunner(),
        task,
        [{"q": "a", "n": 1}, {"q": "b", "n": 2}],
        default_metric(task),
        budget=SourceBudget(),
        log=log,
    )
    assert found is None and "not a string" in seen[0][1]
