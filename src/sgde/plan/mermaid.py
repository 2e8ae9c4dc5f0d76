"""The plan DAG as Mermaid flowchart text (``sgde show --mermaid``).

Shapes: plan inputs are parallelograms leaning right, outputs leaning left, llm nodes
rectangles, code nodes subroutines (``[[ ]]``), consensus nodes hexagons. Edges carry the
field names they pass; a dotted edge joins a wrapped node to the consensus node sampling it.
"""

from __future__ import annotations

import re

from sgde.plan.model import CodeNode, ConsensusNode, LlmNode, Plan
from sgde.plan.refs import parse_ref

__all__ = ["to_mermaid"]


def _label(*lines: str) -> str:
    """A quoted Mermaid label of one or more lines; quotes and brackets become entities."""
    safe = [t.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;") for t in lines]
    return '"' + "<br/>".join(safe) + '"'


def _edge_label(text: str) -> str:
    return "|" + _label(text) + "|"


class _Ids:
    """Mermaid-safe, unique ids for inputs (``in_…``), nodes (``n_…``) and outputs."""

    def __init__(self) -> None:
        self._taken: dict[tuple[str, str], str] = {}
        self._used: set[str] = set()

    def get(self, prefix: str, name: str) -> str:
        key = (prefix, name)
        if key not in self._taken:
            base = prefix + re.sub(r"[^A-Za-z0-9_]", "_", name)
            candidate, n = base, 1
            while candidate in self._used:
                n += 1
                candidate = f"{base}_{n}"
            self._used.add(candidate)
            self._taken[key] = candidate
        return self._taken[key]


def _node_shape(node: LlmNode | CodeNode | ConsensusNode, mid: str) -> str:
    if isinstance(node, LlmNode):
        return f"{mid}[{_label(node.id, f'llm · {node.model}')}]"
    if isinstance(node, CodeNode):
        return f"{mid}[[{_label(node.id, 'code')}]]"
    samples = f"{node.n} prompts" if node.members else f"{node.n}"
    return f"{mid}{{{{{_label(node.id, f'consensus ×{samples} · {node.vote}')}}}}}"


def to_mermaid(plan: Plan) -> str:
    """Render the plan as a Mermaid ``flowchart TD``.

    Args:
        plan: The plan (it need not be valid; dangling references are drawn to nothing).

    Returns:
        Mermaid source, ending with a newline.
    """
    ids = _Ids()
    lines = ["flowchart TD"]
    for name, type_ in plan.inputs.items():
        lines.append(f"    {ids.get('in_', name)}[/{_label(f'input: {name} ({type_})')}/]")
    node_ids = set(plan.node_ids())
    for node in plan.nodes:
        lines.append("    " + _node_shape(node, ids.get("n_", node.id)))
    for name in plan.outputs:
        lines.append(f"    {ids.get('out_', name)}[\\{_label(f'output: {name}')}\\]")

    edges: dict[tuple[str, str], list[str]] = {}

    def connect(ref_text: str, target: str) -> None:
        try:
            ref = parse_ref(ref_text)
        except ValueError:
            return
        if ref.is_input:
            if ref.field not in plan.inputs:
                return
            source = ids.get("in_", ref.field)
        elif ref.source in node_ids:
            source = ids.get("n_", ref.source)
        else:
            return
        labels = edges.setdefault((source, target), [])
        if ref.field not in labels:
            labels.append(ref.field)

    for node in plan.nodes:
        if isinstance(node, ConsensusNode):
            continue
        for ref_text in node.inputs.values():
            connect(ref_text, ids.get("n_", node.id))
    for name, ref_text in plan.outputs.items():
        connect(ref_text, ids.get("out_", name))
    for (source, target), labels in edges.items():
        lines.append(f"    {source} -->{_edge_label(', '.join(labels))} {target}")
    for node in plan.nodes:
        if isinstance(node, ConsensusNode) and node.of in node_ids:
            sampled = _edge_label(f"sampled ×{node.n}")
            lines.append(f"    {ids.get('n_', node.of)} -.->{sampled} {ids.get('n_', node.id)}")
    return "\n".join(lines) + "\n"
