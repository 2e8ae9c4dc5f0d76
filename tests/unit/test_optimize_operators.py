"""Edit operators: prompt rewrite, offload (solve-then-lift + verify + repair), consensus,
topology."""

from __future__ import annotations

from typing import Any

import pytest
from _optimize_fakes import (
    BAD_SOLUTION,
    GOOD_RUN,
    ROWS,
    FakeTeacher,
    InProcessRunner,
    single_plan,
    student_backend,
)

from sgde.optimize.operators import (
    Candidate,
    EditFailure,
    change_topology,
    offload,
    prune_unused,
    rewrite_prompt,
    split_node,
    unwrap_consensus,
    wrap_consensus,
)
from sgde.optimize.operators.rewrite_prompt import instructions_first
from sgde.optimize.settings import CompileSettings
from sgde.optimize.supervision import row_text, solve_examples
from sgde.optimize.teacher import Teacher
from sgde.plan.model import CodeNode, ConsensusNode, LlmNode, Plan
from sgde.planfile import check_plan
from sgde.runtime.executor import Executor


def _golds() -> list[Any]:
    return [r["answer"] for r in ROWS]


async def _offload(fake: FakeTeacher, settings: CompileSettings) -> tuple[Any, Teacher]:
    plan = single_plan()
    teacher = Teacher(fake.backend)
    runner = InProcessRunner()
    texts = [row_text(plan, r) for r in ROWS]
    solutions = await solve_examples(
        teacher,
        runner,
        texts,
        _golds(),
        attempts=settings.solve_attempts,
        temperature=0.7,
        seed=0,
    )
    edit = await offload(
        plan,
        "solve",
        teacher=teacher,
        sandbox=runner,
        rows=ROWS,
        golds=_golds(),
        solutions=solutions,
        settings=settings,
        seed=0,
    )
    return edit, teacher


async def test_offload_builds_extract_then_verified_code() -> None:
    fake = FakeTeacher()
    edit, _ = await _offload(fake, CompileSettings())
    assert isinstance(edit, Candidate), edit
    plan = edit.plan
    assert [n.id for n in plan.nodes] == ["solve_extract", "solve_compute"]
    extract, compute = plan.nodes
    assert isinstance(extract, LlmNode) and isinstance(compute, CodeNode)
    assert list(extract.output_schema["properties"]) == ["eggs_per_day", "eaten", "baked", "price"]
    assert extract.output_schema["properties"]["price"]["type"] == "integer"
    assert "___" in extract.output_schema["properties"]["price"]["description"]
    assert plan.outputs == {"answer": "solve_compute.answer"}
    assert compute.inputs["price"] == "solve_extract.price"
    # expected values of the new extraction node: the lifted parameters per row
    assert edit.lifted["solve_extract"][1] == {
        "eggs_per_day": 1600,
        "eaten": 31,
        "baked": 47,
        "price": 7,
    }
    check_plan(plan)
    # end to end with a student that copies numbers: every row right
    results = await Executor({"student": student_backend()}, sandbox=InProcessRunner()).run_batch(
        plan, ROWS
    )
    assert [r.outputs["answer"] for r in results] == _golds()
    assert fake.seen.count("repair") == 0


async def test_offload_repairs_a_failing_first_attempt() -> None:
    fake = FakeTeacher(solution=BAD_SOLUTION)
    edit, _ = await _offload(fake, CompileSettings(offload_candidates=1, repair_rounds=2))
    assert isinstance(edit, Candidate), edit
    assert edit.details["repairs"] == 1
    assert "repair" in fake.seen
    compute = edit.plan.node("solve_compute")
    assert isinstance(compute, CodeNode) and compute.code == GOOD_RUN.replace("\n\n", "\n")


async def test_offload_without_verified_code_says_why() -> None:
    fake = FakeTeacher(solution=BAD_SOLUTION, repair="```python\ndef run(x):\n    return 1\n```")
    edit, _ = await _offload(fake, CompileSettings(offload_candidates=1, repair_rounds=1))
    assert isinstance(edit, EditFailure)
    assert "no verified code" in edit.reason
    assert any("must take exactly" in line for line in edit.details["log"])


async def test_rewrite_prompt_retries_an_invalid_template() -> None:
    fake = FakeTeacher(
        rewrite=[
            {"system": "s", "prompt": "Answer {{ nope }}"},
            {"system": "Copy carefully.", "prompt": "Q: {{ question }}\nAnswer as JSON."},
        ]
    )
    plan = single_plan()
    edit = await rewrite_prompt(
        plan,
        "solve",
        teacher=Teacher(fake.backend),
        failures=[],
        diagnosis="wrong",
        history=["earlier rewrite was rejected"],
    )
    assert isinstance(edit, Candidate), edit
    node = edit.plan.node("solve")
    assert isinstance(node, LlmNode) and node.prompt.startswith("Q: {{ question }}")
    assert fake.seen == ["rewrite", "rewrite"]
    assert single_plan().node("solve").prompt == "Question: {{ question }}"  # input untouched


async def test_rewrite_prompt_gives_up_cleanly() -> None:
    fake = FakeTeacher(rewrite=[{"system": "s", "prompt": "{{ nope }}"}] * 3)
    edit = await rewrite_prompt(
        single_plan(),
        "solve",
        teacher=Teacher(fake.backend, retries=2),
        failures=[],
        diagnosis="wrong",
        history=[],
    )
    assert isinstance(edit, EditFailure) and "variables" in edit.reason


async def test_rewrite_prompt_asks_one_rewrite_per_layout_as_variants() -> None:
    a = {"system": "Copy.", "prompt": "Q: {{ question }}"}
    b = {"system": "Rules.", "prompt": "Rules first.\n{{ question }}\nWhich?"}
    fake = FakeTeacher(rewrite=[a, a, {"system": "Look.", "prompt": "{{ question }} Look."}, b])
    edit = await rewrite_prompt(
        single_plan(),
        "solve",
        teacher=Teacher(fake.backend, retries=2),
        failures=[],
        diagnosis="wrong",
        history=[],
        candidates=3,
    )
    assert isinstance(edit, Candidate), edit
    # the repeated answer went back to the teacher: every variant is distinct
    names = [v.name for v in edit.variants]
    assert names == ["direct", "rules-first", "look-for"]
    prompts = [v.plan.node("solve").prompt for v in edit.variants]  # type: ignore[union-attr]
    assert prompts == [
        "Q: {{ question }}",
        "{{ question }} Look.",
        "Rules first.\n{{ question }}\nWhich?",
    ]
    assert edit.proposals == 3 and edit.details["variant_kind"] == "rewrites"
    assert "first the rules" in fake.prompts[1] and "first the rules" not in fake.prompts[0]
    assert "what to look for" in fake.prompts[-1]


async def test_rewrite_prompt_keeps_the_layouts_that_answered() -> None:
    good = {"system": "Copy.", "prompt": "Q: {{ question }}"}
    fake = FakeTeacher(rewrite=[good] + [{"system": "s", "prompt": "{{ nope }}"}] * 6)
    edit = await rewrite_prompt(
        single_plan(),
        "solve",
        teacher=Teacher(fake.backend, retries=2),
        failures=[],
        diagnosis="wrong",
        history=[],
        candidates=3,
    )
    assert isinstance(edit, Candidate) and not edit.variants
    assert edit.details["style"] == "direct"


def test_instructions_first_moves_the_input_last() -> None:
    prompt = "Complaint: {{ message }}\n\nReason: damaged, late or wrong_item?"
    assert instructions_first(prompt) == (
        "Reason: damaged, late or wrong_item?\n\nComplaint: {{ message }}"
    )
    assert instructions_first("Rules.\n\nText: {{ x }}") is None  # already last
    assert instructions_first("Text: {{ x }}") is None
    assert instructions_first("{% for a in xs %}{{ a }}\n\n{% endfor %}Done.") is None


async def test_rewrite_prompt_adds_sgdes_own_layout_as_a_variant() -> None:
    plan = single_plan()
    node = plan.node("solve")
    assert isinstance(node, LlmNode)
    two = node.model_copy(update={"prompt": "Question: {{ question }}\n\nAnswer with a number."})
    plan = plan.model_copy(update={"nodes": [two]})
    fake = FakeTeacher(rewrite=[{"system": "s", "prompt": "{{ nope }}"}] * 3)
    edit = await rewrite_prompt(
        plan,
        "solve",
        teacher=Teacher(fake.backend, retries=2),
        failures=[],
        diagnosis="wrong",
        history=[],
    )
    # the teacher's answer stayed invalid; sgde's own layout needs no model call
    assert isinstance(edit, Candidate), edit
    assert edit.details["style"] == "instructions-first"
    moved = edit.plan.node("solve")
    assert isinstance(moved, LlmNode)
    assert moved.prompt == "Answer with a number.\n\nQuestion: {{ question }}"


def test_consensus_wrap_rewires_references() -> None:
    plan = single_plan()
    edit = wrap_consensus(plan, "solve", n=5, temperature=0.7)
    assert isinstance(edit, Candidate)
    vote = edit.plan.node("solve_vote")
    assert isinstance(vote, ConsensusNode) and vote.of == "solve" and vote.n == 5
    assert edit.plan.outputs == {"answer": "solve_vote.answer"}
    assert isinstance(wrap_consensus(edit.plan, "solve", n=5, temperature=0.7), EditFailure)
    back = unwrap_consensus(edit.plan, "solve_vote")
    assert isinstance(back, Candidate) and back.plan.outputs == {"answer": "solve.answer"}


def _wide_plan() -> Plan:
    fields = ["a", "b", "c", "d", "e"]
    extract = LlmNode(
        id="extract",
        inputs={"question": "input.question"},
        prompt="{{ question }}",
        output_schema={
            "type": "object",
            "properties": {f: {"type": "integer"} for f in fields},
            "required": fields,
        },
    )
    code = CodeNode(
        id="compute",
        inputs={f: f"extract.{f}" for f in fields},
        code="def run(a, b, c, d, e):\n    return {'answer': a + b + c + d + e}\n",
    )
    return Plan(
        name="wide",
        inputs={"question": "string"},
        outputs={"answer": "compute.answer"},
        nodes=[extract, code],
    )


def test_topology_split_keeps_every_field_wired() -> None:
    edit = split_node(_wide_plan(), "extract")
    assert isinstance(edit, Candidate), edit
    plan = edit.plan
    assert [n.id for n in plan.nodes] == ["extract_a", "extract_b", "compute"]
    compute = plan.node("compute")
    assert isinstance(compute, CodeNode)
    assert compute.inputs["a"] == "extract_a.a" and compute.inputs["e"] == "extract_b.e"
    first = plan.node("extract_a")
    assert isinstance(first, LlmNode) and first.fields() == ["a", "b", "c"]
    check_plan(plan)


def test_topology_prunes_dead_nodes_first() -> None:
    plan = _wide_plan()
    dead = LlmNode(id="unused", inputs={"question": "input.question"}, prompt="{{ question }}")
    with_dead = plan.model_copy(update={"nodes": [*plan.nodes, dead]})
    edit = change_topology(with_dead, "extract")
    assert isinstance(edit, Candidate) and "unused" in edit.summary
    assert "unused" not in edit.plan.node_ids()
    assert isinstance(prune_unused(plan), EditFailure)


@pytest.mark.parametrize("node_id", ["missing", "compute"])
def test_operators_refuse_bad_targets(node_id: str) -> None:
    plan = _wide_plan()
    assert isinstance(wrap_consensus(plan, node_id, n=3, temperature=0.7), EditFailure)
    assert isinstance(split_node(plan, node_id), EditFailure)
