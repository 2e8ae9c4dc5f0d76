"""Topology changes: split a node with many fields, unwrap a consensus node, prune a node."""

from __future__ import annotations

from typing import Any

from sgde.optimize.operators.base import (
    Candidate,
    EditFailure,
    drop_field_lines,
    rewire,
    unique_id,
    validated,
)
from sgde.plan.model import ConsensusNode, LlmNode, Plan
from sgde.plan.refs import parse_ref

__all__ = [
    "change_topology",
    "prune_unused",
    "split_node",
    "split_per_field",
    "unwrap_consensus",
]


def split_node(plan: Plan, node_id: str) -> Candidate | EditFailure:
    """Split an LLM node with a schema of several fields into two nodes, half the fields each.

    Both halves keep the inputs, system prompt and template; each asks only for its fields,
    which shortens what a small student must emit in one go. References are rewired per
    field.
    """
    return _split(plan, node_id, per_field=False)


def split_per_field(plan: Plan, node_id: str) -> Candidate | EditFailure:
    """Split an LLM node (typically an extraction) into one call per output field.

    Each call keeps the inputs, system prompt and template and asks for one field, with that
    field's schema (type and description): a small student that copies one value at a time
    errs less than one filling a long schema. References are rewired per field.
    """
    return _split(plan, node_id, per_field=True)


def _split(plan: Plan, node_id: str, *, per_field: bool) -> Candidate | EditFailure:
    try:
        node = plan.node(node_id)
    except KeyError:
        return EditFailure("topology", node_id, f"the plan has no node {node_id!r}")
    if not isinstance(node, LlmNode) or node.output_schema is None:
        return EditFailure("topology", node_id, f"{node_id!r} is not an LLM node with a schema")
    if node_id in plan.wrapped_ids():
        return EditFailure("topology", node_id, f"{node_id!r} is wrapped by a consensus node")
    fields = node.fields()
    if len(fields) < 2:
        return EditFailure("topology", node_id, f"{node_id!r} has fewer than two fields")
    half = (len(fields) + 1) // 2
    parts = [[f] for f in fields] if per_field else [fields[:half], fields[half:]]
    schema = node.output_schema
    props: dict[str, Any] = dict(schema.get("properties", {}))
    required = list(schema.get("required", fields))
    ids: list[str] = []
    for part in parts:
        suffix = part[0] if per_field else ("a" if not ids else "b")
        nid = unique_id(plan, f"{node_id}_{suffix}")
        while nid in ids:
            nid = f"{nid}_x"
        ids.append(nid)
    new_nodes: list[LlmNode] = []
    owner: dict[str, str] = {}
    for nid, part in zip(ids, parts, strict=False):
        sub: dict[str, Any] = {
            **schema,
            "properties": {f: props[f] for f in part},
            "required": [f for f in required if f in part],
        }
        listing = ", ".join(part)
        new_nodes.append(
            node.model_copy(
                update={
                    "id": nid,
                    "output_schema": sub,
                    "description": f"{node.description or node_id} (fields: {listing})",
                    "system": (node.system + f"\nOnly give these fields: {listing}.").strip(),
                    "prompt": drop_field_lines(node.prompt, [f for f in fields if f not in part]),
                }
            )
        )
        owner.update({f: nid for f in part})
    nodes: list[Any] = []
    for n in plan.nodes:
        nodes.extend(new_nodes if n.id == node_id else [n])
    edited = rewire(
        plan,
        lambda src, fld: f"{owner[fld]}.{fld}" if src == node_id and fld in owner else None,
        nodes=nodes,
    )
    checked, problems = validated(edited)
    if checked is None:
        return EditFailure("topology", node_id, "; ".join(problems))
    listing = " and ".join(
        f"{nid} ({', '.join(part)})" for nid, part in zip(ids, parts, strict=False)
    )
    return Candidate(
        checked,
        "split_fields" if per_field else "topology",
        node_id,
        f"split {node_id} into {listing}",
        details={"split": dict(zip(ids, parts, strict=False))},
    )


def unwrap_consensus(plan: Plan, vote_id: str) -> Candidate | EditFailure:
    """Remove consensus node ``vote_id``; references go back to the node it wrapped."""
    try:
        vote = plan.node(vote_id)
    except KeyError:
        return EditFailure("topology", vote_id, f"the plan has no node {vote_id!r}")
    if not isinstance(vote, ConsensusNode):
        return EditFailure("topology", vote_id, f"{vote_id!r} is not a consensus node")
    nodes = [n for n in plan.nodes if n.id != vote_id]
    edited = rewire(
        plan, lambda src, fld: f"{vote.of}.{fld}" if src == vote_id else None, nodes=nodes
    )
    checked, problems = validated(edited)
    if checked is None:
        return EditFailure("topology", vote_id, "; ".join(problems))
    return Candidate(
        checked, "topology", vote_id, f"remove the vote {vote_id}; use {vote.of} directly"
    )


def prune_unused(plan: Plan) -> Candidate | EditFailure:
    """Remove nodes whose outputs reach no plan output (dead nodes cost student tokens)."""
    needed: set[str] = set()
    stack = [parse_ref(r).source for r in plan.outputs.values()]
    while stack:
        nid = stack.pop()
        if nid in needed or nid == "input":
            continue
        needed.add(nid)
        try:
            node = plan.node(nid)
        except KeyError:
            continue
        if isinstance(node, ConsensusNode):
            stack.append(node.of)
        else:
            stack.extend(parse_ref(r).source for r in node.inputs.values())
    dead = [n.id for n in plan.nodes if n.id not in needed]
    if not dead:
        return EditFailure("topology", "", "no unused node to remove")
    edited = plan.model_copy(update={"nodes": [n for n in plan.nodes if n.id in needed]})
    checked, problems = validated(edited)
    if checked is None:
        return EditFailure("topology", dead[0], "; ".join(problems))
    return Candidate(checked, "topology", dead[0], f"remove unused node(s) {', '.join(dead)}")


def change_topology(plan: Plan, node_id: str) -> Candidate | EditFailure:
    """The topology edit that fits ``node_id``: unwrap a vote, else prune dead nodes, else split."""
    try:
        node = plan.node(node_id)
    except KeyError:
        return EditFailure("topology", node_id, f"the plan has no node {node_id!r}")
    if isinstance(node, ConsensusNode):
        return unwrap_consensus(plan, node_id)
    pruned = prune_unused(plan)
    if isinstance(pruned, Candidate):
        return pruned
    return split_node(plan, node_id)
