"""Offloading an LLM node that reads only upstream nodes' fields (no plan input) to verified
code over those fields: a scripted teacher and a fake student (no models)."""

from __future__ import annotations

import re
from typing import Any

from _optimize_fakes import FakeTeacher, InProcessRunner, case_text, user_text

from sgde.optimize import CompileSettings, compile_async
from sgde.optimize.operators import offload_target
from sgde.optimize.operators.offload import OffloadTarget
from sgde.plan.model import CodeNode, LlmNode, Plan
from sgde.planfile import check_plan
from sgde.runtime.backend import Capabilities, ChatRequest
from sgde.testing import FunctionBackend

ROWS = [
    {"text": "Please double the 7 apples.", "answer": 14},
    {"text": "Please triple the 4 pears.", "answer": 12},
    {"text": "Please double the 30 plums.", "answer": 60},
]
RULE = (
    "def run(kind, quantity):\n    return {'answer': quantity * (2 if kind == 'double' else 3)}\n"
)


def _schema(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {name: spec}, "required": [name]}


def _workflow() -> Plan:
    """classify (text -> kind) and extract (text -> quantity) feed compute (kind, quantity ->
    answer), an LLM node reading no plan input."""
    classify = LlmNode(
        id="classify",
        inputs={"text": "input.text"},
        system="You name the operation.",
        prompt="Text: {{ text }}\nOperation: double or triple?",
        output_schema=_schema("kind", {"type": "string", "enum": ["double", "triple"]}),
    )
    extract = LlmNode(
        id="extract",
        inputs={"text": "input.text"},
        system="You copy the quantity.",
        prompt="Text: {{ text }}\nHow many items?",
        output_schema=_schema("quantity", {"type": "integer"}),
    )
    compute = LlmNode(
        id="compute",
        inputs={"kind": "classify.kind", "quantity": "extract.quantity"},
        system="You apply the rule.",
        prompt="Kind: {{ kind }}. Quantity: {{ quantity }}.\nRule: double -> 2x, triple -> 3x.",
        output_schema=_schema("answer", {"type": "number"}),
    )
    return Plan(
        name="scale",
        inputs={"text": "string"},
        outputs={"answer": "compute.answer"},
        nodes=[classify, extract, compute],
    )


class _Teacher(FakeTeacher):
    """Solves a case naming the steps ``kind`` and ``quantity`` (when ``names_steps``), all
    rows but ``unsolved``; writes ``RULE`` as whole-task code."""

    def __init__(self, *, names_steps: bool = True, unsolved: str = "") -> None:
        super().__init__(whole="```python\n" + RULE + "```")
        self.names_steps = names_steps
        self.unsolved = unsolved

    def _reply(self, req: ChatRequest) -> str | dict[str, Any]:
        text = user_text(req)
        if "Solve" in text or "Complete the Python function below" in text:
            case = case_text(text)
            if self.unsolved and self.unsolved in case:
                return "```python\ndef solution():\n    return {'answer': -1}\n```"
            kind = "triple" if "triple" in case else "double"
            quantity = int(re.findall(r"\d+", case)[0])
            names = ("kind", "quantity") if self.names_steps else ("k", "n")
            code = (
                f"def solution():\n    {names[0]} = {kind!r}\n    {names[1]} = {quantity}\n"
                f"    return {{'answer': {names[1]} * (2 if {names[0]} == 'double' else 3)}}\n"
            )
            self.seen.append("solve")
            self.prompts.append(text)
            return "```python\n" + code + "```"
        return super()._reply(req)


def _student() -> FunctionBackend:
    """Classifies and copies right; always gets the rule wrong."""

    def reply(req: ChatRequest) -> dict[str, Any]:
        text = next(ln for ln in user_text(req).splitlines() if ln.startswith(("Text:", "Kind:")))
        props = dict((req.json_schema or {}).get("properties", {}))
        if "kind" in props:
            return {"kind": "triple" if "triple" in text else "double"}
        if "quantity" in props:
            return {"quantity": int(re.findall(r"\d+", text)[0])}
        return {"answer": 1}

    return FunctionBackend(reply, name="fake:student", capabilities=Capabilities(json_schema=True))


async def _compile(teacher: _Teacher) -> Any:
    return await compile_async(
        _workflow(),
        trainset=ROWS,
        teacher=teacher.backend,
        student=_student(),
        sandbox=InProcessRunner(),
        settings=CompileSettings(max_iters=1, repeats=1),
    )


def test_a_node_over_upstream_fields_is_an_offload_target() -> None:
    plan = _workflow()
    target = offload_target(plan, "compute")
    assert isinstance(target, OffloadTarget)
    assert target.text_inputs == {} and target.fields == ("answer",)
    # a node reading a plan input keeps its text inputs (the existing path)
    extract = offload_target(plan, "extract")
    assert isinstance(extract, OffloadTarget) and extract.text_inputs == {"text": "text"}


async def test_the_last_llm_node_is_offloaded_to_code_over_its_inputs() -> None:
    result = await _compile(_Teacher())
    first = result.report.iterations[0]
    assert first.proposal is not None and first.proposal["node_id"] == "compute"
    assert first.proposal["direction"] == "offload"
    assert first.accepted and result.report.final_loss == 0.0
    plan = result.plan
    check_plan(plan)
    assert "compute" not in plan.node_ids()
    code = [n for n in plan.nodes if isinstance(n, CodeNode)]
    assert len(code) == 1
    # wired straight from the upstream fields: no extraction node was added
    assert code[0].inputs == {"kind": "classify.kind", "quantity": "extract.quantity"}
    assert plan.outputs == {"answer": f"{code[0].id}.answer"}
    assert sorted(n.id for n in plan.nodes if isinstance(n, LlmNode)) == ["classify", "extract"]
    assert first.details["edit"]["verified_rows"] == 3


async def test_a_node_verified_on_two_of_three_rows_is_offloaded() -> None:
    result = await _compile(_Teacher(unsolved=ROWS[2]["text"]))
    assert result.report.supervision["verified"] == 2
    first = result.report.iterations[0]
    assert first.accepted and first.details["edit"]["verified_rows"] == 2
    assert result.report.final_loss == 0.0


async def test_a_node_whose_rows_cannot_be_verified_is_reported_with_a_reason() -> None:
    result = await _compile(_Teacher(names_steps=False))
    first = result.report.iterations[0]
    assert first.proposal is not None and first.proposal["node_id"] == "compute"
    assert first.proposal["direction"] == "offload"
    assert not first.accepted and first.edit is None
    assert "only 0 of 3 training rows have expected values" in first.why
    assert [n.id for n in result.plan.nodes] == ["classify", "extract", "compute"]


_CLASSIFIER = (
    "def run(text):\n    return {'kind': 'triple' if 'triple' in text.lower() else 'double'}\n"
)


async def _compile_classify(teacher: _Teacher) -> Any:
    """classify (LLM; the student misses every "triple") and extract feed compute (code)."""
    compute = CodeNode(
        id="compute",
        inputs={"kind": "classify.kind", "quantity": "extract.quantity"},
        code="def run(kind, quantity):\n    return {'answer': quantity * (2 if kind == 'double'"
        " else 3)}\n",
    )
    plan = _workflow()
    plan = plan.model_copy(update={"nodes": [plan.nodes[0], plan.nodes[1], compute]})

    def reply(req: ChatRequest) -> dict[str, Any]:
        text = user_text(req)
        props = dict((req.json_schema or {}).get("properties", {}))
        if "kind" in props:
            return {"kind": "double"}
        return {"quantity": int(re.findall(r"\d+", text)[0])}

    teacher.whole = "```python\n" + _CLASSIFIER + "```"
    return await compile_async(
        plan,
        trainset=ROWS,
        teacher=teacher.backend,
        student=FunctionBackend(
            reply, name="fake:student", capabilities=Capabilities(json_schema=True)
        ),
        sandbox=InProcessRunner(),
        settings=CompileSettings(max_iters=3, repeats=1),
    )


def _classify_offload(result: Any) -> Any:
    offloads = [
        it
        for it in result.report.iterations
        if it.proposal is not None and it.proposal["direction"] == "offload"
    ]
    assert offloads and offloads[0].proposal is not None
    assert offloads[0].proposal["node_id"] == "classify"
    return offloads[0]


async def test_a_classify_node_is_offloaded_with_its_labels_and_instructions() -> None:
    """The classify node's sub-task names its labels (the schema's enum) and carries the
    node's prompt (what each label means), so the teacher's classifier can follow them."""
    teacher = _Teacher()
    result = await _compile_classify(teacher)
    offload = _classify_offload(result)
    assert offload.accepted and result.report.final_loss == 0.0
    whole = [p for k, p in zip(teacher.seen, teacher.prompts, strict=True) if k == "whole"]
    assert whole, teacher.seen
    assert "Operation: double or triple?" in whole[0]  # the node's instructions
    assert "one of 'double', 'triple'" in whole[0]  # the schema's labels, not a free string
    assert "the words that signal each label in general" in whole[0]
    assert "classify" not in result.plan.node_ids()


async def test_supervision_of_a_workflow_shows_the_teacher_each_steps_instructions() -> None:
    teacher = _Teacher()
    await _compile(teacher)
    solve = [p for k, p in zip(teacher.seen, teacher.prompts, strict=True) if k == "solve"]
    assert solve
    # the rule lives in the compute node's prompt, not in the plan's description
    assert "compute: Kind: <kind>. Quantity: <quantity>. Rule: double -> 2x" in solve[0]
    assert "classify: Text: <text> Operation: double or triple?" in solve[0]
