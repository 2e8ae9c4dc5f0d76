"""Backward pass: the teacher's semantic gradient over failing traces and node statistics.

The teacher returns ``{node_id, diagnosis, direction, rationale}`` (JSON schema,
grammar-constrained where possible). sgde's statistics take the decision
(:mod:`sgde.optimize.placement`); the critique is the explanation that goes into the report
and into the rewrite prompt. Disagreements between the two are logged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sgde.optimize.placement import DIRECTIONS, Proposal
from sgde.optimize.supervision import NodeStats
from sgde.optimize.teacher import Teacher, TeacherOutputError, render_prompt
from sgde.plan.model import CodeNode, ConsensusNode, LlmNode, Plan

__all__ = ["critique", "critique_schema", "failure_cases", "node_summary"]


def critique_schema(node_ids: Sequence[str]) -> dict[str, Any]:
    """JSON schema of a semantic gradient over the given node ids."""
    return {
        "type": "object",
        "properties": {
            "node_id": {"type": "string", "enum": list(node_ids)},
            "diagnosis": {"type": "string", "minLength": 1, "maxLength": 600},
            "direction": {"type": "string", "enum": list(DIRECTIONS)},
            "rationale": {"type": "string", "maxLength": 600},
        },
        "required": ["node_id", "diagnosis", "direction", "rationale"],
        "additionalProperties": False,
    }


def node_summary(node: LlmNode | CodeNode | ConsensusNode) -> str:
    """One line describing a node for the teacher."""
    if isinstance(node, LlmNode):
        instr = " ".join((node.system + " " + node.prompt).split())[:160]
        return f"student call producing {', '.join(node.fields())}; instruction: {instr}"
    if isinstance(node, CodeNode):
        return f"Python code computing from {', '.join(node.inputs)}"
    return f"majority vote over {node.n} samples of {node.of}"


def _short(value: Any, limit: int = 300) -> Any:
    text = value if isinstance(value, str) else repr(value)
    return value if len(text) <= limit else text[:limit] + "…"


def failure_cases(
    plan: Plan,
    rows: Sequence[Mapping[str, Any]],
    outputs: Sequence[Mapping[str, Mapping[str, Any] | None]],
    final: Sequence[Mapping[str, Any]],
    scores: Sequence[float],
    expected: Mapping[str, Sequence[Mapping[str, Any] | None]],
    *,
    limit: int,
) -> list[dict[str, Any]]:
    """Failing rows of one repeat, with each node's output next to its expected values."""
    cases: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        if scores[i] >= 1.0:
            continue
        node_lines = []
        for node in plan.nodes:
            got = outputs[i].get(node.id)
            exp_rows = expected.get(node.id)
            exp = exp_rows[i] if exp_rows and i < len(exp_rows) else None
            line = f"{node.id} -> {got if got is not None else 'FAILED'}"
            if exp:
                line += f" (expected {dict(exp)})"
            node_lines.append(_short(line, 400))
        cases.append(
            {
                "row": i,
                "inputs": {k: _short(row[k]) for k in plan.inputs if k in row},
                "expected": {k: row.get(k) for k in plan.outputs},
                "got": dict(final[i]),
                "nodes": node_lines,
            }
        )
        if len(cases) >= limit:
            break
    return cases


async def critique(
    plan: Plan,
    *,
    teacher: Teacher,
    stats: Mapping[str, NodeStats],
    failures: Sequence[dict[str, Any]],
    history: Sequence[str],
    proposal: Proposal,
) -> tuple[dict[str, Any] | None, str | None]:
    """Ask the teacher for the semantic gradient; ``(None, error)`` when it stays malformed."""
    node_ids = plan.node_ids()
    prompt = render_prompt(
        "critique.j2",
        nodes=[{"id": n.id, "kind": n.kind, "summary": node_summary(n)} for n in plan.nodes],
        stats=[s.describe() for s in stats.values()],
        failures=list(failures),
        history=list(history)[-5:],
        suggestion=f"{proposal.direction} on {proposal.node_id} ({proposal.reason})",
        node_ids=node_ids,
    )
    try:
        answer = await teacher.json(prompt, critique_schema(node_ids), purpose="critique")
    except TeacherOutputError as exc:
        return None, exc.message
    return answer, None
