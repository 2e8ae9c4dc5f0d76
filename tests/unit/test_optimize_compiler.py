"""The SGDe loop end to end with a scripted teacher and fake student (no models)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _optimize_fakes import ROWS, FakeTeacher, InProcessRunner, single_plan, student_backend

from sgde.optimize import CompileEvent, CompileSettings, compile_async
from sgde.optimize.checkpoint import Checkpoint
from sgde.plan import check_plan, plan_hash
from sgde.plan.model import CodeNode, ConsensusNode, LlmNode
from sgde.runtime.backend import Capabilities, ChatRequest
from sgde.runtime.calls import derive_seed
from sgde.runtime.trace import read_traces
from sgde.testing import FunctionBackend

WRONG_SOLUTION = "def solution():\n    return 0\n"


async def _compile(fake: FakeTeacher, student: Any = None, **kw: Any) -> Any:
    settings = kw.pop("settings", CompileSettings(max_iters=3))
    return await compile_async(
        kw.pop("plan", single_plan()),
        trainset=kw.pop("rows", ROWS),
        teacher=fake.backend,
        student=student or student_backend(),
        sandbox=InProcessRunner(),
        settings=settings,
        **kw,
    )


async def test_compile_offloads_and_reaches_zero_loss(tmp_path: Path) -> None:
    events: list[CompileEvent] = []
    original = single_plan()
    before = original.model_dump()
    result = await _compile(
        FakeTeacher(), plan=original, checkpoint_dir=tmp_path, events=events.append
    )
    report = result.report
    assert report.initial_loss == 1.0 and report.final_loss == 0.0
    assert report.stop_reason == "zero training loss in every repeat"
    assert len(report.iterations) == 1
    it = report.iterations[0]
    assert it.accepted and it.proposal["direction"] == "offload"
    assert it.critique["direction"] == "offload" and it.critique_agrees is True
    assert it.candidate_loss == 0.0 and it.teacher_tokens > 0
    assert isinstance(result.plan.node("solve_compute"), CodeNode)
    check_plan(result.plan)
    meta = result.plan.metadata["compile"]
    assert meta["teacher"] == "fake:teacher" and meta["student"] == "fake:student"
    assert (
        meta["m"] == 3 and meta["final_loss"] == 0.0 and meta["trainset_hash"].startswith("sha256:")
    )
    assert report.final_plan_hash == plan_hash(result.plan)
    assert report.pac["consistent"] is True and report.hypotheses >= 2
    assert report.supervision["verified"] == 3
    assert report.usage["teacher"]["total_tokens"] > 0
    assert report.usage["student"]["calls"] > 0
    assert original.model_dump() == before  # never mutates its input
    kinds = [e.kind for e in events]
    for kind in ("start", "forward", "supervision", "critique", "edit", "accepted", "stop"):
        assert kind in kinds
    paths = report.write(tmp_path / "report")
    data = json.loads(paths[0].read_text())
    assert data["iterations"][0]["accepted"] is True
    assert "PAC statement" in paths[1].read_text()
    assert Checkpoint(tmp_path).exists()
    traces = sorted(p.name for p in (tmp_path / "traces").iterdir())
    assert traces == ["iter00-initial.jsonl", "iter01-candidate.jsonl"]
    assert len(read_traces(tmp_path / "traces" / "iter01-candidate.jsonl")) == 3 * 2


async def test_cold_start_returns_invalid_drafts_with_messages() -> None:
    fake = FakeTeacher(
        coldstart=[
            {"name": "x", "system": "s", "prompt": "no variable here"},
            {"name": "Duck eggs!", "system": "Solve it.", "prompt": "{{ question }} JSON please"},
        ]
    )
    result = await _compile(
        fake, plan="How much does Janet make?", settings=CompileSettings(max_iters=0)
    )
    plan = result.plan
    assert fake.seen[:2] == ["coldstart", "coldstart"]
    assert plan.name == "duck_eggs" and plan.inputs == {"question": "string"}
    assert plan.outputs == {"answer": "solve.answer"}
    node = plan.node("solve")
    assert isinstance(node, LlmNode) and node.model == "student"
    assert result.report.coldstart["source"] == "teacher"
    assert "{{ question }}" in result.report.coldstart["rejected_drafts"][0][0]
    assert result.report.stop_reason == "reached max_iters=0"


async def test_cold_start_falls_back_to_a_minimal_valid_plan() -> None:
    fake = FakeTeacher(coldstart=["not json", "still not", "nope"])
    result = await _compile(
        fake,
        plan="Answer the question.",
        settings=CompileSettings(max_iters=0, coldstart_retries=2),
    )
    assert result.report.coldstart["source"] == "fallback"
    assert any("fallback" in n for n in result.report.notes)
    check_plan(result.plan)


async def test_worsening_edit_is_rejected_and_fed_back() -> None:
    def solve(text: str) -> dict[str, Any]:
        if text.startswith("Think."):
            return {"answer": -1}  # the rewritten prompt makes things worse
        row = next(r for r in ROWS if r["question"] in text)
        return {"answer": row["answer"] if row is not ROWS[2] else 0}

    fake = FakeTeacher(solution=WRONG_SOLUTION)
    settings = CompileSettings(max_iters=3, repeats=1, consensus_max_error=0.0)
    result = await _compile(fake, student=student_backend(solve), settings=settings)
    report = result.report
    first = report.iterations[0]
    assert first.proposal["direction"] == "rewrite_prompt"
    assert first.accepted is False and first.candidate_loss == 1.0
    assert "loss 1.000 vs 0.333" in first.why
    assert report.final_loss == pytest.approx(1 / 3)
    assert plan_hash(result.plan) == plan_hash(single_plan())
    assert report.stop_reason.startswith("no applicable edit")


async def test_consensus_wrap_when_mode_is_right_but_repeats_vary() -> None:
    bad_seed = derive_seed(1, "solve", 0, 0)

    def reply(req: ChatRequest) -> dict[str, Any]:
        text = req.messages[-1].content
        row = next(r for r in ROWS if r["question"] in text)
        return {"answer": -5 if req.seed == bad_seed else row["answer"]}

    student = FunctionBackend(
        reply, name="fake:student", capabilities=Capabilities(json_schema=True)
    )
    plan = single_plan()
    sampled = plan.model_copy(
        update={"nodes": [plan.nodes[0].model_copy(update={"temperature": 0.7})]}
    )
    fake = FakeTeacher(solution=WRONG_SOLUTION)
    result = await _compile(
        fake, student=student, plan=sampled, settings=CompileSettings(max_iters=2, repeats=3)
    )
    it = result.report.iterations[0]
    assert it.proposal["direction"] == "consensus"
    assert it.accepted and result.report.final_loss == 0.0
    assert isinstance(result.plan.node("solve_vote"), ConsensusNode)
    # the teacher said "offload"; sgde's statistics decided, and the disagreement is logged
    assert it.critique_agrees is False
    assert any("the statistics chose consensus" in n for n in result.report.notes)


async def test_budget_stop_returns_the_best_plan_so_far(tmp_path: Path) -> None:
    fake = FakeTeacher(budget_after=3)  # 3 solves, then the critique hits the budget
    result = await _compile(fake, checkpoint_dir=tmp_path)
    assert result.report.stop_reason.startswith("budget exhausted")
    assert plan_hash(result.plan) == plan_hash(single_plan())
    assert result.report.final_loss == 1.0
    assert Checkpoint(tmp_path).exists()


async def test_malformed_critique_is_recoverable() -> None:
    fake = FakeTeacher(critique="I think the problem is... {not json")
    result = await _compile(fake)
    it = result.report.iterations[0]
    assert it.critique is None and it.accepted
    assert any("critique malformed" in n for n in result.report.notes)
    assert fake.seen.count("critique") == 3  # first try + 2 retries with the error


async def test_resume_after_an_interruption(tmp_path: Path) -> None:
    crashing = FakeTeacher(crash_on="critique")
    with pytest.raises(RuntimeError, match="simulated crash"):
        await _compile(crashing, checkpoint_dir=tmp_path)
    _, state = Checkpoint(tmp_path).load()
    assert state["iteration"] == 0 and state["report"]["initial_loss"] == 1.0
    solves_before = crashing.seen.count("solve")
    assert solves_before == 3 * CompileSettings().program_samples

    fresh = FakeTeacher()
    result = await _compile(fresh, checkpoint_dir=tmp_path, resume=True)
    assert "solve" not in fresh.seen  # supervision restored from the checkpoint
    assert result.report.final_loss == 0.0 and result.report.initial_loss == 1.0
    assert [r.iteration for r in result.report.iterations] == [1]
    assert result.report.usage["teacher"]["calls"] > len(fresh.seen)  # usage carried over


async def test_resume_refuses_another_training_set(tmp_path: Path) -> None:
    await _compile(FakeTeacher(), checkpoint_dir=tmp_path, settings=CompileSettings(max_iters=0))
    from sgde.errors import CompileError

    with pytest.raises(CompileError, match="different training set"):
        await _compile(FakeTeacher(), checkpoint_dir=tmp_path, resume=True, rows=ROWS[:2])


async def test_usage_errors() -> None:
    from sgde.errors import UsageError

    with pytest.raises(UsageError, match="empty"):
        await _compile(FakeTeacher(), rows=[])
    with pytest.raises(UsageError, match="checkpoint directory"):
        await _compile(FakeTeacher(), resume=True)
