"""sgde execution plans: the IR, its graph, hashing, the JSON Schema and the Mermaid picture.

Pure data: this package imports only the standard library, pydantic and :mod:`sgde.errors`
(a test checks it). Nothing here reads or writes a file, runs a model or runs code; plan
files (YAML with line numbers, loading, saving, full validation, diffs) live one layer up,
in :mod:`sgde.planfile`. Typical use::

    from sgde.plan import Plan, plan_hash, topo_order
    from sgde.planfile import load_plan

    plan = load_plan("examples/duck_eggs.yaml")
    print(plan_hash(plan))                          # "sha256:…"
    print([node.id for node in topo_order(plan)])

The format is described in ``docs/plan-format.md``.
"""

from __future__ import annotations

from sgde.plan.codeinfo import infer_code_fields
from sgde.plan.graph import dependencies, find_cycles, node_fields, topo_order
from sgde.plan.hashing import canonical_json, plan_hash
from sgde.plan.mermaid import to_mermaid
from sgde.plan.model import (
    SCHEMA_VERSION,
    CodeNode,
    ConsensusMember,
    ConsensusNode,
    InputType,
    LlmNode,
    Node,
    Plan,
)
from sgde.plan.refs import INPUT, Ref, parse_ref
from sgde.plan.schema import PLAN_SCHEMA_ID, plan_json_schema

__all__ = [
    "INPUT",
    "PLAN_SCHEMA_ID",
    "SCHEMA_VERSION",
    "CodeNode",
    "ConsensusMember",
    "ConsensusNode",
    "InputType",
    "LlmNode",
    "Node",
    "Plan",
    "Ref",
    "canonical_json",
    "dependencies",
    "find_cycles",
    "infer_code_fields",
    "node_fields",
    "parse_ref",
    "plan_hash",
    "plan_json_schema",
    "to_mermaid",
    "topo_order",
]
