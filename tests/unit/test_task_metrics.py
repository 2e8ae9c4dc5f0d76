"""Metrics: scores and feedback, the one gold matcher, user metrics and their failures."""

from __future__ import annotations

import datetime as dt
import math
import sys
from pathlib import Path
from typing import Any

import pytest

from sgde.errors import TaskMetricError, TaskSpecError
from sgde.task import (
    FieldType,
    Score,
    TaskSpec,
    answer_correct,
    default_metric,
    load_metric,
    safe_score,
    to_score,
)

SPEC = TaskSpec(
    description="t",
    inputs={"text": "string"},
    outputs={"due": "date", "count": "integer", "tags": "set[string]"},
)
ROW = {"text": "...", "due": "2024-01-05", "count": 3, "tags": ["a", "b"]}


def test_default_metric_scores_each_field_with_feedback() -> None:
    metric = default_metric(SPEC)
    right = metric(ROW, {"due": "January 5, 2024", "count": "3", "tags": ["B", "a"]})
    assert right == Score(1.0, "", {"due": True, "count": True, "tags": True})
    partial = metric(ROW, {"due": "2024-01-06", "count": 3, "tags": ["a"]})
    assert partial.value == pytest.approx(1 / 3)
    assert partial.fields == {"due": False, "count": True, "tags": False}
    assert partial.feedback == (
        "field 'due': got '2024-01-06', expected '2024-01-05'; "
        "field 'tags': got ['a'], expected ['a', 'b']"
    )
    missing = metric(ROW, {})
    assert missing.value == 0.0 and "field 'count': got no value" in missing.feedback


def test_default_metric_skips_fields_without_gold_and_is_a_float() -> None:
    metric = default_metric(SPEC)
    score = metric({"due": "2024-01-05"}, {"due": "2024-01-05", "count": 9})
    assert score.fields == {"due": True}
    assert float(score) == 1.0
    assert metric({}, {"due": "x"}).value == 0.0


def test_default_metric_from_names_infers_types_from_gold() -> None:
    metric = default_metric(["answer"])
    assert metric({"answer": 26806625}, {"answer": 26806603}).value == 0.0
    assert metric({"answer": "2024-01-05"}, {"answer": "Jan 5, 2024"}).value == 1.0
    assert metric({"answer": "Paris"}, {"answer": " paris."}).value == 1.0


@pytest.mark.parametrize(
    ("pred", "gold", "ok"),
    [
        (18, 18, True),
        ("1,234", 1234, True),
        ("$5", 5.0, True),
        (26806603, 26806625, False),  # a relative 1e-6 tolerance would accept this
        (26806625.4, 26806625, False),
        (12.4, 12, False),
        (0.67, "0.67", True),
        (None, 18, False),
        ("eighteen", 18, False),
        (" Paris ", "paris", True),
        ("Jan 5, 2024", "2024-01-05", True),
        ("2024-01-06", dt.date(2024, 1, 5), False),
        ("yes", True, True),
        ([1, 2], [1, 2], True),
        ([2, 1], [1, 2], False),
        ({"a": 1}, {"a": 1.0}, True),  # objects: by vote key
        ({"a": 1}, {"a": 2}, False),
        ([[1, 2]], [[1, 2]], True),
    ],
)
def test_answer_correct_infers_from_gold(pred: Any, gold: Any, ok: bool) -> None:
    assert answer_correct(pred, gold) is ok


def test_answer_correct_with_a_type() -> None:
    assert answer_correct([2, 1], [1, 2], FieldType.parse("set[integer]"))
    assert answer_correct("POS", "pos", FieldType.parse("enum[pos,neg]"))
    assert not answer_correct("5", 5.4, FieldType.parse("integer"))
    assert answer_correct("10.3", 10, FieldType.parse("number(tol=0.5)"))


def test_the_three_call_sites_agree() -> None:
    from sgde.evaluation.metrics import answer_correct as eval_correct
    from sgde.optimize.compiler import default_metric as compiler_metric
    from sgde.optimize.supervision import _match

    cases = [
        (26806603, 26806625),
        (26806625, "26,806,625"),
        (" Paris. ", "paris"),
        ("Jan 5, 2024", "2024-01-05"),
        ("yes", True),
        ([3, 1], [1, 3]),
        (3.3333, "3.33"),
        (None, 1),
    ]
    for pred, gold in cases:
        expected = answer_correct(pred, gold)
        assert eval_correct(pred, gold) is expected, (pred, gold)
        assert _match(pred, gold) is expected, (pred, gold)
        assert compiler_metric(["a"])({"a": gold}, {"a": pred}) == float(expected), (pred, gold)
    assert eval_correct({"answer": 18}, 18)  # a one-field prediction is unwrapped


# -- to_score ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (True, Score(1.0)),
        (False, Score(0.0)),
        (1, Score(1.0)),
        (0.25, Score(0.25)),
        (1.0 + 1e-12, Score(1.0)),  # float rounding is clamped
        ((0.5, "field 'x' is off by one"), Score(0.5, "field 'x' is off by one")),
        ((True, "ok"), Score(1.0, "ok")),
        (Score(0.5, "fb", {"a": True}), Score(0.5, "fb", {"a": True})),
    ],
)
def test_to_score_accepts(raw: Any, expected: Score) -> None:
    assert to_score(raw, where="metric 'm' on row 1") == expected


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (float("nan"), "cannot be NaN"),
        (1.5, "must lie in [0, 1]"),
        (-0.1, "must lie in [0, 1]"),
        (None, "returned None"),
        ("1.0", "expected a float"),
        ((0.5, 3), "(score, feedback text)"),
        ((0.5, "a", "b"), "(score, feedback text)"),
        (Score(2.0), "must lie in [0, 1]"),
        (Score(0.5, feedback=3), "feedback must be text"),  # type: ignore[arg-type]
        (Score(True, feedback=3), "feedback must be text"),  # type: ignore[arg-type]
    ],
)
def test_to_score_rejects_naming_the_metric_and_value(raw: Any, needle: str) -> None:
    with pytest.raises(TaskMetricError) as info:
        to_score(raw, where="metric 'm:f' on rows.jsonl:3")
    text = str(info.value)
    assert text.startswith("metric 'm:f' on rows.jsonl:3: returned ")
    assert needle in text
    assert "must return a float in [0, 1]" in text  # the hint says what to return


# -- user metrics -------------------------------------------------------------------------

METRIC_FILE = """
import math
from sgde.task import Score

def exact(row, outputs):
    return outputs.get("answer") == row["answer"]

def with_feedback(row, outputs):
    return (0.5, "close: check the units")

def score_obj(row, outputs):
    return Score(0.75, "partial", {"answer": False})

def raises(row, outputs):
    raise ValueError("bad row " + str(row["answer"]))

def nan(row, outputs):
    return math.nan

def too_big(row, outputs):
    return 1.5

def wrong_arity(row):
    return 1.0

class Metrics:
    @staticmethod
    def loose(row, outputs):
        return 1.0

NOT_CALLABLE = 3
"""


@pytest.fixture
def metric_file(tmp_path: Path) -> Path:
    path = tmp_path / "my_metrics.py"
    path.write_text(METRIC_FILE, encoding="utf-8")
    return path


def test_load_metric_from_a_file(metric_file: Path) -> None:
    metric = load_metric(f"{metric_file}:exact")
    assert metric.ref == f"{metric_file}:exact"
    assert safe_score(metric, {"answer": 3}, {"answer": 3}, where="row 1") == Score(1.0)
    assert safe_score(metric, {"answer": 3}, {"answer": 4}, where="row 1") == Score(0.0)
    fb = safe_score(load_metric(f"{metric_file}:with_feedback"), {}, {}, where="row 1")
    assert fb == Score(0.5, "close: check the units")
    obj = safe_score(load_metric(f"{metric_file}:score_obj"), {}, {}, where="row 1")
    assert obj == Score(0.75, "partial", {"answer": False})
    assert load_metric(f"{metric_file}:Metrics.loose")({}, {}) == 1.0


def test_load_metric_from_a_module(metric_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(metric_file.parent))
    monkeypatch.delitem(sys.modules, "my_metrics", raising=False)
    metric = load_metric("my_metrics:with_feedback")
    assert metric.ref == "my_metrics:with_feedback"
    assert safe_score(metric, {}, {}, where="row 1").feedback == "close: check the units"
    builtin = load_metric("operator:eq")  # a C function without a Python signature
    assert safe_score(builtin, {"a": 1}, {"a": 1}, where="row 1").value == 1.0


@pytest.mark.parametrize(
    ("fn", "needle"),
    [
        ("raises", "metric '{ref}' raised ValueError on rows.jsonl:3: bad row 7"),
        ("nan", "metric '{ref}' on rows.jsonl:3: returned nan: a score cannot be NaN"),
        ("too_big", "metric '{ref}' on rows.jsonl:3: returned 1.5: a score must lie in [0, 1]"),
    ],
)
def test_failing_user_metrics(metric_file: Path, fn: str, needle: str) -> None:
    ref = f"{metric_file}:{fn}"
    with pytest.raises(TaskMetricError) as info:
        safe_score(load_metric(ref), {"answer": 7}, {}, where="rows.jsonl:3")
    assert str(info.value).splitlines()[0] == needle.format(ref=ref)
    assert info.value.hint


def test_metric_raising_keeps_cause_and_names() -> None:
    def broken(row: Any, outputs: Any) -> float:
        return 1 / 0

    with pytest.raises(TaskMetricError) as info:
        safe_score(broken, {}, {}, where="row 2")
    assert "raised ZeroDivisionError on row 2" in str(info.value)
    assert "broken" in str(info.value)
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert (info.value.where, info.value.metric) == ("row 2", info.value.metric)


@pytest.mark.parametrize(
    ("ref", "needle"),
    [
        ("no_colon_here", "is not module:function"),
        ("{dir}/missing.py:f", "not found"),
        ("{file}:nope", "has no attribute 'nope'"),
        ("{file}:NOT_CALLABLE", "is a int, not a function"),
        ("{file}:wrong_arity", "cannot be called as wrong_arity(row, outputs)"),
        ("sgde_no_such_module_xyz:f", "no module named 'sgde_no_such_module_xyz'"),
        ("{broken}:f", "raised SyntaxError"),
        (":f", "is not module:function"),
        ("{file}:", "is not module:function"),
    ],
)
def test_load_metric_errors(metric_file: Path, ref: str, needle: str) -> None:
    broken = metric_file.parent / "broken.py"
    broken.write_text("def f(row, outputs) return 1\n", encoding="utf-8")
    text = ref.format(dir=metric_file.parent, file=metric_file, broken=broken)
    with pytest.raises(TaskSpecError) as info:
        load_metric(text)
    assert needle in str(info.value)
    assert f"metric '{text}'" in str(info.value)


def test_has_no_attribute_lists_functions(metric_file: Path) -> None:
    with pytest.raises(TaskSpecError) as info:
        load_metric(f"{metric_file}:exakt")
    assert "exact" in (info.value.hint or "")


class _NumpyLikeBool:
    """Stands for ``numpy.bool_``: not a ``bool``, not a ``numbers.Real``."""

    class dtype:  # mirrors numpy's attribute
        kind = "b"

    def __init__(self, value: bool) -> None:
        self.value = value

    def __bool__(self) -> bool:
        return self.value


def test_to_score_accepts_numpy_style_booleans() -> None:
    assert to_score(_NumpyLikeBool(True), where="m") == Score(1.0)
    assert to_score((_NumpyLikeBool(False), "no"), where="m") == Score(0.0, "no")


def test_score_is_a_float_like() -> None:
    assert float(Score(0.5)) == 0.5
    assert math.isclose(sum(map(float, [Score(0.5), Score(0.25)])), 0.75)


def test_feedback_shortens_long_values() -> None:
    score = default_metric(["a"])({"a": "y"}, {"a": "x" * 500})
    assert len(score.feedback) < 200
    assert score.feedback.startswith("field 'a': got 'xxx")
    assert score.feedback.endswith("...', expected 'y'") or score.feedback.endswith(
        "..., expected 'y'"
    )


def test_evaluation_scores_a_compiled_plan_by_its_declared_types() -> None:
    import json

    from sgde.evaluation.evaluate import evaluate_plan
    from sgde.plan.model import LlmNode, Plan
    from sgde.runtime.backend import ChatRequest
    from sgde.testing import FunctionBackend

    spec = TaskSpec(description="tags", inputs={"text": "string"}, outputs={"tags": "set[string]"})
    untyped = Plan(
        name="tags",
        inputs={"text": "string"},
        outputs={"tags": "tag.tags"},
        nodes=[
            LlmNode(
                id="tag",
                inputs={"text": "input.text"},
                prompt="{{ text }}",
                output_schema={"type": "object", "properties": {"tags": {"type": "array"}}},
            )
        ],
    )
    typed = untyped.model_copy(update={"metadata": {"task": spec.to_metadata()}})

    def reply(request: ChatRequest) -> str:
        return json.dumps({"tags": ["B", "a"]})

    rows = [{"id": "r1", "text": "x", "tags": ["a", "b"]}]
    backend = {"student": FunctionBackend(reply)}
    assert evaluate_plan(typed, rows, backend, sandbox=None).accuracy == 1.0
    assert evaluate_plan(untyped, rows, backend, sandbox=None).accuracy == 0.0  # ordered list
