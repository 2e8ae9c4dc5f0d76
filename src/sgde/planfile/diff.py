"""Node-level differences between two plans.

:func:`diff_plans` compares the plan's own fields, its inputs and outputs, and its nodes by
id (added, removed, changed fields). ``prompt``, ``system`` and ``code`` (and any other
text that spans lines) are shown as unified diffs. Node order, key order, YAML
style and ``metadata`` do not count as differences (the same content as :func:`plan_hash`);
a metadata change is noted separately.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any, Literal

from sgde.plan.model import CodeNode, ConsensusNode, LlmNode, Plan
from sgde.planfile.dump import dump_node

__all__ = ["DiffLine", "FieldChange", "NodeChange", "PlanDiff", "diff_plans"]

AnyNode = LlmNode | CodeNode | ConsensusNode
LineKind = Literal["header", "section", "added", "removed", "changed", "hunk", "context", "note"]
TEXT_FIELDS = frozenset({"prompt", "system", "code"})


class _Missing:
    """Marker for a value that is absent on one side."""

    def __repr__(self) -> str:
        return "<absent>"


ABSENT: Any = _Missing()


@dataclass(frozen=True)
class DiffLine:
    """One rendered line; ``kind`` lets a front end colour it."""

    kind: LineKind
    text: str


@dataclass(frozen=True)
class FieldChange:
    """One changed value.

    Attributes:
        field: Dotted name, e.g. ``"prompt"`` or ``"inputs.question"``.
        old: The value in plan A (``ABSENT`` when added).
        new: The value in plan B (``ABSENT`` when removed).
    """

    field: str
    old: Any
    new: Any

    def unified_diff(self, label: str = "") -> list[str]:
        """Unified diff lines of the old and new text (empty unless both are strings)."""
        if not (isinstance(self.old, str) and isinstance(self.new, str)):
            return []
        name = f"{label}.{self.field}" if label else self.field
        return list(
            difflib.unified_diff(
                self.old.splitlines(),
                self.new.splitlines(),
                fromfile=f"a/{name}",
                tofile=f"b/{name}",
                lineterm="",
            )
        )


@dataclass(frozen=True)
class NodeChange:
    """A node present in both plans whose fields differ."""

    node_id: str
    changes: tuple[FieldChange, ...]


@dataclass(frozen=True)
class PlanDiff:
    """What changed from plan ``a`` to plan ``b``.

    Attributes:
        a_label: Name of plan A in the rendering (e.g. its file).
        b_label: Name of plan B.
        plan_changes: Changes to ``name``, ``description`` and ``schema_version``.
        input_changes: Added/removed/retyped plan inputs (``inputs.<name>``).
        output_changes: Added/removed/rewired plan outputs (``outputs.<name>``).
        added: Nodes only in B (in B's order).
        removed: Nodes only in A (in A's order).
        changed: Nodes in both that differ (in B's order).
        metadata_changed: Whether ``metadata`` differs (not counted in :attr:`is_empty`).
    """

    a_label: str
    b_label: str
    plan_changes: tuple[FieldChange, ...] = ()
    input_changes: tuple[FieldChange, ...] = ()
    output_changes: tuple[FieldChange, ...] = ()
    added: tuple[AnyNode, ...] = ()
    removed: tuple[AnyNode, ...] = ()
    changed: tuple[NodeChange, ...] = ()
    metadata_changed: bool = False

    @property
    def is_empty(self) -> bool:
        """True when the plans have the same content (metadata aside)."""
        return not (
            self.plan_changes
            or self.input_changes
            or self.output_changes
            or self.added
            or self.removed
            or self.changed
        )

    def lines(self) -> list[DiffLine]:
        """The rendering as typed lines (for coloured output)."""
        out: list[DiffLine] = [
            DiffLine("header", f"--- {self.a_label}"),
            DiffLine("header", f"+++ {self.b_label}"),
        ]
        if self.is_empty:
            out.append(DiffLine("note", "no differences in plan content"))
        for title, changes in (
            ("plan", self.plan_changes),
            ("inputs", self.input_changes),
            ("outputs", self.output_changes),
        ):
            if changes:
                out.append(DiffLine("section", f"{title}:"))
                prefix = "" if title == "plan" else f"{title}."
                for change in changes:
                    short = FieldChange(change.field.removeprefix(prefix), change.old, change.new)
                    out += _change_lines(short, title, indent="  ")
        for node in self.removed:
            out.append(DiffLine("section", f"node '{node.id}' removed ({node.kind}):"))
            out += [DiffLine("removed", f"  - {line}") for line in dump_node(node).splitlines()]
        for node in self.added:
            out.append(DiffLine("section", f"node '{node.id}' added ({node.kind}):"))
            out += [DiffLine("added", f"  + {line}") for line in dump_node(node).splitlines()]
        for node_change in self.changed:
            out.append(DiffLine("section", f"node '{node_change.node_id}' changed:"))
            for change in node_change.changes:
                out += _change_lines(change, node_change.node_id, indent="  ")
        if self.metadata_changed:
            out.append(DiffLine("note", "metadata differs (not part of the plan content)"))
        return out

    def render(self) -> str:
        """Readable plain text; unified diffs for changed prompts, system prompts and code."""
        return "\n".join(line.text for line in self.lines()) + "\n"


def _show(value: Any) -> str:
    if value is ABSENT:
        return "(absent)"
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _change_lines(change: FieldChange, label: str, *, indent: str) -> list[DiffLine]:
    old, new = change.old, change.new
    if old is ABSENT:
        return [DiffLine("added", f"{indent}+ {change.field}: {_show(new)}")]
    if new is ABSENT:
        return [DiffLine("removed", f"{indent}- {change.field}: {_show(old)}")]
    multiline = any(isinstance(v, str) and "\n" in v for v in (old, new))
    if (
        isinstance(old, str)
        and isinstance(new, str)
        and (multiline or change.field.split(".")[-1] in TEXT_FIELDS)
    ):
        lines = [DiffLine("changed", f"{indent}~ {change.field}:")]
        for text in change.unified_diff(label):
            kind: LineKind = "context"
            if text.startswith(("---", "+++")):
                kind = "header"
            elif text.startswith("@@"):
                kind = "hunk"
            elif text.startswith("+"):
                kind = "added"
            elif text.startswith("-"):
                kind = "removed"
            lines.append(DiffLine(kind, f"{indent}    {text}"))
        return lines
    if isinstance(old, (dict, list)) and isinstance(new, (dict, list)):
        before = json.dumps(old, indent=2, sort_keys=True, ensure_ascii=False)
        after = json.dumps(new, indent=2, sort_keys=True, ensure_ascii=False)
        as_text = FieldChange(change.field, before, after)
        return _change_lines(as_text, label, indent=indent)
    return [DiffLine("changed", f"{indent}~ {change.field}: {_show(old)} -> {_show(new)}")]


def _dict_changes(prefix: str, a: dict[str, Any], b: dict[str, Any]) -> list[FieldChange]:
    changes: list[FieldChange] = []
    for key in [*a, *(k for k in b if k not in a)]:
        old, new = a.get(key, ABSENT), b.get(key, ABSENT)
        if old != new:
            changes.append(FieldChange(f"{prefix}{key}", old, new))
    return changes


def _node_changes(a: AnyNode, b: AnyNode) -> tuple[FieldChange, ...]:
    da = a.model_dump(mode="json")
    db = b.model_dump(mode="json")
    changes: list[FieldChange] = []
    for key in [*da, *(k for k in db if k not in da)]:
        old, new = da.get(key, ABSENT), db.get(key, ABSENT)
        if key == "inputs" and isinstance(old, dict) and isinstance(new, dict):
            changes += _dict_changes("inputs.", old, new)
        elif old != new:
            changes.append(FieldChange(key, old, new))
    return tuple(changes)


def diff_plans(
    a: Plan, b: Plan, *, a_label: str | None = None, b_label: str | None = None
) -> PlanDiff:
    """Compare two plans node by node.

    Args:
        a: The old plan.
        b: The new plan.
        a_label: How to name ``a`` in the rendering (default: its name and hash).
        b_label: How to name ``b``.

    Returns:
        A :class:`PlanDiff`; ``diff.is_empty`` exactly when the plans have the same content
        (equal :func:`~sgde.plan.plan_hash`).
    """
    from sgde.plan.hashing import plan_hash

    plan_changes = [
        FieldChange(key, getattr(a, key), getattr(b, key))
        for key in ("schema_version", "name", "description")
        if getattr(a, key) != getattr(b, key)
    ]
    a_nodes = {n.id: n for n in a.nodes}
    b_nodes = {n.id: n for n in b.nodes}
    changed = []
    for node_id, new in b_nodes.items():
        old = a_nodes.get(node_id)
        if old is not None and old != new:
            field_changes = _node_changes(old, new)
            if field_changes:
                changed.append(NodeChange(node_id, field_changes))
    return PlanDiff(
        a_label=a_label or f"{a.name} ({plan_hash(a)[:19]})",
        b_label=b_label or f"{b.name} ({plan_hash(b)[:19]})",
        plan_changes=tuple(plan_changes),
        input_changes=tuple(_dict_changes("inputs.", dict(a.inputs), dict(b.inputs))),
        output_changes=tuple(_dict_changes("outputs.", dict(a.outputs), dict(b.outputs))),
        added=tuple(n for n in b.nodes if n.id not in a_nodes),
        removed=tuple(n for n in a.nodes if n.id not in b_nodes),
        changed=tuple(changed),
        metadata_changed=a.metadata != b.metadata,
    )
