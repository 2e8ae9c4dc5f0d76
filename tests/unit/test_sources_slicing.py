"""Slicing the text parsing out of a teacher's ``run``: what it parsed becomes fields."""

from __future__ import annotations

import ast
from typing import Any

from _sources_fakes import case_of, fenced
from test_sources_design import ROWS, _candidates, teacher

from sgde.optimize.sources import SourceBudget, program_candidates
from sgde.optimize.sources.code import run_harnessed
from sgde.optimize.sources.slicing import Sliced, narrowed, slice_parsing
from sgde.runtime.backend import ChatRequest
from sgde.task import TaskSpec, default_metric
from sgde.testing import InProcessCodeRunner

# The rule is right, the parsing knows one phrasing: a weak teacher's typical design.
PARSES = '''def run(text: str):
    """Cost of the paint."""
    words = text.lower().split()
    finish = words[words.index("paint") - 1].strip()
    amount, unit = text.split()[1], text.split()[2]
    m = re.search(r"(\\d+)", text)
    amount = float(amount.replace(",", "."))
    per_litre = {"matte": 3.0, "gloss": 5.0}
    litres = amount / 1000 if unit.lower() in ("ml", "millilitres") else amount
    return {"answer": round(per_litre[finish.lower()] * litres, 2)}
'''


def _run(code: str) -> ast.FunctionDef:
    fn = ast.parse(code).body[0]
    assert isinstance(fn, ast.FunctionDef)
    return fn


def test_parsing_statements_are_cut_and_what_they_set_becomes_fields() -> None:
    run = _run(PARSES)
    sliced = slice_parsing(run, ["text"])
    assert sliced == Sliced(fields=["finish", "amount", "unit"], cut=5)
    assert [a.arg for a in run.args.args] == ["finish", "amount", "unit"]
    code = ast.unparse(run)
    assert "def run(finish: str, amount: float, unit):" in code
    # the last parsing of each field ended in a normalisation or conversion: re-applied
    assert "finish = finish.strip()" in code and "amount = float(amount)" in code
    assert "text" not in code and "re.search" not in code and "words" not in code
    # the rule is kept as written, the arithmetic on a parsed value included
    assert "litres = amount / 1000" in code and "per_litre" in code


async def test_a_sliced_run_computes_from_copied_values() -> None:
    run = _run(PARSES)
    assert isinstance(slice_parsing(run, ["text"]), Sliced)
    result = await run_harnessed(
        InProcessCodeRunner(), ast.unparse(run), "run",
        {"finish": "Gloss ", "amount": "500", "unit": "ml"},
    )  # fmt: skip
    assert result.result == {"answer": 2.5}


def test_a_text_read_outside_an_assignment_cannot_be_sliced() -> None:
    run = _run('def run(text):\n    if "ml" in text:\n        return {"answer": 1}\n'
               '    return {"answer": 2}\n')  # fmt: skip
    why = slice_parsing(run, ["text"])
    assert isinstance(why, str) and "no assignment (if)" in why
    assert [a.arg for a in run.args.args] == ["text"]  # untouched
    later = _run(
        'def run(text):\n    n = float(text.split()[0])\n    return {"answer": n + len(text)}\n'
    )
    assert "no assignment (return)" in str(slice_parsing(later, ["text"]))


def test_nothing_parsed_that_the_rule_reads_is_no_slice() -> None:
    run = _run('def run(text):\n    n = text.count("a")\n    return {"answer": 3}\n')
    assert "nothing it parses" in str(slice_parsing(run, ["text"]))
    grep = _run("def run(text):\n    m = re.search('a|b', text)\n    return {'x': m.group(0)}\n")
    assert "regex match" in str(slice_parsing(grep, ["text"]))


def test_a_lookup_or_arithmetic_on_a_parsed_value_stays_in_the_rule() -> None:
    run = _run(
        "def run(text):\n"
        "    city = text.split()[-1]\n"
        "    zone = ZONES[city]\n"
        "    km = float(text.split()[0]) * 1.609\n"
        "    return {'answer': RATES[zone] * km}\n"
    )
    sliced = slice_parsing(run, ["text"])
    assert isinstance(sliced, Sliced) and sliced.fields == ["city", "km"]
    assert "zone = ZONES[city]" in ast.unparse(run)


async def test_a_design_that_parses_the_text_is_sliced_and_verified_with_the_reads() -> None:
    fake = teacher([PARSES])
    (program,) = await _candidates(fake, design_samples=1, design_repairs=0)
    assert program.origin == "design"
    assert list(program.params) == ["finish", "amount", "unit", "text"]  # text: the finish's words
    assert program.verified_rows == len(ROWS)
    assert program.values[1]["amount"] == 500.0 and program.values[1]["unit"] == "ml"


async def test_a_failed_whole_task_program_is_tried_as_a_design_before_any_is_sampled() -> None:
    fake = teacher([])  # every design sample would be "no code"
    fake.handlers["whole"] = lambda req: fenced(PARSES)  # parses one phrasing: fails
    (program,) = await _candidates(fake, design_samples=1, design_repairs=0)
    assert program.origin == "design" and program.verified_rows == len(ROWS)
    assert fake.seen.count("whole") == 1 and "design" not in fake.seen
    assert list(program.params)[:3] == ["finish", "amount", "unit"]


# A small teacher's design for counting a letter in a word: FIELDS names the word, but run
# counts in the whole text (right only where the letter appears nowhere else in it).
WHOLE_TEXT = """FIELDS = {"letter": "the letter to count", "word": "the word to search"}

def run(text: str, letter: str):
    return {"answer": text.lower().count(letter.lower())}
"""
COUNT = TaskSpec(
    description="Count how often the given letter occurs in the given word (any case).",
    inputs={"text": "string"},
    outputs={"answer": "integer"},
)
COUNT_ROWS = [
    {"text": 'How many times does the letter "e" appear in "referee"?', "answer": 4},
    {"text": "Count how often R occurs in MIRROR.", "answer": 3},
    {"text": "Word: Banana. Letter: a. Give the number of occurrences.", "answer": 3},
]


def test_narrowed_reads_a_named_field_in_place_of_the_text() -> None:
    (variant,) = narrowed(WHOLE_TEXT, ["text"], ["letter", "word"])
    field, code = variant
    assert field == "word"
    run = _run(code.split("\n\n", 1)[1])
    assert [a.arg for a in run.args.args] == ["text", "letter", "word"]
    assert "word.lower().count(letter.lower())" in code and "text.lower()" not in code
    # a parameter run takes but never reads is a candidate too
    taken = "def run(text, letter, word):\n    return {'answer': text.count(letter)}\n"
    assert [f for f, _ in narrowed(taken, ["text"])] == ["word"]


def test_narrowed_has_nothing_to_offer_without_a_spare_field() -> None:
    assert narrowed(WHOLE_TEXT, ["text"]) == []  # FIELDS not given: run reads all it takes
    assert narrowed("def run(text, word='x'):\n    return {'a': text}\n", ["text"]) == []
    no_text = "def run(letter, word):\n    return {'a': word.count(letter)}\n"
    assert narrowed(no_text, ["text"]) == []
    assert narrowed("def run(:", ["text"]) == []


async def test_a_design_counting_in_the_whole_text_is_verified_reading_the_field_it_names() -> None:
    def read(req: ChatRequest) -> dict[str, Any]:
        text = str(case_of(req, "Now this case:").get("text", ""))
        found = {"letter": "e", "word": "referee"}
        if "MIRROR" in text:
            found = {"letter": "R", "word": "MIRROR"}
        elif "Banana" in text:
            found = {"letter": "a", "word": "Banana"}
        props = dict((req.json_schema or {}).get("properties", {}))
        return {name: found.get(name, "") for name in props}

    fake = teacher([WHOLE_TEXT])
    fake.handlers["extract"] = read
    (program,) = await program_candidates(
        fake.teacher, InProcessCodeRunner(), COUNT, COUNT_ROWS, default_metric(COUNT),
        [[], [], []],
        budget=SourceBudget(whole_samples=1, enumerate=False, describe=False,
                            design_samples=1, design_repairs=0),
    )  # fmt: skip
    assert program.origin == "design" and program.verified_rows == 3
    assert list(program.params) == ["letter", "word"]
    assert program.searched == 2  # the design as written, then its narrowed variant
    run = await run_harnessed(
        InProcessCodeRunner(), program.code, "run", {"letter": "S", "word": "Mississippi"}
    )
    assert run.result == {"answer": 4}


def test_narrowed_names_a_fresh_field_when_the_design_names_none() -> None:
    # the teacher treats the whole text as the word: FIELDS describes "text" as the word
    whole = (
        'FIELDS = {"text": "count the vowels in the given word"}\n\n'
        "def run(text: str):\n"
        '    return {"answer": sum(1 for ch in text.lower() if ch in "aeiou")}\n'
    )
    fresh = ("word", "the word the task applies to, copied from the text")
    assert narrowed(whole, ["text"], ["text"]) == []  # no field named, none asked for
    ((field, code),) = narrowed(whole, ["text"], ["text"], fresh)
    assert field == "word" and "for ch in word.lower()" in code
    assert "'word': 'the word the task applies to, copied from the text'" in code
    # a FIELDS that is not a dict (or none at all) becomes one describing the new field
    listed = "FIELDS = ['text']\ndef run(text):\n    return {'answer': len(text)}\n"
    ((_, code),) = narrowed(listed, ["text"], [], fresh)
    assert code.startswith("FIELDS = {'word':") and "len(word)" in code
    # a name the code uses already is not taken
    clash = "def run(text):\n    word = text.split()[0]\n    return {'answer': len(word + text)}\n"
    ((field, _),) = narrowed(clash, ["text"], [], fresh)
    assert field == "word_value"
    # every candidate name taken (teacher code is hostile input): no variant, no crash
    full = "def run(text, word, word_value, subject_value):\n    return {'a': text}\n"
    assert narrowed(full, ["text"], [], fresh)[0][0] == "word"  # a spare field is there
    taken = "def run(text):\n    word = word_value = subject_value = text\n    return {'a': word}\n"
    assert narrowed(taken, ["text"], [], fresh) == []
    # a field the design names is preferred to a fresh one
    named = WHOLE_TEXT
    assert [f for f, _ in narrowed(named, ["text"], ["letter", "word"], fresh)] == ["word"]


async def test_a_design_treating_the_whole_text_as_the_word_gets_a_field_for_it() -> None:
    vowels = TaskSpec(
        description="Count the vowels (a, e, i, o, u) in the given word as `answer`.",
        inputs={"text": "string"},
        outputs={"answer": "integer"},
    )
    rows = [
        {"text": 'How many vowels are in the word "umbrella"?', "answer": 3},
        {"text": "Count the vowels in EDUCATION.", "answer": 5},
        {"text": "Word: Rhythm. Number of vowels?", "answer": 0},
    ]
    words = {"umbrella": "umbrella", "EDUCATION": "EDUCATION", "Rhythm": "Rhythm"}
    asked: list[dict[str, Any]] = []

    def read(req: ChatRequest) -> dict[str, Any]:
        text = str(case_of(req, "Now this case:").get("text", ""))
        props = dict((req.json_schema or {}).get("properties", {}))
        asked.append(props)
        word = next((w for w in words if w in text), "")
        return {name: word for name in props}

    design = (
        'FIELDS = {"text": "count the vowels in the given word"}\n\n'
        "def run(text: str):\n"
        '    return {"answer": sum(1 for ch in text.lower() if ch in "aeiou")}\n'
    )
    fake = teacher([design])
    fake.handlers["extract"] = read
    (program,) = await program_candidates(
        fake.teacher, InProcessCodeRunner(), vowels, rows, default_metric(vowels),
        [[], [], []],
        budget=SourceBudget(whole_samples=1, enumerate=False, describe=False,
                            design_samples=1, design_repairs=0),
    )  # fmt: skip
    assert program.origin == "design" and list(program.params) == ["word"]
    assert program.descriptions == {"word": "the word the task applies to, copied from the text"}
    assert [p.get("word", {}).get("description") for p in asked][-1] == program.descriptions["word"]
