"""A field the code only looks up in a closed set of words is read by finding them."""

from __future__ import annotations

from sgde.optimize.sources.code import program_source, run_harnessed
from sgde.optimize.sources.vocabulary import vocabulary, with_vocabulary
from sgde.testing import InProcessCodeRunner

ZONES = """def run(destination: str, weight: float):
    europe = ["Germany", "Spain", "the Netherlands"]
    if destination.strip().lower() in ["lyon", "lille"]:
        return {"answer": 4.0 + 1.5 * weight}
    if destination in europe:
        return {"answer": 9.0 + 2.5 * weight}
    return {"answer": 20.0 + 6.0 * weight}
"""


def test_the_words_a_field_is_compared_with_or_looked_up_by() -> None:
    assert vocabulary(ZONES, "destination") == [
        "lyon", "lille", "Germany", "Spain", "the Netherlands"
    ]  # fmt: skip
    table = "def run(plan):\n    return {'fee': {'basic': 1, 'pro': 5}.get(plan.lower(), 0)}\n"
    assert vocabulary(table, "plan") == ["basic", "pro"]
    lookup = "def run(plan):\n    FEES = {'basic': 1, 'pro': 5}\n    return {'fee': FEES[plan]}\n"
    assert vocabulary(lookup, "plan") == ["basic", "pro"]
    # one word is too little to read by; a number field is compared with no words
    assert vocabulary("def run(a):\n    return {'x': a == 'yes'}\n", "a") == []
    assert vocabulary(ZONES, "weight") == [] and vocabulary("def (", "a") == []


async def test_the_one_vocabulary_word_in_the_text_replaces_the_copied_value() -> None:
    words = {"destination": vocabulary(ZONES, "destination")}
    code = program_source(
        with_vocabulary(ZONES, ["destination", "weight"], words, ["text"]),
        "run", ["destination", "weight", "text"], ["answer"],
    )  # fmt: skip
    assert code is not None
    runner = InProcessCodeRunner()
    cases = [
        ("Paris", "Ship 2 kg from Paris to a customer in Spain", 14.0),  # misread: Spain found
        ("Japan", "Ship 2 kg from Paris to Japan", 32.0),  # no word: the copy stands
        ("Lyon", "From Lille to Lyon, 2 kg", 7.0),  # two words: the copy stands
        ("Holland", "2 kg to the Netherlands", 14.0),  # "the Netherlands", any case
        ("x", "2 kg to THE NETHERLANDS please", 14.0),
    ]
    for copied, text, want in cases:
        values = {"destination": copied, "weight": 2.0, "text": text}
        run = await run_harnessed(runner, code, "run", values)
        assert run.result == {"answer": want}, text
