"""The plan as a graph: node fields, dependencies, cycles and topological order.

Edges point from a node to what it needs: the sources of its input references and, for a
consensus node, the node it wraps (whose inputs are the consensus node's real inputs).
"""

from __future__ import annotations

import heapq

from sgde.errors import PlanError, Problem
from sgde.plan.codeinfo import infer_code_fields
from sgde.plan.model import CodeNode, ConsensusNode, LlmNode, Plan
from sgde.plan.refs import INPUT, parse_ref

__all__ = ["dependencies", "find_cycles", "node_fields", "topo_order"]

AnyNode = LlmNode | CodeNode | ConsensusNode


def node_fields(plan: Plan, node_id: str) -> list[str] | None:
    """Output fields the node yields, i.e. the ``<field>`` in ``<node_id>.<field>``.

    * LLM node: the ``output_schema`` properties, or ``["text"]`` without a schema.
    * Code node: ``outputs`` when declared, else the keys of the ``return {...}`` dict
      literals in ``run``; ``None`` when they cannot be inferred.
    * Consensus node: the fields of the node it wraps (``None`` if that is unknown).

    Raises:
        KeyError: when the plan has no node ``node_id``.
    """
    seen: set[str] = set()
    node: AnyNode = plan.node(node_id)
    while isinstance(node, ConsensusNode):
        if node.id in seen:
            return None
        seen.add(node.id)
        try:
            node = plan.node(node.of)
        except KeyError:
            return None
    if isinstance(node, LlmNode):
        return node.fields()
    if node.outputs is not None:
        return list(node.outputs)
    return infer_code_fields(node.code)


def dependencies(plan: Plan, node_id: str) -> list[str]:
    """Ids of existing nodes ``node_id`` needs, in reference order, without duplicates.

    Raises:
        KeyError: when the plan has no node ``node_id``.
    """
    return _node_dependencies(plan.node(node_id), set(plan.node_ids()))


def _node_dependencies(node: AnyNode, ids: set[str]) -> list[str]:
    sources: list[str] = []
    if isinstance(node, ConsensusNode):
        sources.append(node.of)
    else:
        for ref_text in node.inputs.values():
            try:
                sources.append(parse_ref(ref_text).source)
            except ValueError:
                continue
    out: list[str] = []
    for source in sources:
        if source != INPUT and source in ids and source not in out:
            out.append(source)
    return out


def _graph(plan: Plan) -> dict[str, list[str]]:
    ids = set(plan.node_ids())
    graph: dict[str, list[str]] = {}
    for node in plan.nodes:
        if node.id not in graph:  # duplicate ids are reported by validation
            graph[node.id] = _node_dependencies(node, ids)
    return graph


def find_cycles(plan: Plan) -> list[list[str]]:
    """Every dependency cycle, each as ids in dependency order (first id not repeated).

    A node that references itself is a cycle of one. Each strongly connected component
    with a cycle is reported once, starting at the node that comes first in the file.
    """
    graph = _graph(plan)
    order = {node_id: i for i, node_id in enumerate(graph)}
    cycles: list[list[str]] = []
    for component in _strongly_connected(graph):
        if len(component) == 1 and component[0] not in graph[component[0]]:
            continue
        members = set(component)
        start = min(component, key=order.__getitem__)
        cycles.append(_cycle_through(start, graph, members, order))
    cycles.sort(key=lambda c: order[c[0]])
    return cycles


def _cycle_through(
    start: str, graph: dict[str, list[str]], members: set[str], order: dict[str, int]
) -> list[str]:
    """A simple cycle from ``start`` back to itself inside one component (BFS, shortest)."""
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt: list[str] = []
        for current in frontier:
            for dep in sorted(graph[current], key=order.__getitem__):
                if dep not in members:
                    continue
                if dep == start:
                    path = [current]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return path[::-1]
                if dep not in parents:
                    parents[dep] = current
                    nxt.append(dep)
        frontier = nxt
    return [start]


def _strongly_connected(graph: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative so deep plans cannot overflow the stack."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, child_i = work.pop()
            if child_i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            children = graph[node]
            if child_i < len(children):
                work.append((node, child_i + 1))
                child = children[child_i]
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return components


def topo_order(plan: Plan) -> list[str]:
    """Node ids so that every node comes after the nodes it depends on.

    Includes nodes wrapped by a consensus node (each right before it may be needed; a
    consensus node comes after the node it wraps); executors skip wrapped nodes, see
    :meth:`Plan.wrapped_ids`. Ties keep the file order, so the result is deterministic.

    Raises:
        PlanError: when the plan has a dependency cycle.
    """
    cycles = find_cycles(plan)
    if cycles:
        raise PlanError(
            "the plan has a dependency cycle",
            problems=[_cycle_problem(c) for c in cycles],
            hint="break the cycle: a node cannot depend, directly or not, on its own fields",
        )
    graph = _graph(plan)
    position = {node_id: i for i, node_id in enumerate(graph)}
    waiting = {node_id: len(deps) for node_id, deps in graph.items()}
    dependants: dict[str, list[str]] = {node_id: [] for node_id in graph}
    for node_id, deps in graph.items():
        for dep in deps:
            dependants[dep].append(node_id)
    ready = [position[n] for n, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    ids = list(graph)
    order: list[str] = []
    while ready:
        node_id = ids[heapq.heappop(ready)]
        order.append(node_id)
        for dependant in dependants[node_id]:
            waiting[dependant] -= 1
            if waiting[dependant] == 0:
                heapq.heappush(ready, position[dependant])
    return order


def _cycle_problem(cycle: list[str]) -> Problem:
    text = " -> ".join([*cycle, cycle[0]])
    return Problem(
        f"dependency cycle {text} (each node needs the next one's output)", node_id=cycle[0]
    )
