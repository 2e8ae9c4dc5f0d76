"""Writing plan files: stable, readable YAML and atomic saves.

The dump keeps the key order of the format and omits fields equal to their defaults,
except the ones that say what a node does (``id``, ``kind``, ``model``, ``of``, ``n``,
``temperature``, ``max_tokens``, ``vote``) and the plan's ``schema_version``, ``name``,
``inputs``, ``outputs`` and ``nodes``, which are always written. It writes multi-line
strings (prompts, code) as ``|`` blocks and short leaf mappings/lists in flow style
(``{question: input.question}``). ``load → dump → load``
gives an equal plan, and dumping an equal plan gives the same text.
"""

from __future__ import annotations

import os
from typing import Any

import yaml

from sgde.plan.model import CodeNode, ConsensusNode, LlmNode, Plan
from sgde.planfile.files import write_text_atomic

__all__ = ["dump_node", "dump_plan", "node_to_data", "plan_to_data", "save_plan"]

PLAN_KEY_ORDER = ("schema_version", "name", "description", "inputs", "outputs", "nodes", "metadata")
NODE_KEY_ORDER = (
    "id",
    "kind",
    "model",
    "description",
    "of",
    "n",
    "inputs",
    "outputs",
    "system",
    "prompt",
    "output_schema",
    "temperature",
    "top_p",
    "max_tokens",
    "vote",
    "members",
    "grounded",
    "timeout_s",
    "retries",
    "code",
)
_ALWAYS = ("schema_version", "name", "inputs", "outputs", "nodes")
# Written even at their defaults: they say what a node does, and a plan file should not
# change meaning if a later version changed a default.
_ALWAYS_NODE = ("id", "kind", "model", "of", "n", "temperature", "max_tokens", "vote")
_FLOW_MAX_WIDTH = 72
_FLOW_MAX_ITEMS = 6


class _Block(dict[str, Any]):
    """A mapping always written in block style (the plan and its nodes)."""


def _ordered(data: dict[str, Any], order: tuple[str, ...]) -> _Block:
    rank = {key: i for i, key in enumerate(order)}
    # Fields this version does not know go before `code`, which is long and best last.
    unknown = rank.get("code", len(order)) - 0.5
    keys = sorted(data, key=lambda k: rank.get(k, unknown))
    return _Block((k, data[k]) for k in keys)


def node_to_data(node: LlmNode | CodeNode | ConsensusNode) -> dict[str, Any]:
    """The node as plain data in format key order, without default-valued fields."""
    full = node.model_dump(mode="json")
    data = node.model_dump(mode="json", exclude_defaults=True)
    for key in _ALWAYS_NODE:
        if key in full:
            data[key] = full[key]
    return _ordered(data, NODE_KEY_ORDER)


def plan_to_data(plan: Plan) -> dict[str, Any]:
    """The plan as plain data in format key order, without default-valued fields.

    ``metadata`` is kept verbatim (omitted when empty).
    """
    data = plan.model_dump(mode="json", exclude_defaults=True, exclude={"nodes"})
    for key in _ALWAYS:
        if key != "nodes":
            data.setdefault(key, getattr(plan, key))
    data["schema_version"] = plan.schema_version
    data["nodes"] = [node_to_data(node) for node in plan.nodes]
    return _ordered(data, PLAN_KEY_ORDER)


class _PlanDumper(yaml.SafeDumper):
    """SafeDumper with indented sequences and no anchors/aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _is_scalar(value: Any) -> bool:
    if isinstance(value, str):
        return "\n" not in value
    return value is None or isinstance(value, (bool, int, float))


def _flow_fits(items: list[Any]) -> bool:
    if not items or len(items) > _FLOW_MAX_ITEMS or not all(_is_scalar(v) for v in items):
        return False
    return sum(len(str(v)) + 2 for v in items) <= _FLOW_MAX_WIDTH


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


def _represent_dict(dumper: yaml.SafeDumper, data: dict[Any, Any]) -> yaml.MappingNode:
    flow = _flow_fits([*data.keys(), *data.values()]) and len(data) <= _FLOW_MAX_ITEMS
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=flow)


def _represent_block(dumper: yaml.SafeDumper, data: _Block) -> yaml.MappingNode:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=False)


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.SequenceNode:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=_flow_fits(data))


_PlanDumper.add_representer(str, _represent_str)
_PlanDumper.add_representer(dict, _represent_dict)
_PlanDumper.add_representer(_Block, _represent_block)
_PlanDumper.add_representer(list, _represent_list)


def _dump(data: Any) -> str:
    return yaml.dump(
        data,
        Dumper=_PlanDumper,
        sort_keys=False,
        allow_unicode=True,
        width=4096,
        default_flow_style=False,
    )


def dump_plan(plan: Plan) -> str:
    """Render the plan as YAML text (stable: equal plans give identical text).

    Args:
        plan: The plan.

    Returns:
        YAML in format key order, multi-line strings as ``|`` blocks.
    """
    return _dump(plan_to_data(plan))


def dump_node(node: LlmNode | CodeNode | ConsensusNode) -> str:
    """Render one node as YAML (the mapping as it appears under ``nodes:``)."""
    return _dump(node_to_data(node))


def save_plan(plan: Plan, path: str | os.PathLike[str]) -> None:
    """Write the plan to ``path`` atomically (temporary file, fsync, ``os.replace``).

    A reader never sees a half-written file; an existing file keeps its permissions.

    Raises:
        UsageError: when the file cannot be written (missing directory, permissions).
    """
    write_text_atomic(path, dump_plan(plan), what="plan file")
