"""sgde execution plans: the IR, plan files, validation, hashing, diffs and rendering.

Pure data: nothing here runs models or code; the only I/O is reading and writing plan
files. Typical use::

    from sgde.plan import load_plan, plan_hash, save_plan

    plan = load_plan("examples/duck_eggs.yaml")     # PlanError lists problems with lines
    print(plan_hash(plan))                          # "sha256:…"
    save_plan(plan.model_copy(update={"name": "v2"}), "v2.yaml")

The format is described in ``docs/plan-format.md``.
"""

from __future__ import annotations

from sgde.plan.codeinfo import infer_code_fields
from sgde.plan.diff import DiffLine, FieldChange, NodeChange, PlanDiff, diff_plans
from sgde.plan.dump import dump_node, dump_plan, node_to_data, plan_to_data, save_plan
from sgde.plan.graph import dependencies, find_cycles, node_fields, topo_order
from sgde.plan.hashing import canonical_json, plan_hash
from sgde.plan.loader import ParsedPlan, load_plan, loads_plan, parse_plan, read_plan_text
from sgde.plan.mermaid import to_mermaid
from sgde.plan.model import (
    SCHEMA_VERSION,
    CodeNode,
    ConsensusNode,
    InputType,
    LlmNode,
    Node,
    Plan,
)
from sgde.plan.refs import INPUT, Ref, parse_ref
from sgde.plan.schema import PLAN_SCHEMA_ID, plan_json_schema
from sgde.plan.sourcemap import Location, SourceMap
from sgde.plan.templates import check_template, template_variables
from sgde.plan.validate import check_plan, validate_plan

__all__ = [
    "INPUT",
    "PLAN_SCHEMA_ID",
    "SCHEMA_VERSION",
    "CodeNode",
    "ConsensusNode",
    "DiffLine",
    "FieldChange",
    "InputType",
    "LlmNode",
    "Location",
    "Node",
    "NodeChange",
    "ParsedPlan",
    "Plan",
    "PlanDiff",
    "Ref",
    "SourceMap",
    "canonical_json",
    "check_plan",
    "check_template",
    "dependencies",
    "diff_plans",
    "dump_node",
    "dump_plan",
    "find_cycles",
    "infer_code_fields",
    "load_plan",
    "loads_plan",
    "node_fields",
    "node_to_data",
    "parse_plan",
    "parse_ref",
    "plan_hash",
    "plan_json_schema",
    "plan_to_data",
    "read_plan_text",
    "save_plan",
    "template_variables",
    "to_mermaid",
    "topo_order",
    "validate_plan",
]
