"""The ``design`` source: the teacher names the fields a reader copies and writes ``run`` over
them; its own reads of every training row verify it."""

from __future__ import annotations

import re
from typing import Any

from _sources_fakes import ScriptedTeacher, case_of, fenced

from sgde.optimize.operators.program_nodes import build_program_plan
from sgde.optimize.sources import SourceBudget, program_candidates
from sgde.optimize.sources.code import run_harnessed
from sgde.optimize.sources.design import read_design
from sgde.plan.model import CodeNode, LlmNode, Plan
from sgde.planfile import check_plan
from sgde.runtime.backend import ChatRequest
from sgde.task import FieldType, TaskSpec, default_metric
from sgde.testing import InProcessCodeRunner

# A task whose rule needs a table from the description and a unit the rows write two ways:
# no literal of a row's solution lifts (the price per litre differs per finish), and no
# whole-task code is scripted to verify.
PAINT = TaskSpec(
    description=(
        "Return the cost of the paint as `answer`: matte paint costs 3.00 per litre, gloss "
        "paint 5.00 per litre."
    ),
    inputs={"text": "string"},
    outputs={"answer": "number"},
)
ROWS = [
    {"text": "Please quote 4 litres of matte paint for the hall.", "answer": 12.0},
    {"text": "Gloss paint for a door, 500 ml of it.", "answer": 2.5},
    {"text": "We need 2 litres of gloss finish.", "answer": 10.0},
]

GOOD = """FIELDS = {
    "finish": "the paint finish, as written",
    "amount": "how much paint, as a number",
    "unit": "the unit of the amount as written (litres or ml)",
}

def run(finish: str, amount: float, unit: str):
    per_litre = {"matte": 3.0, "gloss": 5.0}
    litres = amount / 1000 if unit.lower() in ("ml", "millilitres") else amount
    return {"answer": round(per_litre[finish.lower()] * litres, 2)}
"""
# No unit field: right where the text says litres, wrong on the 500 ml row.
NO_UNIT = """FIELDS = {"finish": "the paint finish, as written", "amount": "the amount in litres"}

def run(finish: str, amount: float):
    return {"answer": round({"matte": 3.0, "gloss": 5.0}[finish.lower()] * amount, 2)}
"""


def reader(req: ChatRequest) -> dict[str, Any]:
    """The teacher's read of a row: copies each requested field from the case's text."""
    text = str(case_of(req, "Now this case:").get("text", ""))
    props = dict((req.json_schema or {}).get("properties", {}))
    number = re.search(r"\d+(?:\.\d+)?", text)
    unit = re.search(r"\d\s*(litres|ml)", text)
    finish = re.search(r"matte|gloss", text, flags=re.I)
    found = {
        "finish": finish.group(0) if finish else "",
        "amount": float(number.group(0)) if number else 0.0,
        "unit": unit.group(1) if unit else "",
    }
    return {name: found.get(name, "") for name in props}


def teacher(designs: list[str], prompts: list[str] | None = None) -> ScriptedTeacher:
    """Whole-task code that fails; ``designs`` answered in turn to design and repair calls
    (their prompts appended to ``prompts``)."""
    queue = list(designs)

    def design(req: ChatRequest) -> str:
        if prompts is not None:
            prompts.append(req.messages[-1].content)
        return fenced(queue.pop(0) if queue else "no code")

    return ScriptedTeacher(
        {
            "whole": lambda req: fenced("def run(text):\n    return {'answer': 0}"),
            "repair_whole": lambda req: "no code",
            "design": design,
            "repair_design": design,
            "extract": reader,
        }
    )


async def _candidates(fake: ScriptedTeacher, **budget: Any) -> list[Any]:
    return await program_candidates(
        fake.teacher,
        InProcessCodeRunner(),
        PAINT,
        ROWS,
        default_metric(PAINT),
        [[], [], []],
        budget=SourceBudget(whole_samples=1, enumerate=False, describe=False, **budget),
    )


async def test_a_design_verified_with_the_teachers_reads_becomes_a_program() -> None:
    fake = teacher([GOOD])
    programs = await _candidates(fake)
    assert [p.origin for p in programs] == ["design"]
    p = programs[0]
    # run looks the finish up in a table: the finish is also read from the text by its words
    assert list(p.params) == ["finish", "amount", "unit", "text"]
    assert p.params["amount"] == FieldType(kind="number") and p.raw_inputs == {"text": "text"}
    assert p.verified_rows == 3 and p.searched == 1
    assert p.values[1] == {
        "finish": "Gloss",
        "amount": 500.0,
        "unit": "ml",
        "text": ROWS[1]["text"],
    }
    # the FIELDS texts are the student's extraction descriptions (no describe call)
    assert p.descriptions["unit"] == "the unit of the amount as written (litres or ml)"
    assert fake.seen[-4:] == ["design", "extract", "extract", "extract"]
    for copied, text, want in (
        ("MATTE", "a quarter litre", 0.75),
        ("matte", "gloss, 250 ml", 1.25),
    ):
        values = {"finish": copied, "amount": 250, "unit": "ml", "text": text}
        run = await run_harnessed(InProcessCodeRunner(), p.code, "run", values)
        assert run.result == {"answer": want}, text


async def test_without_the_design_source_no_program_verifies() -> None:
    programs = await _candidates(teacher([GOOD]), design_samples=0)
    assert programs == []


async def test_a_failing_design_is_repaired_with_its_failing_rows_and_new_fields_reread() -> None:
    prompts: list[str] = []
    fake = teacher([GOOD.replace('"gloss": 5.0', '"gloss": 4.0'), GOOD], prompts)
    programs = await _candidates(fake, design_samples=1, design_repairs=1)
    assert [p.origin for p in programs] == ["design"]
    assert list(programs[0].params) == ["finish", "amount", "unit", "text"]
    assert programs[0].searched == 2
    assert fake.seen.count("repair_design") == 1 and len(prompts) == 2
    repair_prompt = prompts[1]
    assert "Gloss paint for a door, 500 ml of it." in repair_prompt
    assert 'expected outputs: {"answer": 2.5}' in repair_prompt
    assert "4 litres of matte" not in repair_prompt  # a verified row is not shown


async def test_a_design_is_not_sought_when_another_source_verifies() -> None:
    fake = ScriptedTeacher(
        {
            "whole": lambda req: fenced(
                "def run(text):\n    return {'answer': 12.0 if 'matte' in text else "
                "(2.5 if 'ml' in text else 10.0)}"
            ),
        }
    )
    programs = await _candidates(fake)
    assert [p.origin for p in programs] == ["whole"] and "design" not in fake.seen


def test_read_design_takes_types_and_descriptions_however_fields_are_written() -> None:
    code = """FIELDS = {"a": ("float", "the first amount"), "b": str, "c": "the count"}

def run(a, b, c: int, text):
    return {"answer": a}
"""
    design = read_design(code, PAINT)
    assert not isinstance(design, str)
    assert design.fields == ["a", "b", "c", "text"]
    assert design.descriptions["a"] == "the first amount" and design.descriptions["b"] == "the b"
    assert design.types == {
        "a": FieldType(kind="number"),
        "b": FieldType(kind="string"),
        "c": FieldType(kind="integer"),
        "text": FieldType(kind="string"),  # a task input: wired raw
    }
    assert design.described == frozenset({"a", "c"})
    earlier = read_design('FIELDS = {"b": "the buyer"}\ndef run(b):\n    return 1\n', PAINT)
    assert not isinstance(earlier, str)
    assert design.inheriting(earlier).descriptions["b"] == "the buyer"


def test_read_design_refuses_code_with_nothing_to_read() -> None:
    assert "only the task's inputs" in str(read_design("def run(text):\n    return 1\n", PAINT))
    assert "no top-level def run" in str(read_design("FIELDS = {}\n", PAINT))
    assert "named fields only" in str(read_design("def run(**kw):\n    return 1\n", PAINT))


async def test_a_row_the_copied_values_fail_is_read_again_in_the_described_unit() -> None:
    def converting(req: ChatRequest) -> dict[str, Any]:
        got = reader(req)
        if got["amount"] >= 100:  # 500 ml: misread as copied (no unit to rescale from), in
            convert = "converting when this case writes another unit" in req.messages[-1].content
            got["amount"] = got["amount"] / 1000 if convert else 0.0  # litres when converting
        return got

    fake = teacher([NO_UNIT])
    fake.handlers["extract"] = converting
    programs = await _candidates(fake, design_samples=1, design_repairs=0)
    assert [p.origin for p in programs] == ["design"]
    assert programs[0].values[1]["amount"] == 0.5  # 500 ml, in litres
    assert fake.seen[-5:] == ["design", "extract", "extract", "extract", "extract"]


def test_run_may_take_the_text_only_to_ignore_it() -> None:
    ignored = 'def run(text: str, amount: float):\n    return {"answer": amount}\n'
    design = read_design(ignored, PAINT, ["text"])
    assert not isinstance(design, str) and design.fields == ["amount"]
    assert "def run(amount: float)" in design.code
    # (a default value: no variant reading a new field in place of the text is tried)
    parses = 'def run(text: str, amount: float = 1.0):\n    return {"answer": len(text) * amount}\n'
    assert "parses the input 'text'" in str(read_design(parses, PAINT, ["text"]))


async def test_a_design_offloads_to_a_student_extraction_described_by_its_fields() -> None:
    (program,) = await _candidates(teacher([GOOD]))
    solve = LlmNode(
        id="solve",
        inputs={"text": "input.text"},
        system="Answer.",
        prompt="{{ text }}",
        output_schema={"type": "object", "properties": {"answer": {"type": "number"}}},
    )
    plan = Plan(name="paint", inputs={"text": "string"}, outputs={"answer": "solve.answer"},
                nodes=[solve])  # fmt: skip
    built, problems = build_program_plan(plan, solve, None, ["answer"], program)
    assert built is not None, problems
    assert built.extracted == ["finish", "amount", "unit"] and built.raw == {"text": "input.text"}
    extract = built.plan.node("solve_extract")
    assert isinstance(extract, LlmNode) and extract.output_schema is not None
    unit = extract.output_schema["properties"]["unit"]
    assert unit["type"] == "string" and "unit of the amount" in unit["description"]
    assert isinstance(built.plan.node("solve_compute"), CodeNode)
    assert built.lifted["solve_extract"][1] == {"finish": "Gloss", "amount": 500.0, "unit": "ml"}
    check_plan(built.plan)


async def test_a_design_refused_for_parsing_the_text_is_repaired_told_why() -> None:
    # (a default value: no variant reading a new field in place of the text is tried)
    parses = 'def run(text: str, amount: float = 1.0):\n    return {"answer": len(text) * amount}\n'
    prompts: list[str] = []
    fake = teacher([parses, GOOD], prompts)
    programs = await _candidates(fake, design_samples=1, design_repairs=1)
    assert [p.origin for p in programs] == ["design"] and programs[0].searched == 2
    assert "run() parses the input 'text'" in prompts[1] and "len(text)" in prompts[1]
