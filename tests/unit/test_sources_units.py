"""A number the cases write in different units: a unit field, and the conversion in code."""

from __future__ import annotations

from test_sources_design import NO_UNIT, ROWS, _candidates, teacher

from sgde.optimize.sources.code import program_source, run_harnessed
from sgde.optimize.sources.units import UNITS, Rescaled, rescale, unit_after, with_units
from sgde.testing import InProcessCodeRunner


def test_the_unit_after_a_number_is_read_from_the_text() -> None:
    assert unit_after("How much to ship a 17400 g box to Italy?", 17400) == "g"
    assert unit_after("Weight: 4.4 kilograms. Origin: Paris.", 4.4) == "kilograms"
    assert unit_after("a 1,250 ml bottle", 1250) == "ml"
    assert unit_after("4 boxes of 4 kg", 4) is None  # written twice, once with no unit
    assert unit_after("4 kg in, 4 kg out", 4) == "kg"
    assert unit_after("5 apples", 5) is None and unit_after("no number", 1) is None
    assert UNITS["kg"] == ("mass", 1000.0) and UNITS["lbs"][0] == "mass"


def test_failing_rows_in_another_unit_are_converted_to_the_verifying_rows_unit() -> None:
    texts = ["A 4.4 kg parcel", "A 17400 g box", "Parcel of 3 kilograms"]
    values = [{"w": 4.4, "to": "Italy"}, {"w": 17400.0, "to": "Germany"}, {"w": 3.0, "to": "x"}]
    found = rescale(["w", "to"], ["w"], values, [False, True, False], texts)
    assert found is not None
    (r,), converted = found
    assert r == Rescaled("w", "w_unit", "mass", "kg", ["kg", "g", "kilograms"])
    assert converted[1] == {"w": 17.4, "to": "Germany"} and converted[0] == values[0]
    # nothing to learn: every row fails, or no row writes a known unit, or all agree
    assert rescale(["w"], ["w"], values, [True] * 3, texts) is None
    assert rescale(["w"], ["w"], values, [False, True, False], ["4.4", "17400", "3"]) is None
    same = ["4.4 kg", "17400 kg", "3 kg"]
    assert rescale(["w"], ["w"], values, [False, True, False], same) is None


async def test_the_converting_run_takes_the_unit_as_written() -> None:
    code = "def run(w, to):\n    return {'answer': round(2.5 * w, 2)}\n"
    r = Rescaled("w", "w_unit", "mass", "kg", ["kg", "g"])
    wrapped = program_source(with_units(code, ["w", "to"], [r]), "run", ["w", "to", "w_unit"],
                             ["answer"])  # fmt: skip
    assert wrapped is not None
    runner = InProcessCodeRunner()
    for unit, want in (("g", 43.5), ("KG", 43500.0), ("lbs", 19731.27), ("furlongs", 43500.0)):
        run = await run_harnessed(runner, wrapped, "run", {"w": 17400, "to": "x", "w_unit": unit})
        assert run.result == {"answer": want}, unit


async def test_a_design_failing_on_a_row_in_another_unit_gets_a_unit_field() -> None:
    fake = teacher([NO_UNIT])  # amount taken in litres; one row writes 500 ml
    (program,) = await _candidates(fake, design_samples=1, design_repairs=0)
    assert program.origin == "design" and program.verified_rows == len(ROWS)
    assert list(program.params) == ["finish", "amount", "amount_unit", "text"]
    assert program.values[1] == {
        "finish": "Gloss",
        "amount": 500.0,
        "amount_unit": "ml",
        "text": ROWS[1]["text"],
    }
    assert "unit the amount is written in" in program.descriptions["amount_unit"]
    assert "repair_design" not in fake.seen and fake.seen.count("extract") == len(ROWS)
    run = await run_harnessed(InProcessCodeRunner(), program.code, "run",
                              {"finish": "matte", "amount": 250, "amount_unit": "ml",
                               "text": "250 ml of matte"})  # fmt: skip
    assert run.result == {"answer": 0.75}


async def test_the_unit_written_after_the_copied_number_overrides_a_slip_on_the_unit_field() -> (
    None
):
    code = "def run(w, to):\n    return {'answer': round(2.5 * w, 2)}\n"
    r = Rescaled("w", "w_unit", "mass", "kg", ["kg", "g"])
    wrapped = program_source(with_units(code, ["w", "to"], [r], ["text"]), "run",
                             ["w", "to", "w_unit", "text"], ["answer"])  # fmt: skip
    assert wrapped is not None
    runner = InProcessCodeRunner()
    cases = [
        ("kg", "a 17400 g box", 43.5),  # the text says g: the copied "kg" is a slip
        ("g", "a box of 17400 (unit unknown)", 43.5),  # nothing after the number: the copy
        ("g", "17400 parcels", 43.5),  # a word the table does not know: the copy
    ]
    for unit, text, want in cases:
        values = {"w": 17400, "to": "x", "w_unit": unit, "text": text}
        run = await run_harnessed(runner, wrapped, "run", values)
        assert run.result == {"answer": want}, text
