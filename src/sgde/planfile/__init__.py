"""Plan files: YAML with line numbers, guarded readers, atomic writes, full validation, diffs.

The layer just above the pure-data :mod:`sgde.plan`: everything that needs a file, PyYAML,
jinja2 or jsonschema. Typical use::

    from sgde.planfile import load_plan, save_plan, validate_plan

    plan = load_plan("examples/duck_eggs.yaml")     # PlanError lists problems with lines
    save_plan(plan.model_copy(update={"name": "v2"}), "v2.yaml")

:mod:`sgde.planfile.files` holds the guarded readers and atomic writes that every layer
above uses for its own files (traces, datasets, reports, price files). The format is
described in ``docs/plan-format.md``.
"""

from __future__ import annotations

from sgde.planfile.diff import DiffLine, FieldChange, NodeChange, PlanDiff, diff_plans
from sgde.planfile.dump import dump_node, dump_plan, node_to_data, plan_to_data, save_plan
from sgde.planfile.loader import ParsedPlan, load_plan, loads_plan, parse_plan, read_plan_text
from sgde.planfile.sourcemap import Location, SourceMap
from sgde.planfile.templates import check_template, template_variables
from sgde.planfile.validate import check_plan, validate_plan

__all__ = [
    "DiffLine",
    "FieldChange",
    "Location",
    "NodeChange",
    "ParsedPlan",
    "PlanDiff",
    "SourceMap",
    "check_plan",
    "check_template",
    "diff_plans",
    "dump_node",
    "dump_plan",
    "load_plan",
    "loads_plan",
    "node_to_data",
    "parse_plan",
    "plan_to_data",
    "read_plan_text",
    "save_plan",
    "template_variables",
    "validate_plan",
]
