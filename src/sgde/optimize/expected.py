"""Expected values per node and row: what node-level supervision compares outputs with.

Sources, in order of precedence (the first value found for a (node, row, field) wins):

1. the gold outputs of the row, for the node a plan output reads (and the node a vote wraps);
2. lifted parameter values of extraction / parse nodes made by an offload;
3. the teacher's instrumented solutions: a variable of a verified solution named like a field
   of an LLM node (``category``, ``quantity``...) is that field's expected value — this is how
   an intermediate node of a multi-node workflow (classify → extract → compute → format) is
   supervised. Names match exactly, else case- and underscore-insensitively.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sgde.optimize.supervision import Solution, expected_values
from sgde.plan.model import ConsensusNode, LlmNode, Plan

__all__ = ["carry_expected", "plan_expected"]

Expected = dict[str, list[dict[str, Any] | None]]


def _norm(name: str) -> str:
    return name.replace("_", "").lower()


def _intermediates(solutions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Variables of a row's verified solutions that every solution agrees on."""
    if not solutions:
        return {}
    first = dict(solutions[0].get("intermediates") or {})
    for other in solutions[1:]:
        values = other.get("intermediates") or {}
        for key in list(first):
            if key in values and values[key] != first[key]:
                del first[key]
    return first


def plan_expected(
    plan: Plan,
    rows: Sequence[Mapping[str, Any]],
    *,
    solutions: Sequence[Solution | None],
    row_solutions: Sequence[Sequence[Mapping[str, Any]]],
    lifted: Mapping[str, Sequence[Mapping[str, Any] | None]],
) -> Expected:
    """Expected field values per node and training row (``None``: unknown for that row)."""
    out = expected_values(plan, rows, solutions, lifted)
    wraps = {n.of: n.id for n in plan.nodes if isinstance(n, ConsensusNode)}
    for i in range(len(rows)):
        variables = _intermediates(row_solutions[i]) if i < len(row_solutions) else {}
        if not variables:
            continue
        by_norm = {_norm(k): v for k, v in variables.items()}
        for node in plan.nodes:
            if not isinstance(node, LlmNode):
                continue
            for fname in node.fields():
                if fname in variables:
                    value = variables[fname]
                elif _norm(fname) in by_norm:
                    value = by_norm[_norm(fname)]
                else:
                    continue
                for nid in (node.id, wraps.get(node.id)):
                    if nid is None:
                        continue
                    per_row = out.setdefault(nid, [None] * len(rows))
                    slot: dict[str, Any] = per_row[i] or {}
                    slot.setdefault(fname, value)
                    per_row[i] = slot
    return out


def carry_expected(
    before: Plan,
    after: Plan,
    expected: Mapping[str, Sequence[Mapping[str, Any] | None]],
    lifted: Mapping[str, list[dict[str, Any] | None]],
) -> dict[str, list[dict[str, Any] | None]]:
    """``lifted`` plus the expected values new LLM nodes of ``after`` inherit by field name
    from the nodes of ``before`` that the edit removed (a split extraction keeps its
    supervision field by field)."""
    out = dict(lifted)
    old_ids = set(before.node_ids())
    new_ids = set(after.node_ids())
    removed = [nid for nid in old_ids - new_ids if nid in expected]
    if not removed:
        return out
    for node in after.nodes:
        if node.id in old_ids or node.id in out or not isinstance(node, LlmNode):
            continue
        fields = node.fields()
        n_rows = max((len(expected[r]) for r in removed), default=0)
        per_row: list[dict[str, Any] | None] = []
        for i in range(n_rows):
            values: dict[str, Any] = {}
            for rid in removed:
                row = expected[rid][i] if i < len(expected[rid]) else None
                for f in fields:
                    if row and f in row:
                        values.setdefault(f, row[f])
            per_row.append(values or None)
        if any(v is not None for v in per_row):
            out[node.id] = per_row
    return out
