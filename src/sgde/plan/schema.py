"""The published JSON Schema of the plan format (``sgde schema`` prints it)."""

from __future__ import annotations

import copy
from typing import Any

from sgde.plan.model import SCHEMA_VERSION, Plan

__all__ = ["PLAN_SCHEMA_ID", "plan_json_schema"]

PLAN_SCHEMA_ID = f"urn:sgde:schema:plan:{SCHEMA_VERSION}"
_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def plan_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a plan file, derived from the pydantic model.

    It checks structure and types only; references, templates, code and cycles are
    checked by :func:`~sgde.planfile.validate_plan`. Every node must name its ``kind``.

    Returns:
        A fresh dict (safe to modify).
    """
    schema = copy.deepcopy(Plan.model_json_schema(mode="validation"))
    defs = schema.get("$defs", {})
    for name in ("LlmNode", "CodeNode", "ConsensusNode"):
        node_def = defs.get(name)
        if isinstance(node_def, dict):
            required = list(node_def.get("required", []))
            if "kind" not in required:
                required.insert(0, "kind")
            node_def["required"] = required
    head: dict[str, Any] = {
        "$schema": _DIALECT,
        "$id": PLAN_SCHEMA_ID,
        "title": f"sgde execution plan (format {SCHEMA_VERSION})",
        "description": (
            "An sgde execution plan: a DAG of llm, code and consensus nodes. "
            "See docs/plan-format.md."
        ),
    }
    schema.pop("title", None)
    schema.pop("description", None)
    return {**head, **schema}
