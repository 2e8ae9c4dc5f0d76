"""Node statistics (error, disagreement, majority accuracy) and placement rules."""

from __future__ import annotations

from _optimize_fakes import ROWS, FakeTeacher, InProcessRunner, single_plan

from sgde.optimize.placement import rank_proposals
from sgde.optimize.settings import CompileSettings
from sgde.optimize.supervision import expected_values, node_statistics, solve_examples
from sgde.optimize.teacher import Teacher
from sgde.plan.model import LlmNode, Plan


def _outs(values: list[list[float | None]]) -> list[list[dict[str, dict[str, float] | None]]]:
    """values[repeat][row] -> node outputs of the single 'solve' node."""
    return [[{"solve": None if v is None else {"answer": v}} for v in rep] for rep in values]


def test_statistics_error_disagreement_and_mode() -> None:
    plan = single_plan()
    gold = [r["answer"] for r in ROWS]
    expected = expected_values(plan, ROWS, [None] * 3)
    assert expected["solve"] == [{"answer": g} for g in gold]
    outputs = _outs(
        [
            [gold[0], gold[1], 0],
            [gold[0], 5, 0],
            [gold[0], gold[1], None],
        ]
    )
    st = node_statistics(plan, outputs, expected)["solve"]
    assert st.error_rate == 4 / 9  # row 3 always wrong (one failure), row 2 once
    assert st.disagreement == 2 / 3  # rows 2 and 3 differ across repeats
    assert st.mode_accuracy == 2 / 3
    assert st.failures == 1 / 9
    assert "error 44%" in st.describe()


def _stats(values: list[list[float | None]]) -> dict:
    plan = single_plan()
    return node_statistics(plan, _outs(values), expected_values(plan, ROWS, [None] * 3))


def test_placement_thresholds() -> None:
    plan = single_plan()
    gold = [r["answer"] for r in ROWS]
    s = CompileSettings()
    always_wrong = _stats([[0, 0, 0], [0, 0, 0]])
    ranked = rank_proposals(plan, always_wrong, settings=s, computable={"solve"})
    assert [p.direction for p in ranked] == ["offload", "rewrite_prompt"]
    ranked = rank_proposals(plan, always_wrong, settings=s, computable=set())
    assert [p.direction for p in ranked] == ["rewrite_prompt"]
    noisy = _stats([[gold[0], gold[1], gold[2]], [0, gold[1], 0], [gold[0], gold[1], gold[2]]])
    ranked = rank_proposals(plan, noisy, settings=s, computable=set())
    assert ranked[0].direction == "consensus"
    stricter = CompileSettings(consensus_min_disagreement=0.9, consensus_max_error=0.0)
    ranked = rank_proposals(plan, noisy, settings=stricter, computable=set())
    assert "consensus" not in [p.direction for p in ranked]
    perfect = _stats([gold, gold])
    # nothing at fault by the statistics: the fallback rewrites the node feeding the output
    fallback = rank_proposals(plan, perfect, settings=s, computable={"solve"})
    assert [(p.direction, p.node_id) for p in fallback] == [("rewrite_prompt", "solve")]
    assert "no supervised node at fault" in fallback[0].reason


def test_placement_splits_wide_nodes() -> None:
    fields = [f"f{i}" for i in range(6)]
    node = LlmNode(
        id="ex",
        inputs={"question": "input.question"},
        prompt="{{ question }}",
        output_schema={"type": "object", "properties": {f: {"type": "integer"} for f in fields}},
    )
    plan = Plan(
        name="w",
        inputs={"question": "string"},
        outputs={f: f"ex.{f}" for f in fields},
        nodes=[node],
    )
    rows = [{"question": "q", **{f: 1 for f in fields}}]
    expected = expected_values(plan, rows, [None])
    outputs = [[{"ex": {**{f: 1 for f in fields}, "f5": 2}}]]
    stats = node_statistics(plan, outputs, expected)
    assert stats["ex"].fields["f5"].error_rate == 1.0 and stats["ex"].fields["f0"].error_rate == 0
    ranked = rank_proposals(plan, stats, settings=CompileSettings(), computable=set())
    assert [p.direction for p in ranked] == ["split_fields", "topology", "rewrite_prompt"]


async def test_solutions_are_kept_only_when_they_reproduce_the_gold() -> None:
    runner = InProcessRunner()
    plan = single_plan()
    texts = [r["question"] for r in ROWS]
    golds = [r["answer"] for r in ROWS]
    good = await solve_examples(
        Teacher(FakeTeacher().backend), runner, texts, golds, attempts=1, temperature=0.7, seed=0
    )
    assert all(s is not None for s in good)
    assert good[1] is not None and good[1].variables["eaten"] == 31
    wrong_gold = await solve_examples(
        Teacher(FakeTeacher().backend),
        runner,
        texts,
        [g + 1 for g in golds],
        attempts=2,
        temperature=0.7,
        seed=0,
    )
    assert wrong_gold == [None, None, None]
    # variables of a verified solution supervise a node field with the same name
    exp = expected_values(
        plan.model_copy(
            update={
                "nodes": [
                    LlmNode(
                        id="solve",
                        inputs={"question": "input.question"},
                        prompt="{{ question }}",
                        output_schema={
                            "type": "object",
                            "properties": {
                                "answer": {"type": "number"},
                                "eaten": {"type": "integer"},
                            },
                        },
                    )
                ]
            }
        ),
        ROWS,
        good,
    )
    assert exp["solve"][1] == {"answer": golds[1], "eaten": 31}
