"""Consensus members that differ in their prompt: plan format, fan-out, validation, the
operator, and the loop choosing them over temperature samples by training-row error."""

from __future__ import annotations

import re
from typing import Any

import pytest
from _optimize_fakes import FakeTeacher, InProcessRunner

from sgde.errors import Problem
from sgde.optimize import CompileSettings, compile_async
from sgde.optimize.operators.base import EditFailure
from sgde.optimize.operators.consensus import consensus_edit, prompt_members, wrap_consensus
from sgde.plan import plan_hash
from sgde.plan.hashing import canonical_json
from sgde.plan.model import ConsensusMember, ConsensusNode, LlmNode, Plan
from sgde.planfile import dump_plan, loads_plan, parse_plan, validate_plan
from sgde.runtime import Executor
from sgde.runtime.backend import Capabilities, ChatRequest
from sgde.runtime.consensus import fan_out
from sgde.testing import FunctionBackend

LABELS = {"type": "string", "enum": ["neg", "pos"]}

VOTED = """
schema_version: 1
name: review
inputs: {text: string}
outputs: {label: label_vote.label}
nodes:
  - id: label
    kind: llm
    model: student
    inputs: {text: input.text}
    system: Label the review.
    prompt: "Review: {{ text }}"
    output_schema:
      type: object
      properties: {label: {type: string, enum: [neg, pos]}}
      required: [label]
  - id: label_vote
    kind: consensus
    of: label
    n: 3
    temperature: 0.0
    members:
      - name: as-is
      - name: plain
        system: ""
        prompt: "Is this review pos or neg? {{ text }}"
      - name: warm
        system: Label the review; answer pos or neg.
        temperature: 0.4
"""


def _problems(text: str) -> list[Problem]:
    parsed = parse_plan(text)
    return validate_plan(parsed.plan, source_map=parsed.source_map)


def _label_node(system: str = "Label the item.") -> LlmNode:
    return LlmNode(
        id="label",
        inputs={"text": "input.text"},
        system=system,
        prompt="{{ text }}",
        output_schema={
            "type": "object",
            "properties": {"label": LABELS},
            "required": ["label"],
        },
    )


def _label_plan(system: str = "Label the item.") -> Plan:
    return Plan(
        name="labels",
        inputs={"text": "string"},
        outputs={"label": "label.label"},
        nodes=[_label_node(system)],
    )


def test_fan_out_asks_each_member_with_its_own_prompt_and_temperature() -> None:
    plan = loads_plan(VOTED)
    vote, wrapped = plan.node("label_vote"), plan.node("label")
    assert isinstance(vote, ConsensusNode) and isinstance(wrapped, LlmNode)
    samples = fan_out(vote, wrapped)
    assert [s.member for s in samples] == ["as-is", "plain", "warm"]
    assert [s.node.system for s in samples] == [
        "Label the review.",
        "",
        "Label the review; answer pos or neg.",
    ]
    assert [s.node.prompt for s in samples] == [
        "Review: {{ text }}",
        "Is this review pos or neg? {{ text }}",
        "Review: {{ text }}",
    ]
    assert [s.temperature for s in samples] == [0.0, 0.0, 0.4]
    plain = vote.model_copy(update={"members": [], "temperature": 0.7})
    assert [(s.member, s.temperature, s.node) for s in fan_out(plain, wrapped)] == [
        (None, 0.7, wrapped)
    ] * 3


async def test_executor_votes_over_members_and_traces_them() -> None:
    # The node's own prompt says "neg"; the two other members say "pos": only a fan-out
    # that really asks each member's prompt outvotes the bias.
    seen: list[tuple[str, str, float]] = []

    def reply(req: ChatRequest) -> dict[str, Any]:
        system = next((m.content for m in req.messages if m.role == "system"), "")
        user = req.messages[-1].content
        seen.append((system, user, req.temperature))
        return {"label": "neg" if system == "Label the review." else "pos"}

    backend = FunctionBackend(reply, capabilities=Capabilities(json_schema=True))
    executor = Executor({"student": backend}, sandbox=None)
    result = await executor.run(loads_plan(VOTED), {"text": "fine"})
    assert result.ok, result.error
    assert result.outputs == {"label": "pos"}
    assert sorted(seen) == [
        ("", "Is this review pos or neg? fine", 0.0),
        ("Label the review.", "Review: fine", 0.0),
        ("Label the review; answer pos or neg.", "Review: fine", 0.4),
    ]
    node = result.trace.node("label_vote")
    assert node is not None and node.vote is not None
    assert [s.member for s in node.samples] == ["as-is", "plain", "warm"]
    assert node.samples[0].to_dict()["member"] == "as-is"
    assert node.vote["tally"]["label"] == [['"pos"', 2], ['"neg"', 1]]


def test_members_round_trip_through_the_plan_file_and_keep_old_hashes() -> None:
    plan = loads_plan(VOTED)
    text = dump_plan(plan)
    assert "members:" in text and "name: plain" in text
    assert loads_plan(text) == plan
    without = plan.model_copy(
        update={
            "nodes": [
                plan.nodes[0],
                ConsensusNode(id="label_vote", of="label", n=3, temperature=0.7),
            ]
        }
    )
    assert '"members"' not in canonical_json(without)
    assert '"members"' in canonical_json(plan)
    assert plan_hash(plan) != plan_hash(without)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("    n: 3\n", "    n: 4\n", "n is 4 but 3 members are listed"),
        ("name: warm", "name: plain", "member name 'plain' is used twice"),
        ('{{ text }}"\n      - name: warm', '{{ txt }}"\n      - name: warm', "'txt' is not"),
    ],
)
def test_invalid_members_are_reported_on_their_field(old: str, new: str, message: str) -> None:
    assert old in VOTED
    problems = _problems(VOTED.replace(old, new))
    found = [p for p in problems if message in p.message and p.node_id == "label_vote"]
    assert found and found[0].line is not None, problems


def test_members_that_all_ask_the_same_at_temperature_zero_are_an_error() -> None:
    same = VOTED.split("    members:")[0] + "    members:\n      - name: a\n      - name: b\n"
    same = same.replace("    n: 3\n", "    n: 2\n")
    problems = _problems(same)
    assert [p.message for p in problems if "same prompt at temperature 0" in p.message]
    assert _problems(VOTED) == []


def test_prompt_members_of_a_label_node() -> None:
    members = prompt_members(_label_node(), 5)
    assert [m.name for m in members] == [
        "as-is",
        "labels-reversed",
        "labels-in-order",
        "in-prompt",
        "input-first",
    ]
    assert members[0] == ConsensusMember(name="as-is")
    assert members[1].system == "Label the item.\n\nAnswer `label` with one of: pos, neg."
    assert members[2].system == "Label the item.\n\nAnswer `label` with one of: neg, pos."
    assert (members[3].system, members[3].prompt) == ("", "Label the item.\n\n{{ text }}")
    assert (members[4].system, members[4].prompt) == ("", "{{ text }}\n\nLabel the item.")
    assert [m.name for m in prompt_members(_label_node(), 3)] == [
        "as-is",
        "labels-reversed",
        "labels-in-order",
    ]
    # No labels and no system prompt: nothing to vary, so no vote of prompt variants.
    bare = _label_node(system="").model_copy(update={"output_schema": None})
    assert len(prompt_members(bare, 5)) == 1


def test_consensus_edit_offers_both_member_kinds_ordered_by_agreement() -> None:
    plan = _label_plan()
    edit = consensus_edit(plan, "label", n=5, temperature=0.7, repeats_agree=True)
    assert not isinstance(edit, EditFailure)
    assert [v.name for v in edit.variants] == ["prompts", "temperature"]
    prompts, sampled = (v.plan.node("label_vote") for v in edit.variants)
    assert isinstance(prompts, ConsensusNode) and isinstance(sampled, ConsensusNode)
    assert prompts.n == len(prompts.members) == 5 and prompts.temperature == 0.0
    # the temperature vote: greedy first (it wins a tie), then samples at the temperature
    assert [(m.name, m.temperature) for m in sampled.members] == [
        ("greedy", 0.0),
        ("sample-1", None),
        ("sample-2", None),
        ("sample-3", None),
        ("sample-4", None),
    ]
    assert sampled.temperature == 0.7 and sampled.n == 5
    assert all(v.plan.outputs == {"label": "label_vote.label"} for v in edit.variants)
    assert all(_problems(dump_plan(v.plan)) == [] for v in edit.variants)
    other = consensus_edit(plan, "label", n=5, temperature=0.7, repeats_agree=False)
    assert not isinstance(other, EditFailure)
    assert [v.name for v in other.variants] == ["temperature", "prompts"]
    bare = plan.model_copy(
        update={"nodes": [_label_node(system="").model_copy(update={"output_schema": None})]}
    )
    bare = bare.model_copy(update={"outputs": {"label": "label.text"}})
    alone = consensus_edit(bare, "label", n=5, temperature=0.7, repeats_agree=True)
    assert not isinstance(alone, EditFailure) and alone.variants == ()
    assert isinstance(wrap_consensus(edit.plan, "label", n=5, temperature=0.7), EditFailure)


ROWS = [{"text": f"item number {i}", "label": "pos" if i % 2 else "neg"} for i in range(10)]


def _biased_student() -> FunctionBackend:
    """Each distinct prompt errs on its own fifth of the rows, every time it is asked
    (sampling repeats the bias): the node's own prompt is wrong on rows 0 and 5, so a
    temperature vote stays wrong there while a vote of five prompts is right everywhere."""
    prompts: dict[tuple[str, str], int] = {}

    def reply(req: ChatRequest) -> dict[str, Any]:
        system = next((m.content for m in req.messages if m.role == "system"), "")
        user = req.messages[-1].content
        match = re.search(r"item number (\d+)", user)
        assert match is not None, user
        i = int(match.group(1))
        key = (system, user.replace(match.group(0), "<row>"))
        index = prompts.setdefault(key, len(prompts))
        gold = ROWS[i]["label"]
        return {"label": ("pos" if gold == "neg" else "neg") if i % 5 == index % 5 else gold}

    return FunctionBackend(reply, name="fake:student", capabilities=Capabilities(json_schema=True))


async def test_the_loop_keeps_prompt_members_when_they_err_less_than_samples() -> None:
    result = await compile_async(
        _label_plan(),
        trainset=ROWS,
        teacher=FakeTeacher(solution="def solution():\n    return 0\n").backend,
        student=_biased_student(),
        sandbox=InProcessRunner(),
        settings=CompileSettings(max_iters=1, repeats=1),
    )
    first = result.report.iterations[0]
    assert first.proposal["direction"] == "consensus", first.proposal
    assert first.accepted, first.why
    assert "[members prompts: node error 0.000; temperature 0.200]" in (first.edit or "")
    assert result.report.initial_loss == pytest.approx(0.2)
    assert result.report.final_loss == 0.0
    vote = result.plan.node("label_vote")
    assert isinstance(vote, ConsensusNode)
    assert [m.name for m in vote.members] == [
        "as-is",
        "labels-reversed",
        "labels-in-order",
        "in-prompt",
        "input-first",
    ]
