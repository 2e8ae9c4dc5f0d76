"""The search's parts with fakes: the operator registry, typed records, the accept rule,
placement thresholds (consensus for a student right 70 % of the time), plans built from
programs and parsers, expected values across edits, checkpoints, PAC and typed cold start."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sgde.errors import CompileError
from sgde.optimize.accept import decide
from sgde.optimize.checkpoint import CHECKPOINT_VERSION, Checkpoint
from sgde.optimize.coldstart import minimal_plan
from sgde.optimize.evaluate import PlanEval
from sgde.optimize.expected import carry_expected, plan_expected
from sgde.optimize.operators import Candidate, EditFailure
from sgde.optimize.operators.program_nodes import build_program_plan, replace_fields
from sgde.optimize.operators.registry import EditContext, OperatorRegistry, default_registry
from sgde.optimize.operators.topology import split_per_field
from sgde.optimize.pac import pac_statement
from sgde.optimize.placement import rank_proposals
from sgde.optimize.records import EditRecord, history_lines
from sgde.optimize.settings import CompileSettings
from sgde.optimize.state import LoopState
from sgde.optimize.supervision import node_statistics
from sgde.plan.model import CodeNode, ConsensusNode, LlmNode, Plan
from sgde.planfile import check_plan
from sgde.runtime.backend import Usage
from sgde.task import FieldType, TaskSpec


def _eval(loss: float, node: float | None, tokens: int = 100) -> PlanEval:
    return PlanEval(loss, [[1 - loss]], [[""]], [[{}]], [[{}]], [[]], tokens, Usage(), node)


# ---------------------------------------------------------------- accept rule


def test_accept_rule_keeps_an_offload_that_moves_the_error_into_the_extraction() -> None:
    current = _eval(1.0, 1.0)
    moved = _eval(1.0, 0.25)  # end-to-end tie: one field of four still wrong
    decision = decide(current, moved)
    assert decision.accepted and "node-level error 1.000 → 0.250" in decision.why
    assert decide(current, _eval(0.5, 0.9)).accepted  # the loss drops: always kept
    worse = decide(_eval(0.3, 0.3), _eval(0.6, 0.0))
    assert not worse.accepted and "node-level error 0.000 vs 0.300" in worse.why
    assert decide(_eval(0.0, None, 100), _eval(0.0, None, 50)).accepted  # cheaper
    assert not decide(_eval(0.5, 0.5, 100), _eval(0.5, 0.6, 10)).accepted  # node error up


def test_accept_rule_keeps_the_student_on_a_tie_with_code_that_fails_a_training_row() -> None:
    plan = Plan(name="p", inputs={"text": "string"}, outputs={}, nodes=[])
    three = PlanEval(1 / 3, [[1.0, 1.0, 0.0]], [[""] * 3], [[{}] * 3], [[{}] * 3], [[]], 0,
                     Usage(), 0.0)  # fmt: skip
    student = PlanEval(1 / 3, [[1.0, 0.0, 1.0]], [[""] * 3], [[{}] * 3], [[{}] * 3], [[]], 380,
                       Usage(), 1 / 3)  # fmt: skip
    partial = Candidate(plan, "offload", "solve", "code", details={"verified_rows": 2})
    full = Candidate(plan, "offload", "solve", "code", details={"verified_rows": 3})
    tie = decide(student, three, partial)  # no student call left, but a row wrong
    assert not tie.accepted and "its code fails 1 of 3 training rows" in tie.why
    assert decide(student, three, full).accepted  # verified everywhere: the tie-breaks apply
    assert decide(student, three).accepted  # an edit without code
    better = PlanEval(0.0, [[1.0, 1.0, 1.0]], [[""] * 3], [[{}] * 3], [[{}] * 3], [[]], 0, Usage())
    assert decide(student, better, partial).accepted  # a lower loss is kept


# ---------------------------------------------------------------- placement


def _one_node(temperature: float) -> Plan:
    node = LlmNode(
        id="label",
        inputs={"text": "input.text"},
        prompt="{{ text }}",
        temperature=temperature,
        output_schema={
            "type": "object",
            "properties": {"label": {"type": "string"}},
            "required": ["label"],
        },
    )
    return Plan(name="p", inputs={"text": "string"}, outputs={"label": "label.label"}, nodes=[node])


def _scripted_outputs(
    rows: int, repeats: int, p_right: float, *, greedy: bool, seed: int = 7
) -> tuple[list[list[dict[str, Any]]], dict[str, list[dict[str, Any] | None]]]:
    """Node outputs of a student right with probability ``p_right`` per sample."""
    rng = random.Random(seed)
    per_row_greedy = [rng.random() < p_right for _ in range(rows)]
    outputs = []
    for _ in range(repeats):
        rep = []
        for i in range(rows):
            right = per_row_greedy[i] if greedy else rng.random() < p_right
            rep.append({"label": {"label": f"gold{i}" if right else "other"}})
        outputs.append(rep)
    expected: dict[str, list[dict[str, Any] | None]] = {
        "label": [{"label": f"gold{i}"} for i in range(rows)]
    }
    return outputs, expected


@pytest.mark.parametrize("greedy", [True, False])
def test_placement_chooses_consensus_for_a_student_right_70_percent_of_the_time(
    greedy: bool,
) -> None:
    plan = _one_node(0.0 if greedy else 0.7)
    outputs, expected = _scripted_outputs(20, 2, 0.7, greedy=greedy)
    stats = node_statistics(plan, outputs, expected)
    ranked = rank_proposals(plan, stats, settings=CompileSettings(), computable=set())
    assert ranked[0].direction == "consensus", [p.direction for p in ranked]
    assert ranked[0].node_id == "label"


def test_placement_leaves_consensus_out_when_the_student_is_mostly_wrong() -> None:
    plan = _one_node(0.0)
    outputs, expected = _scripted_outputs(20, 2, 0.2, greedy=True)
    stats = node_statistics(plan, outputs, expected)
    ranked = rank_proposals(plan, stats, settings=CompileSettings(), computable=set())
    assert "consensus" not in [p.direction for p in ranked]
    assert ranked[-1].direction == "rewrite_prompt"


def test_majority_vote_over_five_samples_fixes_most_rows_at_70_percent() -> None:
    """The reason the consensus threshold holds: at p = 0.7 per sample, a 5-vote majority
    is right with p ≈ 0.84, so the vote is expected to beat the greedy answer."""
    rng = random.Random(3)
    trials = 4000
    right = sum(sum(rng.random() < 0.7 for _ in range(5)) >= 3 for _ in range(trials))
    assert 0.80 < right / trials < 0.88


def _extraction_plan(b_type: str) -> Plan:
    """An offload's shape: ``x_extract`` (fields a: integer, b: ``b_type``) -> ``x_compute``."""
    extract = LlmNode(
        id="x_extract",
        inputs={"text": "input.text"},
        prompt="{{ text }}",
        output_schema={
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": b_type}},
            "required": ["a", "b"],
        },
    )
    code = CodeNode(
        id="x_compute",
        inputs={"a": "x_extract.a", "b": "x_extract.b"},
        code="def run(a, b):\n    return {'answer': a}\n",
    )
    return Plan(
        name="p",
        inputs={"text": "string"},
        outputs={"answer": "x_compute.answer"},
        nodes=[extract, code],
    )


def test_placement_proposes_parse_after_a_rewrite_and_split_for_mixed_fields() -> None:
    plan = _extraction_plan("string")
    outputs = [[{"x_extract": {"a": 1, "b": "wrong"}}] * 3]
    expected: dict[str, list[dict[str, Any] | None]] = {"x_extract": [{"a": 1, "b": "b"}] * 3}
    stats = node_statistics(plan, outputs, expected)
    kw: dict[str, Any] = {"settings": CompileSettings(), "computable": set()}
    directions = [p.direction for p in rank_proposals(plan, stats, **kw)]
    assert "parse" not in directions and "split_fields" in directions
    after_rewrite = rank_proposals(
        plan, stats, extractions={"x_extract"}, rewritten={"x_extract"}, **kw
    )
    assert after_rewrite[0].direction == "parse"


def test_placement_proposes_parse_for_a_field_wrong_on_one_row_of_three() -> None:
    """A field wrong on 1 of 3 rows (0.33, under the offload threshold 0.34) is offered to
    verified parsing code first: readers cost no tokens, and the loss decides."""
    plan = _extraction_plan("integer")
    right, wrong = {"x_extract": {"a": 1, "b": 2}}, {"x_extract": {"a": 1, "b": 9}}
    outputs = [[right, wrong, right]]
    expected: dict[str, list[dict[str, Any] | None]] = {"x_extract": [{"a": 1, "b": 2}] * 3}
    stats = node_statistics(plan, outputs, expected)
    ranked = rank_proposals(
        plan, stats, settings=CompileSettings(), computable=set(), extractions={"x_extract"}
    )
    assert ranked[0].direction == "parse", [p.direction for p in ranked]
    strict = CompileSettings(parse_min_error=0.34)
    ranked = rank_proposals(
        plan, stats, settings=strict, computable=set(), extractions={"x_extract"}
    )
    assert "parse" not in [p.direction for p in ranked]


# ---------------------------------------------------------------- operators


def _wide_plan() -> Plan:
    fields = ["a", "b", "c"]
    extract = LlmNode(
        id="extract",
        inputs={"question": "input.question"},
        prompt="{{ question }}",
        output_schema={
            "type": "object",
            "properties": {f: {"type": "integer", "description": f"the {f}"} for f in fields},
            "required": fields,
        },
    )
    code = CodeNode(
        id="compute",
        inputs={f: f"extract.{f}" for f in fields},
        code="def run(a, b, c):\n    return {'answer': a + b + c}\n",
    )
    return Plan(
        name="wide",
        inputs={"question": "string"},
        outputs={"answer": "compute.answer"},
        nodes=[extract, code],
    )


def test_split_per_field_makes_one_call_per_field_and_keeps_supervision() -> None:
    plan = _wide_plan()
    edit = split_per_field(plan, "extract")
    assert isinstance(edit, Candidate), edit
    assert edit.direction == "split_fields"
    assert [n.id for n in edit.plan.nodes] == ["extract_a", "extract_b", "extract_c", "compute"]
    node_b = edit.plan.node("extract_b")
    assert isinstance(node_b, LlmNode) and node_b.fields() == ["b"]
    assert node_b.output_schema is not None
    assert node_b.output_schema["properties"]["b"]["description"] == "the b"
    compute = edit.plan.node("compute")
    assert isinstance(compute, CodeNode) and compute.inputs["c"] == "extract_c.c"
    check_plan(edit.plan)
    expected = {"extract": [{"a": 1, "b": 2, "c": 3}, None]}
    carried = carry_expected(plan, edit.plan, expected, {})
    assert carried["extract_b"] == [{"b": 2}, None]
    assert isinstance(split_per_field(edit.plan, "extract_a"), EditFailure)


@dataclass(frozen=True)
class FakeProgram:
    code: str
    params: dict[str, FieldType]
    values: list[dict[str, Any] | None]
    raw_inputs: dict[str, str] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)
    origin: str = "whole"
    searched: int = 1
    verified_rows: int = 3
    contexts: dict[str, list[str]] = field(default_factory=dict)
    answers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FakeParser:
    code: str
    fields: list[str]
    verified_rows: int = 3
    searched: int = 2


def _date_plan() -> Plan:
    node = LlmNode(
        id="solve",
        inputs={"question": "input.question", "start": "input.start"},
        prompt="{{ question }} {{ start }}",
        output_schema={
            "type": "object",
            "properties": {"due": {"type": "string"}},
            "required": ["due"],
        },
    )
    return Plan(
        name="dates",
        inputs={"question": "string", "start": "string"},
        outputs={"due": "solve.due"},
        nodes=[node],
    )


def test_build_program_plan_wires_raw_inputs_and_types_the_extraction() -> None:
    plan = _date_plan()
    node = plan.node("solve")
    assert isinstance(node, LlmNode)
    program = FakeProgram(
        code="def run(start, days):\n    return {'due': start}\n",
        params={"start": FieldType.parse("date"), "days": FieldType.parse("integer")},
        values=[{"start": "2024-01-01", "days": 3}, None],
        raw_inputs={"start": "start"},
        descriptions={"days": "how many days are added, a whole number"},
    )
    built, problems = build_program_plan(plan, node, None, ["due"], program)
    assert built is not None, problems
    assert built.raw == {"start": "input.start"} and built.extracted == ["days"]
    extract = built.plan.node("solve_extract")
    assert isinstance(extract, LlmNode) and extract.output_schema is not None
    days = extract.output_schema["properties"]["days"]
    assert days["type"] == "integer" and "whole number" in days["description"]
    assert "days (integer)" in extract.prompt
    compute = built.plan.node("solve_compute")
    assert isinstance(compute, CodeNode)
    assert compute.inputs == {"start": "input.start", "days": "solve_extract.days"}
    assert built.plan.outputs == {"due": "solve_compute.due"}
    assert built.lifted == {"solve_extract": [{"days": 3}, None]}
    assert not built.student_free
    check_plan(built.plan)


def test_a_program_fed_by_the_nodes_own_answer_keeps_the_node() -> None:
    # a classifier that abstains where it reads nothing takes the student's answer there
    plan = _date_plan()
    node = plan.node("solve")
    assert isinstance(node, LlmNode)
    program = FakeProgram(
        code="def run(start, student_due=None):\n    return {'due': student_due or start}\n",
        params={"start": FieldType.parse("string"), "student_due": FieldType.parse("string")},
        values=[{"start": "2024-01-01"}],
        raw_inputs={"start": "start"},
        answers={"student_due": "due"},
    )
    built, problems = build_program_plan(plan, node, None, ["due"], program)
    assert built is not None, problems
    assert [n.id for n in built.plan.nodes] == ["solve", "solve_compute"]
    assert built.extract_id is None and built.extracted == [] and not built.student_free
    compute = built.plan.node("solve_compute")
    assert isinstance(compute, CodeNode)
    # the node's answer feeds the code; everything downstream reads the code
    assert compute.inputs == {"start": "input.start", "student_due": "solve.due"}
    assert built.plan.outputs == {"due": "solve_compute.due"}
    check_plan(built.plan)


def test_a_program_over_raw_inputs_leaves_no_student_call() -> None:
    plan = _date_plan()
    node = plan.node("solve")
    assert isinstance(node, LlmNode)
    program = FakeProgram(
        code="def run(start):\n    return {'due': start}\n",
        params={"start": FieldType.parse("date")},
        values=[{"start": "2024-01-01"}],
        raw_inputs={"start": "start"},
    )
    built, _ = build_program_plan(plan, node, None, ["due"], program)
    assert built is not None and built.student_free
    assert [n.kind for n in built.plan.nodes] == ["code"]


def test_parser_replaces_the_fields_the_extraction_gets_wrong() -> None:
    plan = _wide_plan()
    parser = FakeParser(
        code="def run(question):\n    return {'b': 2}\n", fields=["b"], verified_rows=3
    )
    edited, problems, parse_id = replace_fields(plan, "extract", parser)
    assert edited is not None, problems
    assert parse_id == "extract_parse"
    extract = edited.node("extract")
    assert isinstance(extract, LlmNode) and extract.fields() == ["a", "c"]
    compute = edited.node("compute")
    assert isinstance(compute, CodeNode) and compute.inputs["b"] == "extract_parse.b"
    check_plan(edited)
    all_fields = FakeParser(
        code="def run(question):\n    return {'a': 1, 'b': 2, 'c': 3}\n", fields=["a", "b", "c"]
    )
    gone, _, _ = replace_fields(plan, "extract", all_fields)
    assert gone is not None and "extract" not in gone.node_ids()


class _Noop:
    name = "noop"

    def check(self, plan: Plan, node_id: str) -> str | None:
        return None if node_id == "solve" else "only solve"

    async def propose(self, ctx: EditContext) -> Candidate | EditFailure:
        return EditFailure("noop", ctx.node_id, "never edits")


def test_registry_is_the_one_place_to_add_an_operator() -> None:
    registry = default_registry([_Noop()])
    assert registry.names()[:2] == ("offload", "parse")
    assert "noop" in registry and "consensus" in registry and "split_fields" in registry
    op = registry.get("noop")
    assert op is not None and op.check(_date_plan(), "other") == "only solve"
    with pytest.raises(TypeError, match="Operator protocol"):
        OperatorRegistry([object()])  # type: ignore[list-item]
    consensus = registry.get("consensus")
    assert consensus is not None
    wrapped = Plan.model_validate(
        {
            **_one_node(0.0).model_dump(),
            "nodes": [
                _one_node(0.0).nodes[0].model_dump(),
                ConsensusNode(id="label_vote", of="label", n=3).model_dump(),
            ],
            "outputs": {"label": "label_vote.label"},
        }
    )
    assert "already wrapped" in (consensus.check(wrapped, "label") or "")


# ---------------------------------------------------------------- expected values


def test_intermediate_nodes_get_expected_values_from_named_solution_variables() -> None:
    classify = LlmNode(
        id="classify",
        inputs={"text": "input.text"},
        prompt="{{ text }}",
        output_schema={"type": "object", "properties": {"category": {"type": "string"}}},
    )
    extract = LlmNode(
        id="extract",
        inputs={"text": "input.text", "category": "classify.category"},
        prompt="{{ text }} {{ category }}",
        output_schema={"type": "object", "properties": {"unit_price": {"type": "number"}}},
    )
    compute = CodeNode(
        id="compute",
        inputs={"p": "extract.unit_price"},
        code="def run(p):\n    return {'answer': p}\n",
    )
    plan = Plan(
        name="multi",
        inputs={"text": "string"},
        outputs={"answer": "compute.answer"},
        nodes=[classify, extract, compute],
    )
    rows = [{"text": "a", "answer": 3.0}, {"text": "b", "answer": 4.0}]
    row_solutions = [
        [{"intermediates": {"category": "book", "UnitPrice": 3.0}}],
        [
            {"intermediates": {"category": "food", "unit_price": 4.0}},
            {"intermediates": {"category": "drink", "unit_price": 4.0}},  # disagrees: dropped
        ],
    ]
    expected = plan_expected(
        plan, rows, solutions=[None, None], row_solutions=row_solutions, lifted={}
    )
    assert expected["classify"] == [{"category": "book"}, None]
    assert expected["extract"] == [{"unit_price": 3.0}, {"unit_price": 4.0}]
    assert expected["compute"] == [{"answer": 3.0}, {"answer": 4.0}]


# ---------------------------------------------------------------- records, state, checkpoint


def test_edit_records_round_trip_and_read_as_lines() -> None:
    rec = EditRecord(
        iteration=2,
        direction="offload",
        node_id="solve",
        outcome="rejected",
        summary="offload solve to a whole program",
        reason="loss 1.000 vs 0.667",
        loss_before=0.667,
        loss_after=1.0,
        node_loss_before=0.5,
        node_loss_after=0.25,
    )
    assert EditRecord.from_dict(json.loads(json.dumps(rec.to_dict()))) == rec
    failed = EditRecord(2, "parse", "x", "failed", "a field is wrong", "no parser verified")
    lines = history_lines([rec, failed])
    assert lines == [
        "offload solve to a whole program was rejected: loss 1.000 vs 0.667",
        "parse on x failed: no parser verified",
    ]
    assert history_lines([rec, failed], direction="parse") == lines[1:]
    with pytest.raises(ValueError, match="lacks"):
        EditRecord.from_dict({"iteration": 1})


def test_loop_state_round_trips_through_a_checkpoint(tmp_path: Path) -> None:
    state = LoopState(
        iteration=3,
        loss=0.25,
        history=[EditRecord(1, "consensus", "solve", "accepted", "vote", "loss improved")],
        lifted={"solve_extract": [{"a": 1}, None]},
        searched=12,
        searched_by={"enumerative": 10, "whole": 2},
        student_usage=Usage(10, 5, 2, 0.0),
    )
    ckpt = Checkpoint(tmp_path)
    ckpt.save(_wide_plan(), state.to_dict())
    plan, data = ckpt.load()
    assert data["schema_version"] == CHECKPOINT_VERSION == 2
    back = LoopState.from_dict(data)
    assert back.history == state.history and back.lifted == state.lifted
    assert back.searched_by == {"enumerative": 10, "whole": 2}
    assert back.student_usage.total_tokens == 15
    assert plan.name == "wide"


def test_an_old_checkpoint_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    ckpt = Checkpoint(tmp_path)
    ckpt.save(_wide_plan(), {"iteration": 1})
    data = json.loads(ckpt.state_path.read_text())
    data["schema_version"] = 1
    ckpt.state_path.write_text(json.dumps(data))
    with pytest.raises(CompileError, match="older sgde") as info:
        ckpt.load()
    assert "without --resume" in (info.value.hint or "")


# ---------------------------------------------------------------- PAC, cold start


def test_pac_counts_the_enumerative_search_as_a_larger_class() -> None:
    small = pac_statement(m=5, hypotheses=4, delta=0.05, consistent=True, ln_inv_prior=1.0)
    big = pac_statement(
        m=5,
        hypotheses=4 + 50_000,
        delta=0.05,
        consistent=True,
        ln_inv_prior=1.0,
        sources={"enumerative": 50_000},
    )
    assert big.epsilon_finite is not None and small.epsilon_finite is not None
    assert big.epsilon_finite > small.epsilon_finite
    assert "50000 enumerative" in big.text() and "enumerative search alone" in big.text()
    assert big.to_dict()["sources"] == {"enumerative": 50_000}


def test_cold_start_outputs_follow_the_task_types() -> None:
    task = TaskSpec(
        description="Label the review and give the due date.",
        inputs={"review": FieldType.parse("string"), "days": FieldType.parse("integer")},
        outputs={
            "label": FieldType.parse("enum[pos,neg]"),
            "due": FieldType.parse("date"),
        },
    )
    plan = minimal_plan(task)
    check_plan(plan)
    node = plan.node("solve")
    assert isinstance(node, LlmNode) and node.output_schema is not None
    props = node.output_schema["properties"]
    assert props["label"]["enum"] == ["pos", "neg"] and props["label"]["type"] == "string"
    assert props["due"]["type"] == "string"
    assert all(p.get("type") != "number" for p in props.values())
    assert plan.inputs == {"review": "string", "days": "integer"}
    assert plan.outputs == {"label": "solve.label", "due": "solve.due"}
    assert TaskSpec.from_metadata(plan.metadata["task"]) == task


async def test_a_second_draft_without_the_inputs_gets_them_appended() -> None:
    from _optimize_fakes import FakeTeacher

    from sgde.optimize.coldstart import cold_start
    from sgde.optimize.teacher import Teacher

    fake = FakeTeacher(
        coldstart=[
            {"name": "count", "system": "Count.", "prompt": "Count the letter r."},
            {"name": "count", "system": "Count.", "prompt": "How many r? Answer in JSON."},
        ]
    )
    task = TaskSpec(
        description="Count the letter r in the word.",
        inputs={"word": FieldType.parse("string")},
        outputs={"answer": FieldType.parse("integer")},
    )
    plan, record = await cold_start(
        task,
        [{"word": "carrot", "answer": 2}],
        teacher=Teacher(fake.backend),
        settings=CompileSettings(),
    )
    assert record["source"] == "teacher" and fake.seen == ["coldstart", "coldstart"]
    node = plan.node("solve")
    assert isinstance(node, LlmNode) and node.prompt.endswith("Word: {{ word }}")
    assert record["repairs"] == ["appended the input(s) word to the draft's prompt"]


def test_extraction_descriptions_never_show_the_seed_rows_values() -> None:
    plan = _date_plan()
    node = plan.node("solve")
    assert isinstance(node, LlmNode)
    program = FakeProgram(
        code="def run(days):\n    return {'due': '2024-01-01'}\n",
        params={"days": FieldType.parse("integer")},
        values=[{"days": 49}, {"days": 9}],
        descriptions={"days": 'the days (in "add 49 days to 2024-06-12")'},
    )
    built, _ = build_program_plan(plan, node, None, ["due"], program)
    assert built is not None
    extract = built.plan.node("solve_extract")
    assert isinstance(extract, LlmNode) and extract.output_schema is not None
    desc = extract.output_schema["properties"]["days"]["description"]
    assert desc == 'the days (in "add ___ days to N-N-N")'
    assert "49" not in extract.prompt


def test_split_and_parse_drop_the_prompt_lines_of_fields_the_node_no_longer_gives() -> None:
    """After a split (or a parse moving fields to code) each extraction's prompt lists only the
    fields its schema still asks for; other lines stay."""
    plan = _wide_plan()
    node = plan.node("extract")
    assert isinstance(node, LlmNode)
    listed = (
        "Text: {{ question }}\n\nFill each field:\n"
        "- a (integer): the a\n- b: the b\n- c (integer): the c"
    )
    plan = plan.model_copy(
        update={"nodes": [node.model_copy(update={"prompt": listed}), plan.nodes[1]]}
    )
    edit = split_per_field(plan, "extract")
    assert isinstance(edit, Candidate), edit
    node_b = edit.plan.node("extract_b")
    assert isinstance(node_b, LlmNode)
    assert node_b.prompt == "Text: {{ question }}\n\nFill each field:\n- b: the b"
    parsed, problems, _ = replace_fields(
        plan, "extract", FakeParser("def run(question):\n    return {'a': 1, 'c': 2}\n", ["a", "c"])
    )
    assert parsed is not None, problems
    kept = parsed.node("extract")
    assert isinstance(kept, LlmNode) and kept.prompt.endswith("Fill each field:\n- b: the b")
