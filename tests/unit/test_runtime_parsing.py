"""Output parsing: extraction, repair, coercion, validation, typed errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sgde.errors import ExecutionError, OutputParseError
from sgde.runtime.parsing import (
    coerce_to_schema,
    extract_json_candidates,
    parse_json_output,
    repair_json,
)

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"eggs": {"type": "integer"}, "price": {"type": "number"}},
    "required": ["eggs", "price"],
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"eggs": 16, "price": 2}', {"eggs": 16, "price": 2}),
        ('Sure!\n```json\n{"eggs": 16, "price": 2.5}\n```\nDone.', {"eggs": 16, "price": 2.5}),
        ('The answer is {"eggs": 3, "price": 1.5} as requested.', {"eggs": 3, "price": 1.5}),
        ("{'eggs': 16, 'price': 2}", {"eggs": 16, "price": 2}),
        ("{eggs: 16, price: 2,}", {"eggs": 16, "price": 2}),
        ('{"eggs": 16, "price": 2', {"eggs": 16, "price": 2}),
        ('{"eggs": "16", "price": "$1,234.50"}', {"eggs": 16, "price": 1234.5}),
        ('{"eggs": 16.0, "price": 2}', {"eggs": 16, "price": 2}),
        ('<think>{"eggs": 1}</think>{"eggs": 4, "price": 1}', {"eggs": 4, "price": 1}),
        ('[{"eggs": 5, "price": 1}]', {"eggs": 5, "price": 1}),
        ('{"result": {"eggs": 6, "price": 1}}', {"eggs": 6, "price": 1}),
        ('{"eggs": 7, // seven\n "price": 1}', {"eggs": 7, "price": 1}),
        ('```\n{"eggs": 8, "price": 1}', {"eggs": 8, "price": 1}),
    ],
)
def test_parse_survives_small_model_output(text: str, expected: dict[str, Any]) -> None:
    assert parse_json_output(text, SCHEMA) == expected


def test_second_candidate_wins_when_first_is_invalid() -> None:
    text = 'Example: {"eggs": "many"}. Answer: {"eggs": 2, "price": 3}'
    assert parse_json_output(text, SCHEMA) == {"eggs": 2, "price": 3}


def test_bare_scalar_for_single_property_schema() -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "number"}}}
    assert parse_json_output(" 42 ", schema) == {"answer": 42}
    assert parse_json_output('"1,234"', schema) == {"answer": 1234}


def test_no_json_raises_typed_error_with_raw_text() -> None:
    with pytest.raises(OutputParseError) as info:
        parse_json_output("I think there are sixteen eggs.", SCHEMA, node_id="extract")
    err = info.value
    assert err.raw == "I think there are sixteen eggs."
    assert err.node_id == "extract"
    assert "no JSON object found" in str(err)
    assert "extract" in str(err)


def test_schema_mismatch_names_the_field() -> None:
    with pytest.raises(OutputParseError) as info:
        parse_json_output('{"eggs": "lots", "price": 1}', SCHEMA)
    assert "eggs" in str(info.value)
    assert "does not match" in str(info.value)


def test_missing_required_field_is_an_error() -> None:
    with pytest.raises(OutputParseError, match="price"):
        parse_json_output('{"eggs": 3}', SCHEMA)


def test_non_integral_float_is_not_forced_into_integer() -> None:
    with pytest.raises(OutputParseError):
        parse_json_output('{"eggs": 2.5, "price": 1}', SCHEMA)


def test_no_schema_accepts_any_object() -> None:
    assert parse_json_output("x {'a': True, 'b': None} y", None) == {"a": True, "b": None}
    with pytest.raises(OutputParseError):
        parse_json_output("[1, 2, 3]", None)


def test_invalid_schema_is_an_execution_error_not_a_parse_error() -> None:
    with pytest.raises(ExecutionError) as info:
        parse_json_output("{}", {"type": "objekt"})
    assert not isinstance(info.value, OutputParseError)


def test_additional_properties_false_drops_extras() -> None:
    schema = {**SCHEMA, "additionalProperties": False}
    assert parse_json_output('{"eggs": 1, "price": 2, "note": "x"}', schema) == {
        "eggs": 1,
        "price": 2,
    }


def test_coercion_rules() -> None:
    schema = {
        "type": "object",
        "properties": {
            "flag": {"type": "boolean"},
            "label": {"type": "string"},
            "items": {"type": "array", "items": {"type": "number"}},
            "maybe": {"type": ["integer", "null"]},
        },
    }
    value = {"flag": "yes", "label": 12.0, "items": ["1", "2.5", 3], "maybe": "null"}
    assert coerce_to_schema(value, schema) == {
        "flag": True,
        "label": "12",
        "items": [1, 2.5, 3],
        "maybe": None,
    }
    # Text that is not a number is left alone (validation reports it).
    assert coerce_to_schema({"flag": "perhaps"}, schema) == {"flag": "perhaps"}


def test_repair_json_cases() -> None:
    def fixed(text: str) -> Any:
        return json.loads(repair_json(text))

    assert fixed("{'a': 'it\\'s'}") == {"a": "it's"}
    assert fixed('{"a": [1, 2,], }') == {"a": [1, 2]}
    assert fixed("{a: True, b: None, c: NaN}") == {"a": True, "b": None, "c": None}
    assert fixed('{"a": "open') == {"a": "open"}
    assert fixed('{"a":') == {"a": None}
    assert fixed('{"a": "\\u00e9"}') == {"a": "é"}
    assert fixed('{"a": {"b": [1, {"c": 2') == {"a": {"b": [1, {"c": 2}]}}
    assert fixed('{"a": [{"b": 1}, {"b": 2, "c') == {"a": [{"b": 1}, {"b": 2}]}  # cut in a key
    # A missing comma before a string (list items, object members).
    assert fixed('{"items": ["a", "b" "c"]}') == {"items": ["a", "b", "c"]}
    assert fixed('{"a": 1 "b": true "c": [2] "d": "x"}') == {"a": 1, "b": True, "c": [2], "d": "x"}
    assert fixed('{"a": "x", "b": ["y"]}') == {"a": "x", "b": ["y"]}  # well-formed: unchanged


def test_answers_without_json_stay_failures() -> None:
    # Prose and code hold no object: no object is invented from them (a parse error lets the
    # executor retry with another seed, a fabricated object would be a wrong answer).
    for text in (
        "12 * 7 = 90\n\nThe answer is 90.",
        'json({"start": "HH:MM", "minutes": 9:30}).',
        "def f(x):\n    return {x.name: x(1) + 1.5}",
    ):
        with pytest.raises(OutputParseError):
            parse_json_output(
                text,
                {
                    "type": "object",
                    "properties": {"minutes": {"type": "integer"}},
                    "required": ["minutes"],
                },
            )


def test_candidates_are_ordered_and_deduplicated() -> None:
    text = 'pre ```json\n{"a": 1}\n``` mid {"b": 2}'
    cands = extract_json_candidates(text)
    assert cands[0] == '{"a": 1}'
    assert '{"b": 2}' in cands
    assert len(cands) == len(set(cands))


def test_deeply_nested_garbage_does_not_crash() -> None:
    with pytest.raises(OutputParseError):
        parse_json_output("[" * 100_000, SCHEMA)
