"""The real peers end to end: each builds (or reuses) its venv, optimises with the real local
models behind llama.cpp servers, and answers 3 items.

SmolLM2-135M is the student; for speed the teacher is Qwen2.5-Coder-0.5B. A peer that cannot
work with models this small must still come back as a *result* (a failed optimisation or
per-row errors with the failure mode), never hang or crash the run; and the token budget
must hold.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from sgde.evaluation.peers import PeerMethod
from sgde.runtime.backend import ChatRequest
from sgde.testing import FunctionBackend

pytestmark = pytest.mark.slow

ROWS = [
    {"id": "a", "question": "Ann has 3 apples and buys 4 more. How many apples?", "answer": 7},
    {"id": "b", "question": "A box holds 6 eggs. How many eggs are in 2 boxes?", "answer": 12},
    {"id": "c", "question": "Tom had 10 dollars and spent 3. How many are left?", "answer": 7},
]
TEST = [
    {"id": "d", "question": "Sam has 5 pens and gets 2 more. How many pens?", "answer": 7},
    {"id": "e", "question": "A bag has 4 apples. How many apples are in 3 bags?", "answer": 12},
    {"id": "f", "question": "Lia had 9 cards and gave away 4. How many are left?", "answer": 5},
]
BUDGET = 6000
SETTINGS: dict[str, dict[str, Any]] = {
    "dspy-gepa": {"max_metric_calls": 6, "reflection_minibatch_size": 1},
    "dspy-mipro": {"num_candidates": 2, "num_trials": 2, "max_bootstrapped_demos": 1},
    "textgrad": {"steps": 1, "batch_size": 2},
}


def _unused(request: ChatRequest) -> str:
    raise AssertionError("peers call their own servers, never sgde's backends")


@pytest.mark.parametrize("peer", ["dspy-gepa", "dspy-mipro", "textgrad"])
async def test_peer_runs_end_to_end_on_three_items(peer: str) -> None:
    started = time.perf_counter()
    method = PeerMethod(
        peer,
        student_model="smollm2-135m",
        teacher_model="qwen2.5-coder-0.5b",
        student_max_tokens=128,
        teacher_max_tokens=256,
        **SETTINGS[peer],
    )
    backend = FunctionBackend(_unused)
    prepared = await method.prepare(
        ROWS, teacher=backend, student=backend, sandbox=None, budget=BUDGET, seed=0
    )
    session = prepared.state.session
    try:
        report = prepared.report
        assert report["status"] in ("compiled", "failed"), report
        if report["status"] == "failed":
            assert report["failure"], report  # the failure mode is shown
        meter = report["meter"]
        compile_usage = meter["usage"].get("compile", {})
        assert (
            compile_usage.get("student", {}).get("calls", 0)
            + compile_usage.get("teacher", {}).get("calls", 0)
            > 0
            or report["status"] == "failed"
        )
        # The budget holds (the last admitted call may overshoot by one call's tokens).
        assert report["budget"]["spent"] <= BUDGET + 2 * 256 + 2048
        predictions = [
            await method.predict(prepared, row, student=backend, sandbox=None) for row in TEST
        ]
        for prediction in predictions:
            assert prediction.answer is not None or prediction.error, prediction
        if report["status"] == "compiled":  # new questions: no peer cache can answer them
            assert sum(p.usage.calls for p in predictions) >= 1
    finally:
        session.close()
    assert session.meter.phase == "predict"  # the teacher server was stopped after optimising
    print(
        f"{peer}: {report['status']} in {time.perf_counter() - started:.0f} s; notes "
        f"{report['notes']}; answers {[p.answer for p in predictions]}; "
        f"errors {[p.error for p in predictions]}; budget {report['budget']}"
    )
