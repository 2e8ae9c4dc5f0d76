"""The canonical content hash that identifies a plan version.

``plan_hash(plan)`` is ``"sha256:" + hex(sha256(canonical_json(plan)))`` where the canonical
JSON is the plan in JSON mode with every field (defaults included) **except** ``metadata``
and a consensus node's empty ``members`` and ``grounded`` lists (added to the format later:
plans without them keep the hash they had), nodes sorted by id, object keys sorted, no whitespace
(``separators=(",", ":")``), non-ASCII characters kept (``ensure_ascii=False``) and
encoded as UTF-8. So the hash ignores key order, node order, YAML style and comments, and
metadata (provenance, compile history), but changes with any prompt, code, schema,
parameter or wiring change.
"""

from __future__ import annotations

import hashlib
import json

from sgde.plan.model import Plan

__all__ = ["canonical_json", "plan_hash"]

HASH_PREFIX = "sha256:"


def canonical_json(plan: Plan) -> str:
    """The canonical JSON text that :func:`plan_hash` hashes (see the module docstring)."""
    data = plan.model_dump(mode="json", exclude={"metadata"})
    for node in data["nodes"]:
        for later in ("members", "grounded"):
            if node.get("kind") == "consensus" and node.get(later) == []:
                del node[later]
    data["nodes"] = sorted(data["nodes"], key=lambda node: str(node["id"]))
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def plan_hash(plan: Plan) -> str:
    """Content hash of the plan, e.g. ``"sha256:3f2a…"`` (64 hex digits).

    Args:
        plan: The plan.

    Returns:
        ``"sha256:<hex>"`` over :func:`canonical_json`.
    """
    digest = hashlib.sha256(canonical_json(plan).encode("utf-8")).hexdigest()
    return HASH_PREFIX + digest
