"""Consensus wrap: sample a variance-limited node ``n`` times and vote per field."""

from __future__ import annotations

from sgde.optimize.operators.base import Candidate, EditFailure, rewire, unique_id, validated
from sgde.plan.model import ConsensusNode, LlmNode, Plan

__all__ = ["wrap_consensus"]


def wrap_consensus(
    plan: Plan, node_id: str, *, n: int, temperature: float
) -> Candidate | EditFailure:
    """Wrap LLM node ``node_id`` in a :class:`ConsensusNode` (``<id>_vote``).

    Every reference to ``node_id.<field>`` is rewired to the vote node. Deterministic: no
    teacher call. The accept step decides whether voting helps (it can hurt a student whose
    samples are mostly wrong).
    """
    try:
        node = plan.node(node_id)
    except KeyError:
        return EditFailure("consensus", node_id, f"the plan has no node {node_id!r}")
    if not isinstance(node, LlmNode):
        return EditFailure("consensus", node_id, f"{node_id!r} is not an LLM node")
    if node_id in plan.wrapped_ids():
        return EditFailure("consensus", node_id, f"{node_id!r} is already wrapped")
    vote_id = unique_id(plan, f"{node_id}_vote")
    vote = ConsensusNode(
        id=vote_id,
        of=node_id,
        n=n,
        temperature=temperature,
        description=f"majority vote over {n} samples of {node_id}",
    )
    nodes = list(plan.nodes)
    nodes.insert(nodes.index(node) + 1, vote)
    edited = rewire(
        plan, lambda src, fld: f"{vote_id}.{fld}" if src == node_id else None, nodes=nodes
    )
    checked, problems = validated(edited)
    if checked is None:
        return EditFailure("consensus", node_id, "; ".join(problems))
    return Candidate(
        checked,
        "consensus",
        node_id,
        f"wrap {node_id} in a {n}-sample vote ({vote_id})",
        details={"vote_id": vote_id, "n": n, "temperature": temperature},
    )
