"""Grounded votes: a copy that is not written in the text does not count in the vote of a
field the wrapped node copies; the compiler grounds the fields its supervision shows copied."""

from __future__ import annotations

from typing import Any

import pytest

from sgde.errors import Problem
from sgde.optimize.operators.base import Candidate
from sgde.optimize.operators.consensus import consensus_edit, grounded_fields
from sgde.plan import plan_hash
from sgde.plan.hashing import canonical_json
from sgde.plan.model import ConsensusNode, LlmNode, Plan
from sgde.planfile import dump_plan, loads_plan, parse_plan, validate_plan
from sgde.runtime import Executor
from sgde.runtime.backend import Capabilities, ChatRequest
from sgde.runtime.consensus import occurs_in, vote
from sgde.testing import FunctionBackend

TEXT = "Count how often R occurs in MIRROR. Price: $1,250.50 for 3 items."

EXTRACT = """
schema_version: 1
name: count
inputs: {text: string}
outputs: {letter: read_vote.letter, word: read_vote.word, note: read_vote.note}
nodes:
  - id: read
    kind: llm
    model: student
    inputs: {text: input.text}
    system: Copy the values.
    prompt: "{{ text }}"
    output_schema:
      type: object
      properties:
        letter: {type: string}
        word: {type: string}
        note: {type: string}
      required: [letter, word, note]
  - id: read_vote
    kind: consensus
    of: read
    n: 5
    temperature: 0.7
    grounded: [letter, word]
"""


@pytest.mark.parametrize(
    ("value", "occurs"),
    [
        ("R", True),
        ("r", True),  # case-folded
        ("mirror", True),
        ("MIRR", False),  # whole words only
        ("A", False),  # "a" is inside words here, never a word of its own
        ("", False),
        (",", False),  # punctuation is no value
        (" . ", False),
        ("how  often", True),  # whitespace collapsed
        (1250.5, True),
        ("1,250.50", True),
        (3, True),
        ("3", True),
        (4, False),
        (["R", "MIRROR"], True),
        (["R", "X"], False),
        ([], False),
        (True, False),
        (None, False),
        ({"a": 1}, False),
    ],
)
def test_occurs_in(value: Any, occurs: bool) -> None:
    assert occurs_in(value, [TEXT]) is occurs


def test_a_copy_not_in_the_text_does_not_count_in_a_grounded_field() -> None:
    samples: list[dict[str, Any] | None] = [
        {"letter": "A", "word": "MIRROR"},
        {"letter": "R", "word": "MIRROR"},
        {"letter": "A", "word": "MIRROR"},
        None,
        {"letter": "M", "word": "MIRR"},
    ]
    plain = vote(samples)
    assert plain.value == {"letter": "A", "word": "MIRROR"} and plain.ungrounded == {}
    grounded = vote(samples, grounded=["letter", "word"], texts=[TEXT])
    assert grounded.value == {"letter": "R", "word": "MIRROR"}
    assert grounded.tally["letter"] == [('"R"', 1)]
    assert grounded.ungrounded == {"letter": 3, "word": 1}
    assert grounded.valid == 4 and grounded.n == 5
    # only the fields named are grounded
    assert vote(samples, grounded=["word"], texts=[TEXT]).value["letter"] == "A"
    # when no sample's copy occurs, every sample counts as before
    nowhere = vote([{"l": "A"}, {"l": "B"}, {"l": "A"}], grounded=["l"], texts=[TEXT])
    assert nowhere.value == {"l": "A"} and nowhere.ungrounded == {}
    assert type(grounded).from_dict(grounded.to_dict()) == grounded


async def test_the_executor_grounds_a_vote_in_the_wrapped_nodes_text_inputs() -> None:
    # Three of five samples misread the letter as "A" (not a word of the text): the one
    # copy that is in the text wins whatever order the samples come in; "note" is not
    # grounded, so its majority stands.
    answers = iter(
        [
            {"letter": "A", "word": "MIRROR", "note": "x"},
            {"letter": "A", "word": "MIRROR", "note": "x"},
            {"letter": "R", "word": "MIRROR", "note": "y"},
            {"letter": "A", "word": "MIRROR", "note": "x"},
            {"letter": "Q", "word": "mirror", "note": "y"},
        ]
    )

    def reply(req: ChatRequest) -> dict[str, Any]:
        return next(answers)

    backend = FunctionBackend(reply, capabilities=Capabilities(json_schema=True))
    executor = Executor({"student": backend}, sandbox=None)
    result = await executor.run(loads_plan(EXTRACT), {"text": TEXT})
    assert result.ok, result.error
    assert result.outputs == {"letter": "R", "word": "MIRROR", "note": "x"}
    node = result.trace.node("read_vote")
    assert node is not None and node.vote is not None
    assert node.vote["ungrounded"] == {"letter": 4}


def test_grounded_round_trips_validates_and_keeps_old_hashes() -> None:
    plan = loads_plan(EXTRACT)
    text = dump_plan(plan)
    assert "    grounded: [letter, word]\n" in text
    assert loads_plan(text) == plan
    vote_node = plan.node("read_vote")
    assert isinstance(vote_node, ConsensusNode)
    ungrounded = plan.model_copy(
        update={"nodes": [plan.nodes[0], vote_node.model_copy(update={"grounded": []})]}
    )
    assert '"grounded"' not in canonical_json(ungrounded)
    assert plan_hash(plan) != plan_hash(ungrounded)
    parsed = parse_plan(EXTRACT.replace("grounded: [letter, word]", "grounded: [letter, lettr]"))
    problems: list[Problem] = validate_plan(parsed.plan, source_map=parsed.source_map)
    assert [p.field for p in problems] == ["grounded[1]"]
    assert "'lettr' is not a field of 'read'" in problems[0].message
    assert problems[0].line is not None


def _extract_plan() -> Plan:
    node = LlmNode(
        id="read",
        inputs={"text": "input.text"},
        system="Copy the values.",
        prompt="{{ text }}",
        output_schema={
            "type": "object",
            "properties": {
                "letter": {"type": "string"},
                "word": {"type": "string"},
                "unit_price": {"type": "number"},
                "kg": {"type": "number"},
            },
        },
    )
    return Plan(name="count", inputs={"text": "string"}, outputs={"kg": "read.kg"}, nodes=[node])


def test_the_compiler_grounds_the_fields_every_training_row_shows_copied() -> None:
    rows = [
        {"text": "Count how often R occurs in MIRROR. It costs 2.50 and weighs 1200 g."},
        {"text": "Word: Banana. Letter: a. It costs 3 and weighs 2 kg."},
        {"text": "How many e in 'referee'? It costs 4.25 and weighs 500 g."},
    ]
    expected: dict[str, list[dict[str, Any] | None]] = {
        "read": [
            {"letter": "R", "word": "MIRROR", "unit_price": 2.5, "kg": 1.2},
            {"letter": "a", "word": "Banana", "unit_price": 3, "kg": 2},
            None,  # unknown on this row: it neither grounds nor refutes
        ]
    }
    plan = _extract_plan()
    # kg is converted (1.2 is not written in row 1): not grounded
    assert grounded_fields(plan, "read", rows, expected) == ["letter", "word", "unit_price"]
    # one known row is not evidence enough
    one: dict[str, list[dict[str, Any] | None]] = {"read": [expected["read"][0], None, None]}
    assert grounded_fields(plan, "read", rows, one) == []
    # a node fed by another node's output is not judged
    fed = plan.model_copy(
        update={"nodes": [plan.nodes[0].model_copy(update={"inputs": {"text": "x.text"}})]}
    )
    assert grounded_fields(fed, "read", rows, expected) == []
    edit = consensus_edit(
        plan, "read", n=3, temperature=0.7, repeats_agree=True, grounded=["letter", "word"]
    )
    assert isinstance(edit, Candidate)
    voted = [n for n in edit.plan.nodes if isinstance(n, ConsensusNode)]
    assert voted and voted[0].grounded == ["letter", "word"]
