"""What every operator returns, and the plan-surgery helpers they share."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from sgde.errors import PlanError
from sgde.plan.model import CodeNode, ConsensusNode, LlmNode, Plan
from sgde.plan.refs import parse_ref
from sgde.planfile import check_plan
from sgde.runtime.sandbox.policy import check_source

__all__ = [
    "Candidate",
    "EditFailure",
    "Variant",
    "drop_field_lines",
    "rewire",
    "unique_id",
    "validated",
]

AnyNode = LlmNode | CodeNode | ConsensusNode


@dataclass(frozen=True)
class Variant:
    """One version of an edit that differs from the others only in one node's prompt.

    Attributes:
        name: What sets it apart (``described``, ``snippet``...).
        plan: The edited plan with this version of the node.
        node_id: The node whose prompt varies.
        size: Characters of that node's prompt (a tie goes to the shorter).
    """

    name: str
    plan: Plan
    node_id: str
    size: int


@dataclass(frozen=True)
class Candidate:
    """A validated edit of the plan, ready to be scored.

    Attributes:
        plan: The edited plan (a new object; the input plan is untouched).
        direction: The operator that made it.
        node_id: The node it changed.
        summary: One line for history and report.
        details: Operator-specific detail (code, lifted parameters, attempts...).
        lifted: Expected values of new extraction nodes (``node_id -> per-row values``).
        proposals: Candidate plans the operator built and checked (for ``|H|``).
        variants: Versions of the edit that differ in one node's prompt; the loop scores
            each on the training rows and keeps the one whose node errs least
            (``plan`` is the first; empty: a single version).
    """

    plan: Plan
    direction: str
    node_id: str
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    lifted: dict[str, list[dict[str, Any] | None]] = field(default_factory=dict)
    proposals: int = 1
    variants: tuple[Variant, ...] = ()


@dataclass(frozen=True)
class EditFailure:
    """An operator found no valid edit; ``reason`` says why (goes into the history)."""

    direction: str
    node_id: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    proposals: int = 0


def drop_field_lines(prompt: str, fields: Collection[str]) -> str:
    """``prompt`` without the list lines that ask for one of ``fields`` (``- days (integer):
    ...``, ``- days: the number in "..."``): after a split or a parse moved those fields to
    another node, a prompt still asking for them would make the student fill fields its schema
    no longer has. Other lines are kept as they are."""
    if not fields:
        return prompt
    names = "|".join(re.escape(f) for f in sorted(fields, key=len, reverse=True))
    line = re.compile(rf"^\s*-\s*(?:{names})\s*[(:]")
    return "\n".join(x for x in prompt.split("\n") if not line.match(x))


def unique_id(plan: Plan, base: str) -> str:
    """``base`` or ``base_2``, ``base_3``... whichever is not a node id of ``plan``."""
    taken = set(plan.node_ids()) | {"input"}
    if base not in taken:
        return base
    k = 2
    while f"{base}_{k}" in taken:
        k += 1
    return f"{base}_{k}"


def rewire(
    plan: Plan,
    mapping: Callable[[str, str], str | None],
    *,
    nodes: list[AnyNode] | None = None,
    skip: set[str] | None = None,
) -> Plan:
    """Return ``plan`` with references rewritten.

    Args:
        plan: The plan.
        mapping: ``(source, field) -> new reference`` or ``None`` to keep a reference.
        nodes: Node list to use instead of ``plan.nodes``.
        skip: Node ids whose inputs are left as they are.
    """

    def fix(refs: Mapping[str, str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, text in refs.items():
            try:
                ref = parse_ref(text)
            except ValueError:
                out[key] = text
                continue
            new = mapping(ref.source, ref.field)
            out[key] = new if new is not None else text
        return out

    new_nodes: list[AnyNode] = []
    for node in nodes if nodes is not None else list(plan.nodes):
        if isinstance(node, (LlmNode, CodeNode)) and node.id not in (skip or set()):
            node = node.model_copy(update={"inputs": fix(node.inputs)})
        new_nodes.append(node)
    return plan.model_copy(update={"nodes": new_nodes, "outputs": fix(plan.outputs)})


def validated(plan: Plan) -> tuple[Plan | None, list[str]]:
    """``(plan, [])`` when it passes :func:`check_plan`, else ``(None, problems)``."""
    try:
        rebuilt = Plan.model_validate(plan.model_dump())
        check_plan(rebuilt, code_policy=check_source)
    except PlanError as exc:
        return None, [p.format() for p in exc.problems] or [exc.message]
    except ValueError as exc:
        return None, [str(exc)]
    return rebuilt, []
