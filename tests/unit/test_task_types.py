"""Field types: spelling round trip, JSON schema, coercion, the per-type metric, inference."""

from __future__ import annotations

import datetime as dt
from typing import Any

import jsonschema
import pytest

from sgde.errors import TaskSpecError
from sgde.task import FieldType, TaskValueError, gold_type, infer_type, parse_date

SPELLINGS = [
    "integer",
    "number",
    "number(tol=0.01)",
    "string",
    "boolean",
    "date",
    "list[integer]",
    "list[string]",
    "set[number]",
    "set[date]",
    "enum[pos,neg,neutral]",
    'enum["New York, NY","Paris"]',
    "list[enum[a,b]]",
]


@pytest.mark.parametrize("text", SPELLINGS)
def test_parse_and_str_round_trip(text: str) -> None:
    ftype = FieldType.parse(text)
    assert str(ftype) == text
    assert FieldType.parse(str(ftype)) == ftype
    assert FieldType.model_validate(ftype.model_dump()) == ftype


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("int", "integer"),
        ("float", "number"),
        ("str", "string"),
        ("text", "string"),
        ("bool", "boolean"),
        (" List[ Int ] ", "list[integer]"),
        ("array[number]", "list[number]"),
        ("number(0.5)", "number(tol=0.5)"),
    ],
)
def test_parse_accepts_aliases(alias: str, canonical: str) -> None:
    assert str(FieldType.parse(alias)) == canonical


def test_parse_details() -> None:
    assert FieldType.parse("set[integer]").ordered is False
    assert FieldType.parse("list[integer]").ordered is True
    assert FieldType.parse("enum[ pos , neg ]").labels == ("pos", "neg")
    assert FieldType.parse("number(tol=0.01)").tolerance == 0.01


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("list[list[integer]]", "lists of lists"),
        ("dict", "unknown type 'dict'"),
        ("enum[]", "must not be empty"),
        ("enum[a,,b]", "must not be empty"),
        ("enum[yes,YES]", "repeat"),
        ("list", "say what it holds"),
        ("set[]", "invalid type 'set[]'"),
        ("string(tol=1)", "unknown type"),
        ("number(tol=-1)", "tolerance"),
        ("", "unknown type"),
    ],
)
def test_parse_rejects_with_accepted_forms(text: str, needle: str) -> None:
    with pytest.raises(TaskSpecError) as info:
        FieldType.parse(text)
    assert needle in str(info.value)
    assert "accepted types" in str(info.value)


def test_invalid_combinations_are_refused_by_the_model() -> None:
    with pytest.raises(ValueError, match="needs an item type"):
        FieldType(kind="list")
    with pytest.raises(ValueError, match="only an enum"):
        FieldType(kind="string", labels=("a",))
    with pytest.raises(ValueError, match="only a list type can be unordered"):
        FieldType(kind="integer", ordered=False)


@pytest.mark.parametrize(
    ("text", "schema"),
    [
        ("integer", {"type": "integer"}),
        ("number", {"type": "number"}),
        ("string", {"type": "string"}),
        ("boolean", {"type": "boolean"}),
        ("enum[pos,neg]", {"type": "string", "enum": ["pos", "neg"]}),
        ("list[integer]", {"type": "array", "items": {"type": "integer"}}),
        ("set[string]", {"type": "array", "items": {"type": "string"}}),
    ],
)
def test_json_schema(text: str, schema: dict[str, Any]) -> None:
    assert FieldType.parse(text).json_schema() == schema


def test_date_schema_accepts_iso_and_rejects_other_spellings() -> None:
    schema = FieldType.parse("date").json_schema()
    assert schema["type"] == "string" and "YYYY-MM-DD" in schema["description"]
    jsonschema.validate("2024-01-05", schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate("January 5, 2024", schema)
    items = FieldType.parse("list[date]").json_schema()
    jsonschema.validate(["2024-01-05", "1999-12-31"], items)


@pytest.mark.parametrize(
    ("text", "value", "expected"),
    [
        ("integer", 12, 12),
        ("integer", 12.0, 12),
        ("integer", "12", 12),
        ("integer", " 1,234 ", 1234),
        ("integer", "-7", -7),
        ("integer", "$5", 5),
        ("integer", "26806625", 26806625),
        ("integer", "123456789012345678901", 123456789012345678901),  # beyond float precision
        ("number", "1,234.5", 1234.5),
        ("number", "12", 12),
        ("number", 0.25, 0.25),
        ("number", "50%", 50.0),
        ("string", "  Paris ", "Paris"),
        ("string", 12, "12"),
        ("string", 12.0, "12"),
        ("string", 2.5, "2.5"),
        ("string", True, "true"),
        ("boolean", True, True),
        ("boolean", "Yes", True),
        ("boolean", "false", False),
        ("boolean", "N", False),
        ("boolean", 1, True),
        ("date", "2024-1-5", "2024-01-05"),
        ("date", "2024-01-05", "2024-01-05"),
        ("date", dt.date(2024, 1, 5), "2024-01-05"),
        ("date", dt.datetime(2024, 1, 5, 13, 30), "2024-01-05"),
        ("date", "2024/01/05", "2024-01-05"),
        ("date", "2024-01-05T10:00:00Z", "2024-01-05"),
        ("date", "20240105", "2024-01-05"),
        ("date", "January 5, 2024", "2024-01-05"),
        ("date", "5 Jan 2024", "2024-01-05"),
        ("date", "Friday, 5th of January 2024", "2024-01-05"),
        ("date", "Sept. 30, 2023", "2023-09-30"),
        ("enum[pos,neg,neutral]", "POS", "pos"),
        ("enum[pos,neg,neutral]", ' "Neutral". ', "neutral"),
        ("enum[1,2,3]", 2, "2"),
        ("list[integer]", [1, "2", 3.0], [1, 2, 3]),
        ("list[integer]", (1, 2), [1, 2]),
        ("list[integer]", "[1, 2]", [1, 2]),
        ("list[date]", ["2024-1-5"], ["2024-01-05"]),
        ("set[string]", [" b", "a "], ["b", "a"]),
        ("list[string]", [], []),
    ],
)
def test_coerce(text: str, value: Any, expected: Any) -> None:
    ftype = FieldType.parse(text)
    got = ftype.coerce(value)
    assert got == expected
    assert type(got) is type(expected)
    assert ftype.coerce(got) == got  # idempotent: checked rows can be checked again
    assert ftype.correct(value, got) and ftype.correct(got, value)


@pytest.mark.parametrize(
    ("text", "value", "needle"),
    [
        ("integer", 12.5, "expected an integer"),
        ("integer", "twelve", "expected an integer"),
        ("integer", True, "expected an integer"),
        ("number", "5 eggs", "expected a number"),
        ("number", float("nan"), "expected a number"),
        ("number", False, "expected a number"),
        ("string", [1], "expected text, got [1]"),
        ("boolean", "maybe", "expected a boolean"),
        ("boolean", 2, "expected a boolean"),
        ("date", "tomorrow", "expected a date (YYYY-MM-DD)"),
        ("date", "01/05/2024", "expected a date"),  # ambiguous day/month order
        ("date", "2024-02-30", "not a valid date"),
        ("date", 20240105, "expected a date"),
        ("enum[pos,neg]", "neutral", "one of 'pos', 'neg'"),
        ("list[integer]", 5, "expected a list of integers"),
        ("list[integer]", [1, [2]], "nested lists"),
        ("list[integer]", [1, "x"], "item 2: expected an integer"),
        ("integer", None, "got null"),
        ("integer", "3 4", "expected an integer"),
        ("integer", "1,2", "expected an integer"),
        ("number", "1,2", "expected a number"),
    ],
)
def test_coerce_rejects(text: str, value: Any, needle: str) -> None:
    with pytest.raises(TaskValueError) as info:
        FieldType.parse(text).coerce(value)
    assert needle in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("text", "pred", "gold", "ok"),
    [
        ("integer", 26806603, 26806625, False),  # a relative 1e-6 tolerance accepts this
        ("number", 26806603, 26806625, False),
        ("integer", 26806625, "26,806,625", True),
        ("integer", 12.0000001, 12, True),
        ("integer", 12.4, 12, False),
        ("number", 3.3333333, "3.33", True),  # the gold's decimals
        ("number", 3.336, "3.33", False),
        ("number", "$5", 5, True),
        ("number", 0.1 + 0.2, 0.3, True),
        ("number", "eighteen", 18, False),
        ("number", True, 1, False),
        ("number(tol=0.5)", 10.4, 10, True),
        ("number(tol=0.5)", 10.6, 10, False),
        ("string", " Paris. ", "paris", True),
        ("string", '"paris"', "Paris", True),
        ("string", "New   York", "new york", True),
        ("string", "Pariss", "Paris", False),
        ("string", 5, "5", True),
        ("string", ["Paris"], "Paris", False),
        ("boolean", "yes", True, True),
        ("boolean", "true", "True", True),
        ("boolean", "no", True, False),
        ("boolean", "maybe", True, False),
        ("date", "January 5, 2024", "2024-01-05", True),
        ("date", "2024/1/5", dt.date(2024, 1, 5), True),
        ("date", "5 Jan 2024", "2024-01-05", True),
        ("date", "2024-01-06", "2024-01-05", False),
        ("date", "soon", "2024-01-05", False),
        ("enum[pos,neg,neutral]", "POS", "pos", True),
        ("enum[pos,neg,neutral]", "Negative", "neg", False),
        ("enum[pos,neg,neutral]", "neutral.", "Neutral", True),
        ("list[integer]", [1, 2, 3], [1, 2, 3], True),
        ("list[integer]", [3, 2, 1], [1, 2, 3], False),
        ("list[integer]", [1, 2], [1, 2, 3], False),
        ("list[integer]", "[1, 2, 3]", [1, 2, 3], True),
        ("list[integer]", 1, [1], False),
        ("set[integer]", [3, 1, 2], [1, 2, 3], True),
        ("set[integer]", [1, 1, 2], [1, 2, 2], False),  # multiset: counts matter
        ("set[string]", ["B", "a"], ["a", "b"], True),
        ("set[number]", [1.0, 1.004], ["1.00", 1.0], True),  # needs a matching, not a sort
        ("list[date]", ["Jan 5, 2024"], ["2024-01-05"], True),
    ],
)
def test_correct(text: str, pred: Any, gold: Any, ok: bool) -> None:
    assert FieldType.parse(text).correct(pred, gold) is ok


@pytest.mark.parametrize("text", SPELLINGS)
def test_correct_never_raises_and_none_is_wrong(text: str) -> None:
    ftype = FieldType.parse(text)
    for pred in (None, object(), {"a": 1}, [[1]], float("nan"), "", b"x"):
        assert ftype.correct(pred, "x") is False
    assert ftype.correct(None, None) is False


def test_parse_date_spellings() -> None:
    assert parse_date("2024-12-31") == dt.date(2024, 12, 31)
    assert parse_date("31 December 2024") == dt.date(2024, 12, 31)
    assert parse_date("Dec 31 2024") == dt.date(2024, 12, 31)
    assert parse_date("31-Dec-2024") == dt.date(2024, 12, 31)
    with pytest.raises(TaskValueError):
        parse_date("Smarch 3, 2024")


# -- inference ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1, 2, 3], "integer"),
        (["1", "2", "30"], "integer"),
        ([1, "2", "1,000"], "integer"),
        ([1, 2.5], "number"),
        ([1.0, 2.0], "number"),
        (["1.5", "2"], "number"),
        ([3, "4.5"], "number"),
        (["12%", "50%"], "number"),
        ([True, False, True], "boolean"),
        (["true", "False"], "boolean"),
        ([True, "false"], "boolean"),
        (["2024-01-05", "2023-12-31"], "date"),
        ([dt.date(2024, 1, 5), "2024-02-01"], "date"),
        (["hello", "world"], "string"),
        (["12", "twelve"], "string"),  # free text that sometimes looks like a number
        (["2024-01-05", "soon"], "string"),
        (["007", "042"], "string"),  # codes keep their leading zeros
        (["2024-02-30"], "string"),
        ([[1, 2], [3]], "list[integer]"),
        ([[1, 2.5], []], "list[number]"),
        ([["a", "b"], ["c"]], "list[string]"),
        ([["2024-01-05"], ["2024-02-01", "2024-03-01"]], "list[date]"),
        ([[], []], "list[string]"),
    ],
)
def test_infer_type(values: list[Any], expected: str) -> None:
    assert str(infer_type(values)) == expected


def test_infer_enum_only_when_asked_and_labels_repeat() -> None:
    labels = ["positive", "negative", "positive", "Neutral", "negative"]
    assert str(infer_type(labels)) == "string"
    assert str(infer_type(labels, labels=True)) == "enum[positive,negative,Neutral]"
    # every value distinct: free text, not labels
    assert str(infer_type(["a", "b", "c"], labels=True)) == "string"
    # too many labels
    many = [f"label{i}" for i in range(13)] * 2
    assert str(infer_type(many, labels=True)) == "string"
    # long values are sentences, not labels
    long = ["this is a long free-text answer that is not a label at all"] * 2
    assert str(infer_type(long, labels=True)) == "string"
    # the most frequent spelling is the label
    assert infer_type(["Yes", "yes", "yes", "no"], labels=True).labels == ("yes", "no")


@pytest.mark.parametrize(
    ("values", "index", "needle"),
    [
        ([1, 2, None], 2, "missing"),
        ([1, 2, "three"], 2, "expected a number like the other rows, got 'three'"),
        ([True, "no"], 1, "expected a boolean"),
        ([[1], [[2]]], 1, "nested lists"),
        ([[1], 2], 1, "expected a list"),
        ([{"a": 1}], 0, "objects are not supported"),
        ([[1, 2], [3, "x"]], 1, "list item"),
    ],
)
def test_infer_type_errors_name_the_value(values: list[Any], index: int, needle: str) -> None:
    with pytest.raises(TaskValueError) as info:
        infer_type(values)
    assert info.value.index == index
    assert needle in str(info.value)


def test_infer_type_needs_values() -> None:
    with pytest.raises(TaskValueError, match="no values"):
        infer_type([])


@pytest.mark.parametrize(
    ("gold", "expected"),
    [
        (18, "number"),
        ("1,234", "number"),
        (True, "boolean"),
        ("2024-01-05", "date"),
        (dt.date(2024, 1, 5), "date"),
        ("Paris", "string"),
        ([1, 2], "list[integer]"),
        (["a"], "list[string]"),
        ({"a": 1}, None),
        ([[1]], None),
    ],
)
def test_gold_type(gold: Any, expected: str | None) -> None:
    got = gold_type(gold)
    assert (str(got) if got is not None else None) == expected


def test_plan_type_and_describe() -> None:
    assert FieldType.parse("date").plan_type() == "string"
    assert FieldType.parse("enum[a,b]").plan_type() == "string"
    assert FieldType.parse("list[integer]").plan_type() == "array"
    assert FieldType.parse("integer").plan_type() == "integer"
    assert FieldType.parse("set[date]").describe() == "an unordered list of dates (YYYY-MM-DD)"
    assert FieldType.parse("string").describe() == "text"
    assert FieldType.parse("list[string]").describe() == "a list of strings"
    assert FieldType.parse("enum[a,b]").describe() == "one of 'a', 'b'"


def test_inference_is_importable_where_the_api_documents_it() -> None:
    from sgde.task import infer
    from sgde.task import types as types_module

    assert types_module.infer_type is infer.infer_type
    assert types_module.gold_type is infer.gold_type
    with pytest.raises(AttributeError):
        _ = types_module.no_such_name
