"""Hardening at the end of a compile: extractions probed on perturbed training rows."""

from __future__ import annotations

from typing import Any

from _optimize_fakes import (
    DOUBLE_SOLUTION,
    PARAM_ORDER,
    QTY_ROWS,
    ROWS,
    VALUES,
    FakeTeacher,
    InProcessRunner,
    numbers,
    quantity_plan,
    single_plan,
    user_text,
)

from sgde.optimize import CompileSettings, compile_async
from sgde.optimize.harden import probe_rows
from sgde.optimize.operators.registry import OperatorRegistry, default_registry
from sgde.optimize.sources.verified import Program
from sgde.plan.model import ConsensusNode, LlmNode
from sgde.runtime.backend import Capabilities, ChatRequest
from sgde.task import FieldType, TaskSpec
from sgde.testing import FunctionBackend

SEEN = {v for row in VALUES[:3] for v in row}
"""Values of the training rows: the fake students below read these right in any layout."""


def _layout(prompt: str) -> int:
    """Which of sgde's extraction layouts a prompt is: 0 described, 1 with masked contexts,
    2 snippet."""
    if "the number in" in prompt:
        return 2
    return 1 if "___" in prompt else 0


def _reader(wrong: Any) -> FunctionBackend:
    """A student whose extraction copies the question's numbers, but a value it has not
    seen in training is read one too high when ``wrong(layout, value)``; the solve node
    always answers 1 (so the compile offloads)."""
    return FunctionBackend(
        _reading(wrong), name="fake:student", capabilities=Capabilities(json_schema=True)
    )


def _reading(wrong: Any) -> Any:
    """:func:`_reader`'s reply function."""

    def reply(req: ChatRequest) -> dict[str, Any]:
        text = user_text(req)
        props = dict((req.json_schema or {}).get("properties", {}))
        if "answer" in props:
            return {"answer": 1}
        line = next(ln for ln in text.splitlines() if "Janet's ducks" in ln)
        found = numbers(line)
        out = {}
        for name in props:
            value = found[PARAM_ORDER[name]]
            out[name] = value + 1 if value not in SEEN and wrong(_layout(text), value) else value
        return out

    return reply


def _without(*names: str) -> OperatorRegistry:
    return OperatorRegistry([op for op in default_registry() if op.name not in names])


async def _compile(student: FunctionBackend, operators: OperatorRegistry) -> Any:
    return await compile_async(
        single_plan(),
        trainset=ROWS,
        teacher=FakeTeacher(whole="no code").backend,
        student=student,
        sandbox=InProcessRunner(),
        settings=CompileSettings(max_iters=3, repeats=1),
        operators=operators,
    )


def test_probes_replace_every_occurrence_and_cover_rows_before_a_second_value() -> None:
    task = TaskSpec(
        description="area",
        inputs={"text": FieldType.parse("string")},
        outputs={"area": FieldType.parse("integer")},
    )
    rows = [
        {"text": "Room plan: 20 m by 20 m.", "area": 400},
        {"text": "A rectangle is 28 cm long and 9 cm wide.", "area": 252},
    ]
    program = Program(
        code="def run(length, width):\n    return {'area': length * width}\n",
        params={"length": FieldType.parse("integer"), "width": FieldType.parse("integer")},
        values=[{"length": 20, "width": 20}, {"length": 28, "width": 9}],
    )
    probes = probe_rows(task, rows, program, ["length", "width"], limit=3)
    assert probes == [
        # a value written twice: both mentions change, and both fields expect the new one
        ({"text": "Room plan: 27 m by 27 m."}, {"length": 27, "width": 27}),
        ({"text": "A rectangle is 35 cm long and 9 cm wide."}, {"length": 35, "width": 9}),
        ({"text": "A rectangle is 28 cm long and 16 cm wide."}, {"length": 28, "width": 16}),
    ]
    more = probe_rows(task, rows, program, ["length", "width"], limit=12)
    assert len(more) == 9 and len({repr(p) for p in more}) == 9  # three values each, no repeat
    assert ({"text": "Room plan: 43 m by 43 m."}, {"length": 43, "width": 43}) in more
    assert probe_rows(task, rows, program, ["length", "width"], limit=0) == []


async def test_an_extraction_that_misreads_new_values_is_moved_to_the_layout_that_reads_them() -> (
    None
):
    # Every layout reads the training rows right, so the offload keeps the shortest
    # ("described"); that one misreads every new value, the masked contexts read them all.
    result = await _compile(_reader(lambda layout, value: layout != 1), _without("parse"))
    report = result.report
    assert report.final_loss == 0.0
    harden = [it for it in report.iterations if "probes" in it.details]
    assert harden, [it.proposal for it in report.iterations]
    first = harden[0]
    assert first.accepted, first.why
    assert first.details["step"] == "layouts" and first.details["variant"] == "described+context"
    # each probe changes one value; each field is misread on the probes of its value
    assert first.details["probe_error_before"] == 0.25
    assert first.details["probe_errors"]["described+context"] == 0.0
    assert first.why.startswith("training loss zero, probe error 0.250 → 0.000 on 12 probes")
    extract = result.plan.node("solve_extract")
    assert isinstance(extract, LlmNode) and "___" in extract.prompt
    history = result.plan.metadata["compile"]["history"]
    assert history[-1]["outcome"] == "accepted" and history[-1]["direction"] == "rewrite_prompt"
    assert len(harden) == 1  # nothing left to fix: no vote is added


async def test_a_vote_over_layouts_that_err_on_different_values_is_kept() -> None:
    # Each layout misreads the new values of one residue mod 3: every single layout errs on
    # some probes, no two on the same one, so their majority reads every probe right.
    def wrong(layout: int, value: int) -> bool:
        return value % 3 == layout

    result = await _compile(_reader(wrong), _without("parse", "rewrite_prompt"))
    report = result.report
    harden = [it for it in report.iterations if "probes" in it.details]
    vote = harden[-1]
    assert vote.proposal is not None and vote.proposal["direction"] == "consensus"
    assert vote.accepted, vote.why
    assert vote.details["variant"] == "layouts" and vote.details["probe_errors"]["layouts"] == 0.0
    # the consensus operator's own members (one layout in other words, or samples of it)
    # repeat that layout's errors
    assert all(e > 0 for k, e in vote.details["probe_errors"].items() if k != "layouts")
    wrapped = [n for n in result.plan.nodes if isinstance(n, ConsensusNode)]
    assert len(wrapped) == 1 and len(wrapped[0].members) == 3
    assert report.final_loss == 0.0


async def test_an_extraction_that_reads_every_probe_right_is_left_alone() -> None:
    result = await _compile(_reader(lambda layout, value: False), _without("parse"))
    assert result.report.final_loss == 0.0
    assert not [it for it in result.report.iterations if "probes" in it.details]
    assert not any(isinstance(n, ConsensusNode) for n in result.plan.nodes)


async def test_no_probes_with_the_step_turned_off() -> None:
    result = await compile_async(
        single_plan(),
        trainset=ROWS,
        teacher=FakeTeacher(whole="no code").backend,
        student=_reader(lambda layout, value: True),
        sandbox=InProcessRunner(),
        settings=CompileSettings(max_iters=3, repeats=1, harden_probes=0),
        operators=_without("parse"),
    )
    assert result.report.final_loss == 0.0
    assert not [it for it in result.report.iterations if "probes" in it.details]


QTY_SEEN = {7, 12, 30}


def _user_plan() -> Any:
    """A user's two-step plan: the student reads the quantity, then doubles it."""
    double = LlmNode(
        id="double",
        inputs={"quantity": "extract.quantity"},
        system="Double the number.",
        prompt="{{ quantity }}",
        output_schema={
            "type": "object",
            "properties": {"answer": {"type": "integer"}},
            "required": ["answer"],
        },
    )
    return quantity_plan(double)


def _instruction_reader(misread: Any = lambda value: value not in QTY_SEEN) -> FunctionBackend:
    """Reads a quantity one too high where ``misread(value)`` (by default: one it has not
    seen) when the instruction is a system prompt, right when it is in the user turn;
    cannot double."""

    def reply(req: ChatRequest) -> dict[str, Any]:
        props = dict((req.json_schema or {}).get("properties", {}))
        if "answer" in props:
            return {"answer": 1}
        value = numbers(user_text(req))[0]
        has_system = any(m.role == "system" and m.content.strip() for m in req.messages)
        return {"quantity": value + 1 if misread(value) and has_system else value}

    return FunctionBackend(reply, name="fake:student", capabilities=Capabilities(json_schema=True))


async def test_a_users_copy_step_is_probed_with_its_expected_values_and_voted() -> None:
    result = await compile_async(
        _user_plan(),
        trainset=QTY_ROWS,
        teacher=FakeTeacher(solution=DOUBLE_SOLUTION, whole="no code").backend,
        student=_instruction_reader(),
        sandbox=InProcessRunner(),
        settings=CompileSettings(max_iters=3, repeats=1),
        operators=_without("parse", "rewrite_prompt"),
    )
    report = result.report
    assert report.final_loss == 0.0
    harden = [it for it in report.iterations if "probes" in it.details]
    assert harden, [(it.proposal, it.why) for it in report.iterations]
    vote = harden[-1]
    assert vote.proposal is not None and vote.proposal["node_id"] == "extract"
    assert vote.accepted, vote.why
    # no sgde layouts for a user's node: the consensus operator's members; two of the three
    # put the instruction in the user turn, so their majority reads every probe right
    assert vote.details["variant"] == "prompts"
    assert vote.details["probe_error_before"] == 1.0
    assert vote.details["probe_errors"]["prompts"] == 0.0
    # the samples of the system-prompt node cannot beat a perfect vote: stopped after one
    # chunk of probes, their error a lower bound
    assert vote.details["probe_stopped_early"] == ["temperature"]
    assert vote.details["probe_errors"]["temperature"] == round(4 / 9, 4)
    assert isinstance(result.plan.node("extract_vote"), ConsensusNode)


async def test_a_budget_stop_during_hardening_keeps_the_edit_it_accepted() -> None:
    from sgde.errors import BudgetExceeded

    inner = _reading(lambda layout, value: layout != 1 or value % 3 == 0)

    def reply(req: ChatRequest) -> Any:
        if not any(m.role == "system" and m.content.strip() for m in req.messages):
            raise BudgetExceeded("student token budget of 100 exhausted")  # the vote's members
        return inner(req)

    student = FunctionBackend(
        reply, name="fake:student", capabilities=Capabilities(json_schema=True)
    )
    result = await _compile(student, _without("parse", "rewrite_prompt"))
    report = result.report
    assert report.stop_reason.startswith("budget exhausted")
    layouts = next(it for it in report.iterations if it.details.get("step") == "layouts")
    assert layouts.accepted and layouts.details["variant"] == "described+context"
    extract = result.plan.node("solve_extract")
    assert isinstance(extract, LlmNode) and "___" in extract.prompt  # the kept layout
    assert report.iterations[-1].why == "budget"
    assert report.final_loss == 0.0


async def test_a_vote_that_saves_one_probe_read_is_not_kept() -> None:
    # misreads one probe only (the value 14) unless the instruction is in the user turn: the
    # vote of prompt variants reads all right, but one read is within a vote's noise
    result = await compile_async(
        _user_plan(),
        trainset=QTY_ROWS,
        teacher=FakeTeacher(solution=DOUBLE_SOLUTION, whole="no code").backend,
        student=_instruction_reader(lambda value: value == 14),
        sandbox=InProcessRunner(),
        settings=CompileSettings(max_iters=3, repeats=1),
        operators=_without("parse", "rewrite_prompt"),
    )
    vote = next(it for it in result.report.iterations if it.details.get("step") == "vote")
    assert vote.details["probe_errors"]["prompts"] == 0.0
    assert not vote.accepted
    assert "1 fewer wrong read(s), a vote needs 2" in vote.why
    assert not any(isinstance(n, ConsensusNode) for n in result.plan.nodes)
