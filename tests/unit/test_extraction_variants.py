"""The extraction node's prompt variants: masked contexts of the training values, what each
variant shows, that no variant shows a training value, and how one is chosen."""

from __future__ import annotations

import json
from typing import Any

from _optimize_fakes import ROWS, VALUES

from sgde.optimize.accept import choose_variant
from sgde.optimize.evaluate import PlanEval
from sgde.optimize.operators.base import Candidate, Variant
from sgde.optimize.operators.program_nodes import extraction_variants, prompt_size
from sgde.optimize.sources.contexts import value_contexts
from sgde.plan.model import LlmNode, Plan
from sgde.runtime.backend import Usage
from sgde.task import FieldType, TaskSpec

TASK = TaskSpec(
    description="duck eggs", inputs={"question": "string"}, outputs={"answer": "integer"}
)
PARAMS = {n: FieldType.parse("integer") for n in ("eggs_per_day", "eaten", "baked", "price")}
ROW_VALUES: list[dict[str, Any] | None] = [dict(zip(PARAMS, v, strict=True)) for v in VALUES[:3]]


def _variants(**kw: Any) -> dict[str, LlmNode]:
    contexts = value_contexts(TASK, ROWS, PARAMS, ROW_VALUES)
    args: dict[str, Any] = {
        "model": "student",
        "inputs": {"question": "input.question"},
        "params": PARAMS,
        "descriptions": {"eggs_per_day": "eggs laid per day, e.g. 16", "price": "the price"},
        "purpose": "copies the values",
        "values": ROW_VALUES,
        "contexts": contexts,
    }
    args.update(kw)
    return dict(extraction_variants("solve_extract", **args))


def test_contexts_mask_the_value_and_every_other_number() -> None:
    contexts = value_contexts(TASK, ROWS, PARAMS, ROW_VALUES)
    # the rows are phrased alike: one context per field, whatever the numbers
    assert contexts["eggs_per_day"] == ["Janet's ducks lay ___ eggs per day. She eats N for"]
    assert contexts["price"] == ["farmers' market daily for $___ per fresh duck egg. How much"]
    letters = TaskSpec(description="count", inputs={"q": "string"}, outputs={"n": "integer"})
    rows = [{"q": 'How many "r" in "strawberry"?'}, {"q": 'How many "s" in "sassy"? Say 2.'}]
    values: list[dict[str, Any] | None] = [
        {"word": "strawberry", "letter": "r"},
        {"word": "sassy", "letter": "s"},
    ]
    types = {"word": FieldType.parse("string"), "letter": FieldType.parse("string")}
    found = value_contexts(letters, rows, types, values)
    assert found["word"] == ['How many "…" in "___"?', 'How many "…" in "___"? Say N.']
    assert found["letter"][0] == 'How many "___" in "…"?'


def test_a_value_written_twice_has_no_context_in_that_row() -> None:
    rows = [{"question": "Add 10 days to 10 apples."}, {"question": "Add 4 days to 7 apples."}]
    values: list[dict[str, Any] | None] = [{"days": 10}, {"days": 4}]
    found = value_contexts(TASK, rows, {"days": FieldType.parse("integer")}, values)
    assert found == {"days": ["Add ___ days to N apples."]}


def test_the_variants_and_what_each_shows() -> None:
    variants = _variants()
    assert list(variants) == ["described", "described+context", "snippet"]
    described = variants["described"].prompt
    assert "- eggs_per_day (integer): eggs laid per day, e.g. ___" in described  # its value
    assert "- baked (integer): the baked the text gives" in described
    assert '(in "' not in described
    with_context = variants["described+context"].prompt
    assert (
        "- price (integer): the price "
        '(in "farmers\' market daily for $___ per fresh duck egg. How much")'
    ) in with_context
    snippet = variants["snippet"]
    assert snippet.prompt.startswith("Text: {{ question }}\n\nFill each field with the number")
    assert '- eaten: the number in "lay N eggs per day. She eats ___ for breakfast every' in (
        snippet.prompt
    )
    assert snippet.system is not None and snippet.system.startswith("You copy numbers")
    # every variant reads the same fields with the same types
    for node in variants.values():
        assert node.output_schema is not None
        assert {k: v["type"] for k, v in node.output_schema["properties"].items()} == dict.fromkeys(
            PARAMS, "integer"
        )


def test_no_variant_shows_a_training_value_of_any_field() -> None:
    leaky = {"eggs_per_day": "eggs laid per day (in 'ducks lay 9021 eggs')", "price": "$13 each"}
    for name, node in _variants(descriptions=leaky).items():
        shown = json.dumps([node.system, node.prompt, node.output_schema])
        for row in ROW_VALUES:
            assert row is not None
            for value in row.values():
                assert f"{value}" not in shown.replace("{{ question }}", ""), (name, value)


def test_a_non_numeric_field_gets_no_snippet_variant_and_several_phrasings_get_contexts() -> None:
    rows = [
        {"question": "Ann bought 3 pens."},
        {"question": "How many pens did Bob buy? He bought 5."},
    ]
    values: list[dict[str, Any] | None] = [{"who": "Ann", "n": 3}, {"who": "Bob", "n": 5}]
    types = {"who": FieldType.parse("string"), "n": FieldType.parse("integer")}
    contexts = value_contexts(TASK, rows, types, values)
    variants = _variants(params=types, values=values, contexts=contexts, descriptions={})
    assert list(variants) == ["described", "described+context", "contexts"]
    assert (
        '(in "… bought ___ pens." or "pens did … buy? He bought ___.")'
        in variants["contexts"].prompt
    )
    assert "Ann" not in variants["contexts"].prompt and "Bob" not in variants["contexts"].prompt


def _eval(loss: float) -> PlanEval:
    return PlanEval(loss, [[1 - loss]], [[""]], [[{}]], [[{}]], [[]], 10, Usage())


def test_the_lowest_node_error_wins_and_a_tie_goes_to_the_shorter_prompt() -> None:
    plan = Plan(name="p", inputs={"q": "string"}, outputs={}, nodes=[])
    edit = Candidate(plan, "offload", "solve", "offload solve")
    long_, short = Variant("long", plan, "x", 900), Variant("short", plan, "x", 400)
    chosen, evaluation = choose_variant(
        edit, [(long_, _eval(0.0), 0.0), (short, _eval(1 / 3), 1 / 12)]
    )
    assert chosen.details["variant"] == "long" and evaluation.loss == 0.0
    assert chosen.details["variants"]["short"] == {
        "node_error": 1 / 12,
        "loss": 1 / 3,
        "prompt_chars": 400,
    }
    assert chosen.summary == "offload solve [extraction prompt long: node error 0.000; short 0.083]"
    assert chosen.variants == ()
    tie, _ = choose_variant(edit, [(long_, _eval(0.0), 0.0), (short, _eval(0.0), 0.0)])
    assert tie.details["variant"] == "short"
    unknown, _ = choose_variant(edit, [(short, _eval(0.0), None), (long_, _eval(0.5), 0.5)])
    assert unknown.details["variant"] == "long"


def test_prompt_size_counts_system_and_prompt() -> None:
    node = _variants()["described"]
    assert prompt_size(node) == len(node.system or "") + len(node.prompt)
