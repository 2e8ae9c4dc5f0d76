"""Preparing a plan for execution: which nodes run, in which order, fed by which nodes.

Kept apart from the executor, which runs what this module prepares: the preparation is pure
(no models, no sandbox) and cached per plan object by :class:`~sgde.runtime.executor.Executor`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jsonschema.protocols

from sgde.errors import PlanError, Problem
from sgde.plan import plan_hash, topo_order
from sgde.plan.model import CodeNode, ConsensusNode, LlmNode, Plan
from sgde.plan.refs import parse_ref
from sgde.planfile import check_plan
from sgde.runtime.sandbox.policy import check_source

__all__ = ["Prepared", "prepare", "required_roles"]


def required_roles(plan: Plan) -> set[str]:
    """Model roles a plan needs bound (the ``model`` of every llm node).

    Args:
        plan: The plan.

    Returns:
        Role names; empty for code-only plans.
    """
    return {n.model for n in plan.nodes if isinstance(n, LlmNode)}


@dataclass(frozen=True)
class Prepared:
    plan: Plan
    order: tuple[str, ...]
    deps: dict[str, tuple[str, ...]]
    alias: dict[str, str]
    roles: frozenset[str]
    code_nodes: tuple[str, ...]
    plan_hash: str
    validators: dict[str, jsonschema.protocols.Validator] = field(default_factory=dict)


def _sources(node: LlmNode | CodeNode | ConsensusNode, plan: Plan) -> dict[str, str]:
    """The input references that feed a node (a consensus node: its wrapped node's)."""
    if isinstance(node, ConsensusNode):
        try:
            wrapped = plan.node(node.of)
        except KeyError:
            return {}
        return {} if isinstance(wrapped, ConsensusNode) else dict(wrapped.inputs)
    return dict(node.inputs)


def _stable_topo(order: list[str], deps: dict[str, tuple[str, ...]], plan: Plan) -> list[str]:
    """Order ``order`` so that dependencies come first (ties keep ``order``)."""
    done: set[str] = set()
    result: list[str] = []
    pending = list(order)
    while pending:
        progressed = False
        for node_id in list(pending):
            if all(d in done for d in deps[node_id]):
                result.append(node_id)
                done.add(node_id)
                pending.remove(node_id)
                progressed = True
                break
        if not progressed:
            raise PlanError(
                f"plan '{plan.name}' cannot be ordered: {', '.join(pending)} wait on each other",
                problems=[Problem("dependency cycle through a consensus node", node_id=pending[0])],
            )
    return result


def prepare(plan: Plan, *, validate: bool = True) -> Prepared:
    """Validate ``plan`` (with the sandbox's code policy) and work out its schedule.

    Args:
        plan: The plan.
        validate: Check the plan first (:func:`sgde.planfile.check_plan`).

    Raises:
        PlanError: the plan is invalid or its nodes cannot be ordered.
    """
    if validate:
        check_plan(plan, code_policy=check_source)
    topo = topo_order(plan)
    wrapped = plan.wrapped_ids()
    alias: dict[str, str] = {}
    for node in plan.nodes:
        if isinstance(node, ConsensusNode):
            alias.setdefault(node.of, node.id)
    runnable = [nid for nid in topo if nid not in wrapped]
    known = set(runnable)
    deps: dict[str, tuple[str, ...]] = {}
    for nid in runnable:
        found: list[str] = []
        for ref_text in _sources(plan.node(nid), plan).values():
            try:
                source = parse_ref(ref_text).source
            except ValueError:
                continue
            source = alias.get(source, source)
            if source in known and source != nid and source not in found:
                found.append(source)
        deps[nid] = tuple(found)
    return Prepared(
        plan=plan,
        order=tuple(_stable_topo(runnable, deps, plan)),
        deps=deps,
        alias=alias,
        roles=frozenset(required_roles(plan)),
        code_nodes=tuple(n.id for n in plan.nodes if isinstance(n, CodeNode)),
        plan_hash=plan_hash(plan),
    )
