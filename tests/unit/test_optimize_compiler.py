"""The SGDe loop end to end with a scripted teacher and fake student (no models)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _optimize_fakes import (
    DOUBLE_SOLUTION,
    QTY_ROWS,
    ROWS,
    FakeTeacher,
    InProcessRunner,
    quantity_plan,
    single_plan,
    student_backend,
    system_text,
    user_text,
)

from sgde.optimize import CompileEvent, CompileSettings, compile_async
from sgde.optimize.checkpoint import Checkpoint
from sgde.optimize.operators.registry import OperatorRegistry, default_registry
from sgde.plan import plan_hash
from sgde.plan.model import CodeNode, ConsensusNode, LlmNode
from sgde.planfile import check_plan
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
    # the offload reaches zero loss with the student extracting; the last step then moves
    # the fields sgde's readers read into code (same loss, fewer student tokens)
    assert len(report.iterations) == 2
    read = report.iterations[1]
    assert read.proposal == {
        "node_id": "solve_extract",
        "direction": "parse",
        "reason": "zero training loss: code reads what it can",
    }
    assert read.accepted and read.why.startswith("same loss at fewer student tokens")
    assert read.teacher_tokens == 0 and read.edit is not None and read.edit.startswith("parse ")
    assert not any(isinstance(n, LlmNode) for n in result.plan.nodes)
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
    # the extraction is scored in each prompt variant; all read right: the shortest is kept
    variants = data["iterations"][0]["details"]["edit"]["variants"]
    assert list(variants) == ["described", "described+context", "snippet"]
    assert all(v["node_error"] == 0.0 for v in variants.values())
    assert data["iterations"][0]["details"]["edit"]["variant"] == "described"
    assert "[extraction prompt described: node error 0.000" in (it.edit or "")
    history = result.plan.metadata["compile"]["history"]
    assert history[0]["variant"] == "described"
    traces = sorted(p.name for p in (tmp_path / "traces").iterdir())
    assert traces == [
        "iter00-initial.jsonl",
        "iter01-candidate-described+context.jsonl",
        "iter01-candidate-described.jsonl",
        "iter01-candidate-snippet.jsonl",
        "iter02-read.jsonl",
    ]
    assert len(read_traces(tmp_path / "traces" / "iter01-candidate-snippet.jsonl")) == 3 * 2


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
    student = student_backend(solve, extract_error=lambda n: True)
    result = await _compile(fake, student=student, settings=settings)
    report = result.report
    # verified code is tried first (the output is computable); it does not help this student,
    # which misreads every quantity in every extraction prompt variant
    assert report.iterations[0].proposal["direction"] == "offload"
    assert report.iterations[0].accepted is False
    first = report.iterations[1]
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
    # the offload, then the readers' step at zero loss (no teacher call)
    assert [r.iteration for r in result.report.iterations] == [1, 2]
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


# ---------------------------------------------------------------- typed tasks


LABEL_ROWS = [{"text": f"item number {i}", "label": "pos" if i % 2 else "neg"} for i in range(10)]
GREEDY_RIGHT = {0, 1, 2, 4, 5, 7, 9}  # 7 of 10 rows: the greedy answer is right on 70 %


def _label_plan() -> Any:
    from sgde.plan.model import Plan

    node = LlmNode(
        id="label",
        inputs={"text": "input.text"},
        system="Label the item.",
        prompt="{{ text }}",
        output_schema={
            "type": "object",
            "properties": {"label": {"type": "string"}},
            "required": ["label"],
        },
    )
    return Plan(
        name="labels", inputs={"text": "string"}, outputs={"label": "label.label"}, nodes=[node]
    )


def _seventy_percent_student() -> FunctionBackend:
    """Right with probability 0.7 per sample; greedy answers right on 7 of the 10 rows."""
    import random

    def reply(req: ChatRequest) -> dict[str, Any]:
        text = req.messages[-1].content
        i = next(k for k, r in enumerate(LABEL_ROWS) if r["text"] == text.strip())
        gold, wrong = LABEL_ROWS[i]["label"], "neg" if LABEL_ROWS[i]["label"] == "pos" else "pos"
        if not req.temperature:
            return {"label": gold if i in GREEDY_RIGHT else wrong}
        right = random.Random(f"{req.seed}:{i}").random() < 0.7
        return {"label": gold if right else wrong}

    return FunctionBackend(reply, name="fake:student", capabilities=Capabilities(json_schema=True))


async def test_consensus_is_chosen_and_accepted_for_a_student_right_70_percent() -> None:
    fake = FakeTeacher(solution=WRONG_SOLUTION)
    result = await _compile(
        fake,
        student=_seventy_percent_student(),
        plan=_label_plan(),
        rows=LABEL_ROWS,
        settings=CompileSettings(max_iters=2, repeats=2),
    )
    report = result.report
    first = report.iterations[0]
    assert first.proposal["direction"] == "consensus", first.proposal
    assert first.accepted, first.why
    assert report.initial_loss == pytest.approx(0.3)
    assert report.final_loss < 0.3
    assert isinstance(result.plan.node("label_vote"), ConsensusNode)
    assert result.plan.metadata["task"]["outputs"]["label"].startswith("enum")


async def test_user_metric_feedback_reaches_the_critique() -> None:
    def metric(row: dict[str, Any], outputs: dict[str, Any]) -> tuple[float, str]:
        ok = outputs.get("label") == row["label"]
        return (1.0, "") if ok else (0.0, f"said {outputs.get('label')}, wanted {row['label']}")

    fake = FakeTeacher(solution=WRONG_SOLUTION)
    result = await _compile(
        fake,
        student=_seventy_percent_student(),
        plan=_label_plan(),
        rows=LABEL_ROWS,
        metric=metric,
        settings=CompileSettings(max_iters=1, repeats=1),
    )
    critiques = [p for p, k in zip(fake.prompts, fake.seen, strict=True) if k == "critique"]
    assert critiques and "the task's metric says: said neg, wanted pos" in critiques[0]
    assert result.report.initial_loss == pytest.approx(0.3)


async def test_a_metric_that_raises_names_the_metric_and_the_row() -> None:
    from sgde.errors import TaskMetricError

    def broken(row: dict[str, Any], outputs: dict[str, Any]) -> float:
        raise ValueError("boom")

    with pytest.raises(TaskMetricError, match=r"raised ValueError on training row 1: boom"):
        await _compile(
            FakeTeacher(),
            plan=_label_plan(),
            rows=LABEL_ROWS,
            metric=broken,
            student=_seventy_percent_student(),
        )


async def test_a_string_label_task_compiles_to_a_string_typed_plan() -> None:
    fake = FakeTeacher(
        coldstart=[{"name": "labels", "system": "Label it.", "prompt": "{{ text }}"}]
    )
    result = await _compile(
        fake,
        plan="Label the item as pos or neg.",
        rows=LABEL_ROWS,
        student=_seventy_percent_student(),
        settings=CompileSettings(max_iters=0),
    )
    node = result.plan.node("solve")
    assert isinstance(node, LlmNode) and node.output_schema is not None
    label = node.output_schema["properties"]["label"]
    assert label["type"] == "string" and label.get("enum") == ["neg", "pos"]
    assert result.plan.metadata["task"]["outputs"] == {"label": "enum[neg,pos]"}
    assert result.report.task["inputs"] == {"text": "string"}
    assert "expected output" in fake.prompts[0] and "label (enum[neg,pos])" in fake.prompts[0]


async def test_bad_rows_name_the_row_and_field() -> None:
    from sgde.errors import TaskDataError

    rows = [dict(r) for r in ROWS]
    rows[1] = {"question": rows[1]["question"], "answer": "many"}
    with pytest.raises(TaskDataError, match="answer") as info:
        await _compile(FakeTeacher(), rows=rows, rows_where="rows.jsonl")
    assert "rows.jsonl:2" in str(info.value)


def test_sync_compile_refuses_a_running_loop() -> None:
    import asyncio

    from sgde.errors import UsageError
    from sgde.optimize import compile

    async def inside() -> None:
        with pytest.raises(UsageError, match="compile_async"):
            compile(
                single_plan(),
                ROWS,
                teacher=FakeTeacher().backend,
                student=student_backend(),
                sandbox=InProcessRunner(),
            )

    asyncio.run(inside())


# ---------------------------------------------------------------- multi-node workflows

QTY_PARSER = (
    "```python\nimport re\n\ndef run(text):\n"
    "    return {'quantity': int(re.findall(r'\\d+', text)[0])}\n```"
)


def _two_node_plan() -> Any:
    compute = CodeNode(
        id="compute",
        inputs={"quantity": "extract.quantity"},
        code="def run(quantity):\n    return {'answer': quantity * 2}\n",
    )
    return quantity_plan(compute)


def _off_by_one_student() -> FunctionBackend:
    def reply(req: ChatRequest) -> dict[str, Any]:
        text = req.messages[-1].content
        return {"quantity": int("".join(ch for ch in text if ch.isdigit())) + 1}

    return FunctionBackend(reply, name="fake:student", capabilities=Capabilities(json_schema=True))


async def test_an_intermediate_node_is_supervised_and_offloaded() -> None:
    fake = FakeTeacher(solution=DOUBLE_SOLUTION, whole=QTY_PARSER)
    result = await _compile(
        fake,
        student=_off_by_one_student(),
        plan=_two_node_plan(),
        rows=QTY_ROWS,
        settings=CompileSettings(max_iters=2, repeats=1),
    )
    report = result.report
    first = report.iterations[0]
    stats = first.details["statistics"]
    # the teacher's solutions named the variable after the node field: extract is supervised
    assert stats["extract"]["fields"]["quantity"]["error_rate"] == 1.0
    assert first.proposal == {
        "node_id": "extract",
        "direction": "offload",
        "reason": first.proposal["reason"],
    }
    assert first.accepted and report.final_loss == 0.0
    assert "no student call left" in (first.edit or "")
    assert all(n.kind == "code" for n in result.plan.nodes)
    assert any("needs no student call" in n for n in report.notes)
    assert "whole" in report.pac["sources"]
    solve_prompt = fake.prompts[fake.seen.index("solve")]
    assert "keep each step's result in a variable with exactly this name: quantity" in solve_prompt
    history = result.plan.metadata["compile"]["history"]
    assert history[0]["direction"] == "offload" and history[0]["outcome"] == "accepted"


async def test_offload_is_tried_even_when_no_row_solution_verifies() -> None:
    whole = (
        "```python\ndef run(question):\n    import re\n"
        "    a, b, c, d = [int(x) for x in re.findall(r'\\d+', question)[:4]]\n"
        "    return {'answer': (a - b - c) * d}\n```"
    )
    fake = FakeTeacher(solution=WRONG_SOLUTION, whole=whole)
    result = await _compile(fake, settings=CompileSettings(max_iters=2, repeats=1))
    report = result.report
    assert report.supervision["verified"] == 0
    first = report.iterations[0]
    assert first.proposal["direction"] == "offload" and first.accepted
    assert report.final_loss == 0.0
    assert "whole program" in (first.edit or "")


# ---------------------------------------------------------------- node-level search

PRICE_PARSER = (
    "```python\nimport re\n\ndef run(question):\n"
    "    return {'price': int(re.search(r'\\$(\\d+)', question).group(1))}\n```"
)


def _price_student(fixed_by_rewrite: bool, solves: frozenset[int] = frozenset()) -> FunctionBackend:
    """Solves the rows in ``solves`` only; copies every quantity right except the price (one
    too high) — unless its prompt was rewritten and ``fixed_by_rewrite``. It knows the
    training rows only, so the tests using it turn the probes of perturbed rows off
    (``harden_probes=0``; tests/unit/test_optimize_harden.py tests that step)."""
    from _optimize_fakes import PARAM_ORDER, VALUES

    def reply(req: ChatRequest) -> dict[str, Any]:
        text = user_text(req)
        props = dict((req.json_schema or {}).get("properties", {}))
        i = next(k for k, r in enumerate(ROWS) if r["question"] in text)
        if "price" not in props and "eaten" not in props:
            return {"answer": ROWS[i]["answer"] if i in solves else 1}
        careful = fixed_by_rewrite and "Be careful" in system_text(req)
        return {
            n: VALUES[i][PARAM_ORDER[n]] + (1 if n == "price" and not careful else 0) for n in props
        }

    return FunctionBackend(reply, name="fake:student", capabilities=Capabilities(json_schema=True))


def _no_parse() -> OperatorRegistry:
    """The operators without parse: sgde's readers would read the price these tests repair
    with a prompt rewrite (see the parse test below)."""
    return OperatorRegistry([op for op in default_registry() if op.name != "parse"])


async def test_an_offload_that_ties_is_kept_then_repaired_by_a_rewrite() -> None:
    fake = FakeTeacher(whole="no code")
    result = await _compile(
        fake,
        student=_price_student(fixed_by_rewrite=True),
        settings=CompileSettings(max_iters=5, repeats=1, patience=3, harden_probes=0),
        operators=_no_parse(),
    )
    its = result.report.iterations
    assert its[0].proposal["direction"] == "offload" and its[0].accepted
    assert its[0].candidate_loss == 1.0  # an end-to-end tie ...
    assert "node-level error 1.000 → 0.250" in its[0].why  # ... kept on the node-level error
    assert result.report.final_loss == 0.0
    assert its[-1].accepted and its[-1].proposal["direction"] == "rewrite_prompt"
    assert its[-1].proposal["node_id"] == "solve_extract"


async def test_the_rewrite_kept_is_the_layout_whose_node_errs_least() -> None:
    # three rewrites (one per layout); only the second makes the student careful: the loop
    # scores each on the training rows and keeps that one, not the teacher's first answer
    fake = FakeTeacher(
        whole="no code",
        rewrite=[
            {"system": "Copy the numbers.", "prompt": "Text: {{ question }}"},
            {"system": "Be careful.", "prompt": "Rules first.\nText: {{ question }}"},
            {"system": "Look at each number.", "prompt": "{{ question }}\nLook."},
        ],
    )
    result = await _compile(
        fake,
        student=_price_student(fixed_by_rewrite=True),
        settings=CompileSettings(max_iters=5, repeats=1, patience=3, harden_probes=0),
        operators=_no_parse(),
    )
    rewrite = result.report.iterations[-1]
    assert rewrite.accepted and rewrite.proposal["direction"] == "rewrite_prompt"
    assert "[rewrite rules-first: node error 0.000; direct 0.250, look-for 0.250, " in (
        rewrite.edit or ""
    )
    node = result.plan.node("solve_extract")
    assert isinstance(node, LlmNode) and node.system == "Be careful."
    assert result.report.final_loss == 0.0


async def test_a_field_the_student_keeps_missing_is_parsed_by_verified_code() -> None:
    fake = FakeTeacher(whole="no code", parser=PRICE_PARSER)
    result = await _compile(
        fake,
        student=_price_student(fixed_by_rewrite=False),
        settings=CompileSettings(max_iters=6, repeats=1, patience=4),
    )
    its = result.report.iterations
    directions = [(r.proposal or {}).get("direction") for r in its]
    # parse is reached right after the offload, before any prompt rewrite ...
    assert directions[:2] == ["offload", "parse"]
    parse = its[1]
    assert parse.accepted and parse.candidate_loss == 0.0
    assert parse.details["node_loss_after"] == 0.0
    node = result.plan.node("solve_extract_parse")
    # the readers were tried on every extracted field (they cost no tokens), not only on
    # the erring price: every field they read moves to code, here all of them
    assert isinstance(node, CodeNode) and "price" in node.outputs and len(node.outputs) == 4
    # ... by one of sgde's own readers (no teacher parser), counted for the PAC statement
    assert "SGDE_READERS" in node.code and "def run(question)" in node.code
    assert result.report.pac["sources"].get("reader", 0) > 0
    assert not any(isinstance(n, LlmNode) for n in result.plan.nodes)  # no student call left


async def test_look_ahead_keeps_an_offload_that_only_pays_off_after_a_repair() -> None:
    fake = FakeTeacher(whole="no code")
    student = _price_student(fixed_by_rewrite=True, solves=frozenset({0, 1}))
    result = await _compile(
        fake,
        student=student,
        settings=CompileSettings(max_iters=2, repeats=1, consensus_max_error=0.0, harden_probes=0),
        operators=_no_parse(),
    )
    first = result.report.iterations[0]
    assert first.proposal["direction"] == "offload"
    # alone, the offload is worse end to end (1.000 vs 0.333) but lowers the node-level error
    assert first.candidate_loss == 0.0 and first.accepted
    ahead = first.details["lookahead"]
    assert ahead[-1]["accepted"]
    assert ahead[-1]["edit"].startswith("rewrite the prompt of solve_extract [rewrite direct:")
    assert first.why.startswith("compound edit: loss improved")
    assert first.edit is not None and "; then rewrite the prompt of solve_extract" in first.edit
    history = result.plan.metadata["compile"]["history"]
    assert history[0]["outcome"] == "rejected" and history[-1]["parent"] is not None
    assert result.report.final_loss == 0.0


def _misreading_student() -> FunctionBackend:
    """Solves no row and, after an offload, copies every quantity one too high: the
    offload's extraction errs on every field of every row (node-level error 1.0 as before)."""
    from _optimize_fakes import PARAM_ORDER, VALUES

    def reply(req: ChatRequest) -> dict[str, Any]:
        text = user_text(req)
        props = dict((req.json_schema or {}).get("properties", {}))
        i = next(k for k, r in enumerate(ROWS) if r["question"] in text)
        if "price" not in props and "eaten" not in props:
            return {"answer": 1}
        return {n: VALUES[i][PARAM_ORDER[n]] + 1 for n in props}

    return FunctionBackend(reply, name="fake:student", capabilities=Capabilities(json_schema=True))


async def test_an_offload_tied_on_every_level_is_repaired_by_a_parse_in_the_look_ahead() -> None:
    result = await _compile(
        FakeTeacher(whole="no code"),
        student=_misreading_student(),
        settings=CompileSettings(max_iters=1, repeats=1),
    )
    first = result.report.iterations[0]
    assert first.proposal["direction"] == "offload"
    # the offload alone ties end to end and on the node level (1.0 vs 1.0), and the one
    # look-ahead step parses the extraction's fields with sgde's readers
    ahead = first.details["lookahead"]
    assert ahead[0]["accepted"] and ahead[0]["edit"].startswith("parse ")
    assert first.accepted and first.candidate_loss == 0.0
    assert result.report.final_loss == 0.0
    assert not any(isinstance(n, LlmNode) for n in result.plan.nodes)


def _snippet_reader() -> FunctionBackend:
    """Solves nothing; copies every quantity right from the masked-context prompt ("copy
    numbers" system), but reads the price one too high from a description-only prompt."""
    from _optimize_fakes import PARAM_ORDER, VALUES

    def reply(req: ChatRequest) -> dict[str, Any]:
        text = user_text(req)
        props = dict((req.json_schema or {}).get("properties", {}))
        i = next(k for k, r in enumerate(ROWS) if r["question"] in text)
        if "price" not in props:
            return {"answer": 1}
        typed = "You copy values out of a text" in system_text(req)
        return {n: VALUES[i][PARAM_ORDER[n]] + (1 if n == "price" and typed else 0) for n in props}

    return FunctionBackend(reply, name="fake:student", capabilities=Capabilities(json_schema=True))


async def test_the_extraction_prompt_the_student_reads_best_is_kept() -> None:
    result = await _compile(
        FakeTeacher(whole="no code"),
        student=_snippet_reader(),
        settings=CompileSettings(max_iters=2, repeats=1),
        operators=_no_parse(),  # the readers would replace the extraction this test reads
    )
    first = result.report.iterations[0]
    assert first.accepted and first.candidate_loss == 0.0
    edit = first.details["edit"]
    assert edit["variant"] == "snippet"  # longer than "described", but read right
    errors = {k: v["node_error"] for k, v in edit["variants"].items()}
    assert errors == {"described": 0.25, "described+context": 0.25, "snippet": 0.0}
    assert (
        edit["variants"]["described"]["prompt_chars"] < edit["variants"]["snippet"]["prompt_chars"]
    )
    extract = result.plan.node("solve_extract")
    assert isinstance(extract, LlmNode) and extract.prompt.startswith("Text: {{ question }}")
    record = result.plan.metadata["compile"]["history"][0]
    assert record["variant"] == "snippet" and record["variant_errors"] == errors
    assert "[extraction prompt snippet: node error 0.000; described 0.250" in (first.edit or "")
