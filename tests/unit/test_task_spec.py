"""Task specs: inference from realistic rows, overrides, row checks, metadata round trip."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from sgde.errors import DataError, TaskDataError, TaskSpecError, UsageError
from sgde.plan.model import Plan
from sgde.task import (
    FieldType,
    TaskSpec,
    declared_outputs,
    default_metric,
    infer_task,
    parse_field_option,
)

DATE_ROWS: list[dict[str, Any]] = [
    {"id": 1, "start": "2024-01-05", "days": 3, "answer": "2024-01-08"},
    {"id": 2, "start": "2024-02-27", "days": "3", "answer": "2024-03-01"},
    {"id": 3, "start": dt.date(2023, 12, 30), "days": 5, "answer": dt.date(2024, 1, 4)},
]


def _types(spec: TaskSpec) -> tuple[dict[str, str], dict[str, str]]:
    return (
        {n: str(t) for n, t in spec.inputs.items()},
        {n: str(t) for n, t in spec.outputs.items()},
    )


def test_infers_dates_and_integers_and_leaves_id_out() -> None:
    spec = infer_task(DATE_ROWS, description="Add N days to a date")
    assert _types(spec) == ({"start": "date", "days": "integer"}, {"answer": "date"})
    assert spec.description == "Add N days to a date"


@pytest.mark.parametrize("name", ["answer", "output", "label", "target", "result", "y"])
def test_default_output_by_name(name: str) -> None:
    rows = [{name: 1, "q": "a b", "z": 2}, {name: 2, "q": "c", "z": 3}]
    spec = infer_task(rows, description="t")
    assert list(spec.outputs) == [name]
    assert list(spec.inputs) == ["q", "z"]


def test_output_name_preference_and_last_key_fallback() -> None:
    rows = [{"label": "x", "answer": 1, "q": "a"}]
    assert list(infer_task(rows, description="t").outputs) == ["answer"]
    rows2 = [{"word": "banana", "letter": "a", "count": 3}]
    spec = infer_task(rows2, description="t")
    assert list(spec.outputs) == ["count"] and list(spec.inputs) == ["word", "letter"]


def test_several_outputs_and_explicit_split() -> None:
    rows = [
        {"text": "Order 3 apples at 1.50", "qty": 3, "price": 1.5, "fruit": "apple", "_src": 1},
        {"text": "Order 2 pears at 2", "qty": 2, "price": 2, "fruit": "pear", "_src": 2},
    ]
    spec = infer_task(rows, description="extract", outputs=["qty", "price", "fruit"])
    assert _types(spec) == (
        {"text": "string"},
        {"qty": "integer", "price": "number", "fruit": "string"},
    )
    spec2 = infer_task(rows, description="extract", inputs=["text"])
    assert list(spec2.outputs) == ["qty", "price", "fruit"]  # "_src" is left out
    spec3 = infer_task(rows, description="x", inputs=["text"], outputs=["qty"])
    assert list(spec3.inputs) == ["text"] and list(spec3.outputs) == ["qty"]


def test_lists_booleans_and_enums() -> None:
    rows = [
        {"nums": [3, 1, 2], "even": False, "sentiment": "positive", "median": 2},
        {"nums": [4, 8], "even": True, "sentiment": "negative", "median": 6.0},
        {"nums": [5, 1, 9, 7, 2], "even": False, "sentiment": "positive", "median": 5},
    ]
    spec = infer_task(rows, description="t", inputs=["nums"], outputs=["even", "sentiment"])
    assert _types(spec)[1] == {"even": "boolean", "sentiment": "enum[positive,negative]"}
    assert str(spec.inputs["nums"]) == "list[integer]"
    med = infer_task(rows, description="t", inputs=["nums"], outputs=["median"])
    assert str(med.outputs["median"]) == "number"
    # inputs never become enums
    spec2 = infer_task(rows, description="t", inputs=["sentiment"], outputs=["even"])
    assert str(spec2.inputs["sentiment"]) == "string"


def test_type_overrides() -> None:
    rows = [{"q": "a", "answer": "pos"}, {"q": "b", "answer": "neg"}, {"q": "c", "answer": "pos"}]
    spec = infer_task(rows, description="t", types={"answer": "string"})
    assert str(spec.outputs["answer"]) == "string"
    spec2 = infer_task(rows, description="t", types={"answer": "enum[pos,neg,neutral]"})
    assert spec2.outputs["answer"].labels == ("pos", "neg", "neutral")
    spec3 = infer_task(rows, description="t", types={"q": FieldType(kind="string")})
    assert str(spec3.inputs["q"]) == "string"


def test_override_that_rows_do_not_fit_names_row_and_field() -> None:
    rows = [{"q": "a", "answer": "2024-01-05"}, {"q": "b", "answer": "next week"}]
    with pytest.raises(TaskDataError) as info:
        infer_task(rows, description="t", types={"answer": "date"}, where="rows.jsonl")
    err = info.value
    assert str(err).startswith("rows.jsonl:2: field 'answer': expected a date (YYYY-MM-DD)")
    assert "'next week'" in str(err)
    assert (err.path, err.line, err.field) == ("rows.jsonl", 2, "answer")
    assert isinstance(err, DataError) and isinstance(err, UsageError)


@pytest.mark.parametrize(
    ("rows", "where", "field", "needle"),
    [
        ([{"q": "a", "answer": 1}, {"q": "b"}], "rows.jsonl:2", "answer", "missing"),
        ([{"q": "a", "answer": 1}, {"q": None, "answer": 2}], "rows.jsonl:2", "q", "null"),
        (
            [{"q": "a", "answer": 1}, {"q": "b", "answer": 2}, {"q": "c", "answer": "three"}],
            "rows.jsonl:3",
            "answer",
            "expected a number like the other rows, got 'three'",
        ),
        ([{"q": "a", "answer": [[1, 2]]}], "rows.jsonl:1", "answer", "nested lists"),
        ([{"q": {"x": 1}, "answer": 1}], "rows.jsonl:1", "q", "objects are not supported"),
        (
            [{"q": "a", "answer": True}, {"q": "b", "answer": 0.5}],
            "rows.jsonl:2",
            "answer",
            "expected a boolean",
        ),
    ],
)
def test_bad_rows_name_row_and_field(
    rows: list[dict[str, Any]], where: str, field: str, needle: str
) -> None:
    with pytest.raises(TaskDataError) as info:
        infer_task(rows, description="t", where="rows.jsonl")
    assert info.value.where == where
    assert info.value.field == field
    assert needle in str(info.value)
    assert str(info.value).startswith(f"{where}: field '{field}': ")
    assert info.value.hint


def test_a_field_only_some_rows_have_is_an_error_naming_both_rows() -> None:
    rows = [{"q": "a", "answer": 1}, {"q": "b", "answer": 2, "hint": "h"}]
    with pytest.raises(TaskDataError) as info:
        infer_task(rows, description="t", where="rows.jsonl")
    assert str(info.value).splitlines()[0] == (
        "rows.jsonl:1: field 'hint': the value is missing (rows.jsonl:2 has it)"
    )
    # naming the fields leaves the optional one out
    spec = infer_task(rows, description="t", inputs=["q"], outputs=["answer"])
    assert list(spec.inputs) == ["q"]
    with pytest.raises(TaskSpecError, match=r"is in no row of rows\.jsonl"):
        infer_task(rows, description="t", outputs=["nope"], where="rows.jsonl")


def test_default_where_says_row_n() -> None:
    with pytest.raises(TaskDataError, match=r"^row 2: field 'answer'"):
        infer_task([{"q": "a", "answer": 1}, {"q": "b"}], description="t")


@pytest.mark.parametrize(
    ("kwargs", "exc", "needle"),
    [
        (
            {"outputs": ["nope"]},
            TaskSpecError,
            "field 'nope' is in no row; the rows' fields are q, answer, other",
        ),
        ({"inputs": ["nope"]}, TaskSpecError, "field 'nope' is in no row"),
        ({"types": {"answer": "datetime"}}, TaskSpecError, "field 'answer': unknown type"),
        ({"types": {"nope": "date"}}, TaskSpecError, "field 'nope' is in no row"),
        (
            {"inputs": ["q"], "outputs": ["answer"], "types": {"other": "date"}},
            TaskSpecError,
            "neither an input nor an output",
        ),
        ({"inputs": ["q"], "outputs": ["q"]}, TaskSpecError, "both an input and an output"),
    ],
)
def test_bad_options(kwargs: dict[str, Any], exc: type[Exception], needle: str) -> None:
    rows = [{"q": "a", "answer": 1, "other": "x"}]
    with pytest.raises(exc) as info:
        infer_task(rows, description="t", **kwargs)
    assert needle in str(info.value)


def test_rows_without_inputs_or_outputs_or_at_all() -> None:
    with pytest.raises(TaskDataError, match="no rows"):
        infer_task([], description="t")
    with pytest.raises(TaskDataError, match="no input field"):
        infer_task([{"answer": 1}], description="t")
    with pytest.raises(TaskDataError, match="must be a JSON object"):
        infer_task([{"q": 1, "answer": 2}, [1, 2]], description="t")  # type: ignore[list-item]


def test_field_names_must_be_identifiers() -> None:
    rows = [{"question text": "a", "answer": 1}]
    with pytest.raises(TaskSpecError, match="'question text' is not a valid name"):
        infer_task(rows, description="t")
    with pytest.raises(TaskSpecError, match="not a valid name"):
        TaskSpec(description="t", inputs={"class": "string"}, outputs={"a": "integer"})


def test_spec_needs_an_output() -> None:
    with pytest.raises(TaskSpecError, match="at least one output"):
        TaskSpec(description="t", inputs={"q": "string"}, outputs={})


def test_check_row_coerces_and_keeps_other_keys() -> None:
    spec = TaskSpec(
        description="t",
        inputs={"start": "date", "days": "integer"},
        outputs={"answer": "date", "ok": "boolean"},
    )
    row = {"start": "2024-1-5", "days": "3", "answer": dt.date(2024, 1, 8), "ok": "yes", "id": 7}
    assert spec.check_row(row, "rows.jsonl:1") == {
        "start": "2024-01-05",
        "days": 3,
        "answer": "2024-01-08",
        "ok": True,
        "id": 7,
    }
    assert spec.check_row({"start": "2024-01-05", "days": 1}, "x", outputs=False)["days"] == 1
    with pytest.raises(TaskDataError) as info:
        spec.check_row(
            {"start": "tomorrow", "days": 1, "answer": "2024-01-01", "ok": True}, "rows.jsonl:3"
        )
    assert str(info.value).splitlines()[0] == (
        "rows.jsonl:3: field 'start': expected a date (YYYY-MM-DD), got 'tomorrow'"
    )
    with pytest.raises(TaskDataError, match=r"rows\.jsonl:4: field 'ok': output is missing"):
        spec.check_row({"start": "2024-01-05", "days": 1, "answer": "2024-01-01"}, "rows.jsonl:4")
    with pytest.raises(TaskDataError, match="must be a JSON object"):
        spec.check_row(["x"], "rows.jsonl:5")  # type: ignore[arg-type]


def test_metadata_round_trip_is_json_and_keeps_order() -> None:
    spec = TaskSpec(
        description="Sort and label",
        inputs={"zeta": "list[number]", "alpha": "string"},
        outputs={
            "sorted": "list[number]",
            "tags": "set[string]",
            "kind": 'enum["a, b","c"]',
            "total": "number(tol=0.01)",
        },
    )
    data = json.loads(json.dumps(spec.to_metadata()))
    back = TaskSpec.from_metadata(data)
    assert back == spec
    assert list(back.inputs) == ["zeta", "alpha"]
    assert list(back.outputs) == ["sorted", "tags", "kind", "total"]
    plan = Plan(name="p", metadata={"task": spec.to_metadata()})
    assert TaskSpec.from_metadata(plan.metadata["task"]) == spec


def test_declared_outputs_of_a_plan() -> None:
    spec = TaskSpec(description="t", inputs={"q": "string"}, outputs={"tags": "set[string]"})
    plan = Plan(name="p", metadata={"task": spec.to_metadata()})
    assert declared_outputs(plan.metadata) == {"tags": FieldType.parse("set[string]")}
    assert declared_outputs({}) == {}
    with pytest.raises(TaskSpecError):
        declared_outputs({"task": {"outputs": {"a": "wat"}}})


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ("x", "must be a mapping"),
        ({"version": 99, "outputs": {"a": "integer"}}, "version 99"),
        ({"outputs": ["a"]}, "'outputs' must map"),
        ({"outputs": {"a": "wat"}}, "field 'a': unknown type"),
        ({"outputs": {}}, "at least one output"),
    ],
)
def test_from_metadata_errors(data: Any, needle: str) -> None:
    with pytest.raises(TaskSpecError) as info:
        TaskSpec.from_metadata(data)
    assert needle in str(info.value)


def test_plan_inputs_build_a_valid_plan_declaration() -> None:
    spec = TaskSpec(
        description="t",
        inputs={
            "d": "date",
            "n": "integer",
            "xs": "set[number]",
            "ok": "boolean",
            "c": "enum[a,b]",
        },
        outputs={"a": "string"},
    )
    declared = spec.plan_inputs()
    assert declared == {
        "d": "string",
        "n": "integer",
        "xs": "array",
        "ok": "boolean",
        "c": "string",
    }
    assert Plan.model_validate({"name": "p", "inputs": declared}).inputs == declared


def test_output_schema() -> None:
    spec = TaskSpec(
        description="t", inputs={"q": "string"}, outputs={"due": "date", "n": "integer"}
    )
    schema = spec.output_schema()
    assert schema["type"] == "object"
    assert schema["required"] == ["due", "n"]
    assert schema["properties"]["n"] == {"type": "integer"}
    assert schema["properties"]["due"]["pattern"] == "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


@pytest.mark.parametrize(
    ("text", "name", "ftype"),
    [
        ("answer", "answer", None),
        ("answer:date", "answer", "date"),
        (" due : list[date] ", "due", "list[date]"),
        ("label:enum[a,b]", "label", "enum[a,b]"),
    ],
)
def test_parse_field_option(text: str, name: str, ftype: str | None) -> None:
    got_name, got_type = parse_field_option(text)
    assert got_name == name
    assert (str(got_type) if got_type is not None else None) == ftype


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (":date", "has no name"),
        ("answer:", "no type"),
        ("answer:dat", "unknown type 'dat'"),
        ("my field:date", "not a valid name"),
    ],
)
def test_parse_field_option_errors(text: str, needle: str) -> None:
    with pytest.raises(TaskSpecError) as info:
        parse_field_option(text)
    assert needle in str(info.value)


def test_describe_lists_fields() -> None:
    spec = infer_task(DATE_ROWS, description="t")
    assert spec.describe().splitlines() == [
        "in   start: date (a date (YYYY-MM-DD))",
        "in   days: integer (an integer)",
        "out  answer: date (a date (YYYY-MM-DD))",
    ]


REALISTIC = {
    "letters": (
        '{"word": "banana", "letter": "a", "count": 3}\n'
        '{"word": "Mississippi", "letter": "s", "count": 4}\n',
        {"word": "string", "letter": "string"},
        {"count": "integer"},
    ),
    "order_total": (
        '{"order": "3 pens at $1.20, 10% off", "subtotal": "3.60", "total": 3.24}\n'
        '{"order": "2 mugs at $4, no discount", "subtotal": "8.00", "total": 8}\n',
        {"order": "string", "subtotal": "number"},
        {"total": "number"},
    ),
    "median": (
        '{"numbers": [5, 1, 9], "answer": 5}\n{"numbers": [2.5, 4, 1, 8], "answer": 3.25}\n',
        {"numbers": "list[number]"},
        {"answer": "number"},
    ),
    "due_date": (
        '{"id": "a1", "question": "Start 2024-01-30, add 3 days", "answer": "2024-02-02"}\n'
        '{"id": "a2", "question": "From March 1st 2023 wait 10 days", "answer": "2023-03-11"}\n',
        {"question": "string"},
        {"answer": "date"},
    ),
    "sentiment": (
        '{"review": "Loved it", "label": "positive", "stars": "5"}\n'
        '{"review": "Meh", "label": "neutral", "stars": "3"}\n'
        '{"review": "Great value", "label": "positive", "stars": "4"}\n',
        {"review": "string", "stars": "integer"},
        {"label": "enum[positive,neutral]"},
    ),
    "flags": (
        '{"text": "Is 7 prime?", "answer": true, "_source": "gen"}\n'
        '{"text": "Is 8 prime?", "answer": false, "_source": "gen"}\n',
        {"text": "string"},
        {"answer": "boolean"},
    ),
}


@pytest.mark.parametrize("family", sorted(REALISTIC))
def test_inference_on_realistic_jsonl(family: str) -> None:
    text, inputs, outputs = REALISTIC[family]
    rows = [json.loads(line) for line in text.splitlines()]
    spec = infer_task(rows, description=family, where=f"{family}.jsonl")
    assert _types(spec) == (inputs, outputs)
    for i, row in enumerate(rows):
        checked = spec.check_row(row, f"{family}.jsonl:{i + 1}")
        assert default_metric(spec)(checked, checked).value == 1.0
        assert default_metric(spec)(row, {k: row[k] for k in spec.outputs}).value == 1.0
