"""Prompt optimisers (APE, OPRO, textual gradients, bootstrap few-shot) with fake models.

The fake student answers correctly only when its prompt contains a "key" phrase, so the
tests can check that each optimiser finds and keeps the best-scoring prompt.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import pytest
from _baselines_fakes import ROWS, FakeSandbox

from sgde.errors import BudgetExceeded, UsageError
from sgde.evaluation.baselines import get_method
from sgde.evaluation.optimizers import (
    BudgetedBackend,
    OptimizerMethod,
    TokenMeter,
)
from sgde.evaluation.peers import PEERS_MISSING
from sgde.evaluation.peers import method as peer_method
from sgde.runtime.backend import ChatRequest, ChatResponse, Message, Usage
from sgde.testing import FunctionBackend

KEY = "carry every digit"


def _asked(request: ChatRequest) -> dict[str, Any]:
    asked = request.messages[-1].content.rsplit("Question:", 1)[-1]
    for row in ROWS:
        if row["question"] in asked:
            return row
    raise AssertionError(f"unknown question: {asked!r}")


def keyed_student(request: ChatRequest) -> str:
    """Right iff the system prompt (instruction) contains KEY; else off by one."""
    row = _asked(request)
    system = request.messages[0].content if request.messages[0].role == "system" else ""
    answer = row["answer"] if KEY in system else row["answer"] + 1
    return f"Let me think. The answer is {answer}."


def _prompt(request: ChatRequest) -> str:
    return request.messages[-1].content


async def _prepare(method: OptimizerMethod, teacher: Any, student: Any, budget: int | None = None):
    return await method.prepare(
        ROWS, teacher=teacher, student=student, sandbox=FakeSandbox(), budget=budget, seed=0
    )


def _instruction(prepared: Any) -> str:
    solve = prepared.plan.node("solve")
    return str(solve.system)


async def test_ape_keeps_best_scoring_instruction() -> None:
    proposals = iter(["Be brief.", f"Work step by step and {KEY}.", "Guess.", "Think."] * 5)
    teacher = FunctionBackend(lambda req: {"instruction": next(proposals)})
    student = FunctionBackend(keyed_student)
    method = get_method("ape", num_candidates=4, resample_rounds=1)
    prepared = await _prepare(method, teacher, student)
    assert KEY in _instruction(prepared)
    report = prepared.report
    assert report["best"]["score"] == 1.0
    assert report["candidates"][0]["origin"] == "zero-shot CoT"
    assert report["candidates"][0]["score"] == 0.0
    # stopped at the perfect score: the remaining proposals were not requested
    assert report["teacher_calls"] == 2
    assert prepared.usage["teacher"].total_tokens > 0
    assert prepared.usage["student"].total_tokens > 0
    assert "The student solved these problems" not in _prompt(student.requests[0])
    assert ROWS[0]["question"] in _prompt(teacher.requests[0])
    # the optimised plan is evaluated like any plan
    pred = await method.predict(prepared, ROWS[1], student=student, sandbox=FakeSandbox(), seed=0)
    assert pred.answer == 3000


async def test_ape_ties_keep_the_earlier_candidate() -> None:
    teacher = FunctionBackend(lambda req: {"instruction": "Another wording."})
    student = FunctionBackend(lambda req: "The answer is 0.")
    prepared = await _prepare(
        get_method("ape", num_candidates=2, resample_rounds=0), teacher, student
    )
    assert prepared.report["best"]["origin"] == "zero-shot CoT"
    assert "Think step by step" in _instruction(prepared)


async def test_opro_shows_scored_history_and_improves() -> None:
    def teacher_fn(req: ChatRequest) -> dict[str, str]:
        prompt = _prompt(req)
        assert "Accuracy: 0%" in prompt  # the scored history is shown
        n = prompt.count("Instruction:")
        return {"instruction": f"Attempt {n}." if n < 3 else f"Attempt {n}: {KEY}."}

    teacher = FunctionBackend(teacher_fn)
    student = FunctionBackend(keyed_student)
    prepared = await _prepare(get_method("opro", steps=5, per_step=1), teacher, student)
    assert KEY in _instruction(prepared)
    assert prepared.report["best"]["score"] == 1.0
    assert prepared.report["steps"] == 3  # history sizes 1, 2, 3 -> the key on step 3


async def test_textgrad_critiques_failures_and_applies_edit() -> None:
    def teacher_fn(req: ChatRequest) -> dict[str, str]:
        prompt = _prompt(req)
        if "Explain briefly" in prompt:
            assert "Model's reply: Let me think. The answer is 1234570." in prompt
            assert "Correct answer: 1234569" in prompt
            return {"feedback": f"The instruction should say: {KEY}."}
        assert "Feedback on the instruction" in prompt
        return {"instruction": f"Solve it and {KEY}."}

    teacher = FunctionBackend(teacher_fn)
    student = FunctionBackend(keyed_student)
    prepared = await _prepare(get_method("textgrad-style", steps=3), teacher, student)
    assert KEY in _instruction(prepared)
    gradients = prepared.report["gradients"]
    assert gradients[0]["feedback"].endswith(f"{KEY}.")
    assert gradients[0]["children"][0]["score"] == 1.0
    assert prepared.report["steps"] == 1  # no failures left after step 1


async def test_bootstrap_keeps_verified_rationales_and_leaves_own_demo_out() -> None:
    def teacher_fn(req: ChatRequest) -> str:
        row = _asked(req)
        if row["id"] == "r3":
            return "I think the answer is 99."  # wrong: must not become a demo
        return f"Worked: {row['question'][:10]}... The answer is {row['answer']}."

    def student_fn(req: ChatRequest) -> str:
        prompt = _prompt(req)
        row = _asked(req)
        own = prompt.rsplit("Question:", 1)[0]
        assert row["question"] not in own  # leave-one-out while scoring
        right = "Worked:" in own or row["id"] == "r3"
        return f"The answer is {row['answer'] if right else 0}."

    teacher = FunctionBackend(teacher_fn)
    student = FunctionBackend(student_fn)
    method = get_method("bootstrap-fewshot", max_rounds=2, num_candidate_sets=2)
    prepared = await _prepare(method, teacher, student)
    attempts = prepared.report["bootstrap_attempts"]
    assert [a["used"] for a in attempts if a["row_id"] == "r3"] == [False, False]
    assert prepared.report["bootstrapped_demos"] == 2
    best = prepared.report["best"]
    assert best["score"] == 1.0 and best["origin"] == "bootstrapped"
    prompt = prepared.plan.node("solve").prompt
    assert "Worked:" in prompt and "I think the answer is 99" not in prompt


@pytest.mark.parametrize("name", ["ape", "opro", "textgrad-style", "bootstrap-fewshot"])
@pytest.mark.parametrize("budget", [0, 600, 1200])
async def test_optimisers_never_pass_the_budget(name: str, budget: int) -> None:
    counter = itertools.count()
    teacher = FunctionBackend(
        lambda req: (
            {"instruction": f"Be careful {next(counter)}.", "feedback": "Say more."}
            if "JSON" in _prompt(req)
            else f"The answer is {_asked(req)['answer']}."
        )
    )
    student = FunctionBackend(keyed_student)
    prepared = await _prepare(get_method(name), teacher, student, budget=budget)
    spent = sum(u.total_tokens for u in prepared.usage.values())
    assert spent <= budget
    assert prepared.report["tokens_spent"] == spent
    assert prepared.report["stopped_by"].startswith("budget")
    assert prepared.plan is not None  # best so far, or the starting prompt
    assert prepared.report["budget"] == budget
    unlimited = await _prepare(get_method(name), teacher, student, budget=None)
    assert unlimited.report["stopped_by"] == "finished"
    assert sum(u.total_tokens for u in unlimited.usage.values()) > budget


async def test_optimiser_needs_a_teacher() -> None:
    with pytest.raises(UsageError, match="needs a teacher"):
        await get_method("ape").prepare(
            ROWS,
            teacher=None,
            student=FunctionBackend(keyed_student),
            sandbox=FakeSandbox(),
            budget=None,
            seed=0,
        )


async def test_token_meter_and_metered_backend() -> None:
    meter = TokenMeter(100)
    meter.reserve("teacher", 60)
    with pytest.raises(BudgetExceeded):
        meter.reserve("teacher", 50)  # 60 reserved + 50 > 100
    meter.commit("teacher", 60, Usage(10, 5, 1))
    assert meter.spent == 15 and meter.reserved == 0 and meter.refused == 1

    class Silent:
        name = "silent:test"
        capabilities = FunctionBackend(lambda r: "").capabilities

        async def chat(self, request: ChatRequest) -> ChatResponse:
            return ChatResponse(text="abcdef" * 10)  # reports no usage

        async def aclose(self) -> None:
            return None

    unlimited = TokenMeter(None)
    backend = BudgetedBackend(Silent(), unlimited, "student")
    await backend.chat(ChatRequest(messages=(Message("user", "x" * 30),), max_tokens=8))
    assert unlimited.usage["student"].completion_tokens == 20  # 60 chars / 3, estimated
    assert unlimited.usage["student"].prompt_tokens > 0


def test_prepared_report_is_json_ready() -> None:
    async def go() -> Any:
        teacher = FunctionBackend(lambda req: {"instruction": "x"})
        return await _prepare(
            get_method("ape", num_candidates=1, resample_rounds=0),
            teacher,
            FunctionBackend(keyed_student),
        )

    import asyncio

    prepared = asyncio.run(go())
    data = json.loads(json.dumps(prepared.to_dict()))
    assert data["method"] == "ape"
    assert data["plan"]["outputs"] == {"answer": "extract.answer"}


async def test_peer_reports_unavailable_without_llama_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(peer_method, "_server_available", lambda: False)
    method = get_method("dspy-mipro")
    assert method.unavailable_reason() == PEERS_MISSING
    with pytest.raises(UsageError, match=re.escape(".[peers]")):
        await method.prepare(
            ROWS,
            teacher=FunctionBackend(keyed_student),
            student=FunctionBackend(keyed_student),
            sandbox=None,
            budget=None,
            seed=0,
        )
