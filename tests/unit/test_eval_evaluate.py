"""evaluate_plan: accuracy, Wilson interval, per-item results, tokens, latency, failures."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from _bench_fakes import SGDE_PLAN, student_reply

from sgde.errors import DataError, UsageError
from sgde.evaluation.evaluate import (
    EvalResult,
    ItemResult,
    evaluate_plan,
    evaluate_plan_async,
    summarise,
)
from sgde.evaluation.metrics import wilson_interval
from sgde.plan.model import LlmNode, Plan
from sgde.runtime.backend import ChatRequest
from sgde.testing import FunctionBackend

DIRECT_PLAN = Plan(
    name="direct",
    inputs={"question": "string"},
    outputs={"answer": "solve.answer"},
    nodes=[
        LlmNode(
            id="solve",
            inputs={"question": "input.question"},
            prompt="{{ question }}",
            output_schema={"type": "object", "properties": {"answer": {"type": "number"}}},
        )
    ],
)


def _rows(n: int) -> list[dict[str, Any]]:
    return [
        {"id": f"q{i}", "question": f"What is {10 + i} plus {100 * i}?", "answer": 10 + 101 * i}
        for i in range(n)
    ]


def _student() -> FunctionBackend:
    return FunctionBackend(student_reply, name="fake:student")


def test_accuracy_interval_and_items() -> None:
    rows = _rows(10)
    result = evaluate_plan(DIRECT_PLAN, rows, {"student": _student()}, sandbox=None)
    assert result.n == 10
    assert result.correctness == {f"q{i}": (10 + i) % 2 == 0 for i in range(10)}
    assert result.n_correct == 5 and result.accuracy == 0.5
    assert (result.ci_low, result.ci_high) == pytest.approx(wilson_interval(5, 10))
    assert all(item.tokens > 0 for item in result.items)
    assert result.tokens_mean == pytest.approx(sum(i.tokens for i in result.items) / 10)
    assert 0.0 <= result.latency_median_s <= result.latency_p95_s
    assert result.plan_hash and result.plan_hash.startswith("sha256:")


def test_failures_keep_their_traces_and_predictions() -> None:
    result = evaluate_plan(DIRECT_PLAN, _rows(4), {"student": _student()}, sandbox=None)
    failures = result.failures
    assert [f.id for f in failures] == ["q1", "q3"]
    assert failures[0].prediction == 10 + 1 + 100 + 1 and failures[0].gold == 111
    assert failures[0].trace is not None and failures[0].trace["plan_name"] == "direct"
    assert all(item.trace is None for item in result.items if item.correct)
    as_dict = result.to_dict(traces="none")
    assert all("trace" not in item for item in as_dict["items"])
    assert EvalResult.from_dict(result.to_dict()).accuracy == result.accuracy


def test_failed_runs_are_failures_not_exceptions() -> None:
    def broken(request: ChatRequest) -> str:
        return "no json here"

    result = evaluate_plan(
        DIRECT_PLAN, _rows(3), {"student": FunctionBackend(broken)}, sandbox=None
    )
    assert result.accuracy == 0.0
    assert all(not item.ok and item.error for item in result.items)


def test_perfect_plan_scores_everything() -> None:
    seen: list[str] = []
    result = evaluate_plan(
        SGDE_PLAN,
        _rows(6),
        {"student": _student()},
        sandbox=None,
        concurrency=3,
        on_item=lambda item: seen.append(item.id),
    )
    assert result.accuracy == 1.0 and result.ci_high == pytest.approx(1.0)
    assert sorted(seen) == [f"q{i}" for i in range(6)]
    assert [i.id for i in result.items] == [f"q{i}" for i in range(6)]


def test_rows_without_inputs_or_gold_are_rejected() -> None:
    with pytest.raises(DataError, match="question"):
        evaluate_plan(DIRECT_PLAN, [{"answer": 1}], {"student": _student()}, sandbox=None)
    with pytest.raises(DataError, match="gold"):
        evaluate_plan(DIRECT_PLAN, [{"question": "x"}], {"student": _student()}, sandbox=None)


async def test_sync_wrapper_refuses_a_running_loop() -> None:
    with pytest.raises(UsageError, match="evaluate_plan_async"):
        evaluate_plan(DIRECT_PLAN, _rows(1), {"student": _student()}, sandbox=None)
    result = await evaluate_plan_async(DIRECT_PLAN, _rows(2), {"student": _student()}, sandbox=None)
    assert result.n == 2


def test_latency_percentiles_and_empty_summary() -> None:
    items = [ItemResult(id=str(i), correct=True, latency_s=float(i)) for i in (4, 1, 3, 2)]
    four = summarise(items, name="four")
    assert four.latency_median_s == 2.5
    assert four.latency_p95_s == pytest.approx(3.85)
    empty = summarise([], name="nothing")
    assert empty.accuracy == 0.0 and empty.n == 0
    assert (empty.latency_median_s, empty.latency_p95_s, empty.tokens_mean) == (0.0, 0.0, 0.0)
    assert (empty.ci_low, empty.ci_high) == (0.0, 1.0)
    one = summarise([ItemResult(id="a", correct=True, latency_s=2.0)], name="one")
    assert one.latency_p95_s == 2.0


def test_concurrency_must_be_positive() -> None:
    with pytest.raises(UsageError, match="concurrency"):
        asyncio.run(
            evaluate_plan_async(
                DIRECT_PLAN, _rows(1), {"student": _student()}, sandbox=None, concurrency=0
            )
        )
