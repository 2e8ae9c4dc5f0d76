"""Reading plan files: YAML with line numbers kept, pydantic errors mapped to file lines.

The entry points are :func:`load_plan` (a path) and :func:`loads_plan` (text). Both raise
:class:`~sgde.errors.PlanError` whose ``problems`` each name the line, node id and field.
:func:`parse_plan` also returns the :class:`~sgde.planfile.sourcemap.SourceMap` for callers
that validate themselves.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from sgde.errors import PlanError, Problem
from sgde.plan.model import CodeNode, ConsensusNode, LlmNode, Plan
from sgde.planfile.files import PLAN_MAX_BYTES, read_user_text
from sgde.planfile.sourcemap import (
    BoundedLoader,
    SourceMap,
    YamlPath,
    compose_yaml,
    describe_yaml_error,
)

__all__ = [
    "ParsedPlan",
    "load_plan",
    "loads_plan",
    "parse_plan",
    "problems_error",
    "read_plan_text",
]

_NODE_MODELS: dict[str, type[BaseModel]] = {
    "llm": LlmNode,
    "code": CodeNode,
    "consensus": ConsensusNode,
}
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class _PlanLoader(BoundedLoader):
    """SafeLoader that keeps dates and times as strings, so plans stay JSON-compatible."""


def _timestamp_as_text(loader: BoundedLoader, node: yaml.Node) -> str:
    return str(loader.construct_scalar(node)) if isinstance(node, yaml.ScalarNode) else ""


_PlanLoader.add_constructor(_TIMESTAMP_TAG, _timestamp_as_text)


@dataclass(frozen=True)
class ParsedPlan:
    """A plan parsed from YAML, with where each value came from.

    Attributes:
        plan: The parsed (not yet validated) plan.
        source_map: YAML path → line numbers.
        source: File name (or ``"<string>"``) used in messages.
    """

    plan: Plan
    source_map: SourceMap
    source: str


def problems_error(message: str, problems: list[Problem], source: str) -> PlanError:
    """A :class:`PlanError` listing ``problems`` sorted by line (unknown lines last)."""
    ordered = sorted(problems, key=lambda p: (p.line is None, p.line or 0))
    return PlanError(message, problems=ordered, path=source)


def parse_plan(text: str, *, source: str = "<string>") -> ParsedPlan:
    """Parse plan YAML into a :class:`Plan` and its :class:`SourceMap`; no validation.

    Args:
        text: The YAML document.
        source: Name used in messages (usually the file path).

    Raises:
        PlanError: for invalid YAML, duplicate keys, a document that is not a mapping,
            or fields that do not fit the plan model (wrong types, unknown or missing
            fields); every problem names its line.
    """
    try:
        composed = compose_yaml(text, _PlanLoader)
    except yaml.YAMLError as exc:
        message, line = describe_yaml_error(exc)
        raise problems_error(
            f"{source}: the plan is not valid YAML", [Problem(message, line=line)], source
        ) from None
    if composed is None or composed[0] is None:
        raise PlanError(
            f"{source}: the plan file is empty",
            path=source,
            hint="start from an example: schema_version: 1, name, inputs, outputs, nodes",
        )
    data, source_map = composed
    if not isinstance(data, dict):
        problem = Problem(
            f"a plan must be a YAML mapping (schema_version, name, inputs, outputs, nodes), "
            f"not a {_yaml_type(data)}",
            line=source_map.line(),
        )
        raise problems_error(f"{source}: not a plan", [problem], source)
    problems = [
        Problem(
            f"duplicate key '{dup.path[-1]}' (first at line {dup.first_line}); "
            "YAML would silently keep only the last value",
            node_id=_node_id(data, dup.path),
            field=_field(dup.path),
            line=dup.line,
        )
        for dup in source_map.duplicates
    ]
    plan: Plan | None = None
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        problems += _validation_problems(exc, data, source_map)
    if problems or plan is None:
        count = _count(len(problems), "problem")
        raise problems_error(f"{source}: the plan does not load ({count})", problems, source)
    return ParsedPlan(plan, source_map, source)


def loads_plan(text: str, *, source: str = "<string>", validate: bool = True) -> Plan:
    """Load a plan from YAML text.

    Args:
        text: The YAML document.
        source: Name used in messages (usually the file path).
        validate: Also run :func:`~sgde.planfile.validate_plan` and raise on any problem.

    Returns:
        The plan.

    Raises:
        PlanError: when the plan does not parse or (with ``validate``) is invalid; its
            ``problems`` name line, node id and field.
    """
    parsed = parse_plan(text, source=source)
    if validate:
        from sgde.planfile.validate import validate_plan

        problems = validate_plan(parsed.plan, source_map=parsed.source_map)
        if problems:
            count = _count(len(problems), "problem")
            raise problems_error(
                f"{source}: plan '{parsed.plan.name}' is invalid ({count})", problems, source
            )
    return parsed.plan


def read_plan_text(path: str | os.PathLike[str]) -> str:
    """Read a plan file as UTF-8 text (a BOM is ignored).

    Only regular files of at most :data:`~sgde.planfile.files.PLAN_MAX_BYTES` are read (see
    :func:`~sgde.planfile.files.read_user_bytes`): a FIFO or ``/dev/zero`` is refused at once.

    Raises:
        DataError: (a :class:`UsageError`) when the file is missing, a directory, not a
            regular file, too large, unreadable or not UTF-8; the message names the file.
    """
    return read_user_text(
        path,
        what="plan file",
        max_bytes=PLAN_MAX_BYTES,
        limit_hint="a plan this large is not a plan; check the path",
    )


def load_plan(path: str | os.PathLike[str], *, validate: bool = True) -> Plan:
    """Load a plan file.

    Args:
        path: Path of the YAML plan.
        validate: Also run :func:`~sgde.planfile.validate_plan` and raise on any problem.

    Returns:
        The plan.

    Raises:
        UsageError: when the file is missing, not a regular file, too large or not UTF-8.
        PlanError: when it does not parse or (with ``validate``) is invalid.
    """
    return loads_plan(read_plan_text(path), source=os.fspath(path), validate=validate)


def _yaml_type(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _node_id(data: Mapping[str, Any], path: YamlPath) -> str | None:
    if len(path) >= 2 and path[0] == "nodes" and isinstance(path[1], int):
        nodes = data.get("nodes")
        if isinstance(nodes, list) and path[1] < len(nodes):
            node = nodes[path[1]]
            if isinstance(node, dict) and isinstance(node.get("id"), str):
                return str(node["id"])
    return None


def _field(path: YamlPath) -> str | None:
    """Dotted field name below the node (for node paths) or below the plan."""
    rest = path[2:] if len(path) >= 2 and path[0] == "nodes" and isinstance(path[1], int) else path
    return ".".join(str(p) for p in rest) or None


def _clean_loc(loc: tuple[int | str, ...]) -> YamlPath:
    """Pydantic's loc without discriminator tags and ``[key]`` markers."""
    parts = [p for p in loc if p != "[key]"]
    nested = len(parts) >= 3 and parts[0] == "nodes" and isinstance(parts[1], int)
    if nested and parts[2] in _NODE_MODELS:
        del parts[2]
    return tuple(parts)


def _node_kind(data: Mapping[str, Any], path: YamlPath) -> str | None:
    if len(path) >= 2 and path[0] == "nodes" and isinstance(path[1], int):
        nodes = data.get("nodes")
        if isinstance(nodes, list) and path[1] < len(nodes) and isinstance(nodes[path[1]], dict):
            kind = nodes[path[1]].get("kind")
            return kind if isinstance(kind, str) else None
    return None


def _allowed_fields(data: Mapping[str, Any], parent: YamlPath) -> list[str] | None:
    if parent == ():
        return list(Plan.model_fields)
    if len(parent) == 2 and parent[0] == "nodes":
        model = _NODE_MODELS.get(_node_kind(data, parent) or "")
        return list(model.model_fields) if model is not None else None
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _validation_problems(
    exc: ValidationError, data: Mapping[str, Any], source_map: SourceMap
) -> list[Problem]:
    problems: list[Problem] = []
    for err in exc.errors(include_url=False):
        path = _clean_loc(tuple(err["loc"]))
        kind = err["type"]
        ctx = err.get("ctx") or {}
        value = err.get("input")
        message = err["msg"][:1].lower() + err["msg"][1:]
        line_path = path
        field = _field(path)
        if kind == "extra_forbidden":
            key = str(path[-1])
            message = f"unknown field '{key}'"
            allowed = _allowed_fields(data, path[:-1])
            if allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                message += f"; did you mean '{close[0]}'?" if close else ""
                message += " (allowed: " + ", ".join(allowed) + ")"
        elif kind == "missing":
            message = f"missing required field '{path[-1]}'"
            line_path = path[:-1]
        elif kind == "union_tag_invalid":
            message = f"unknown node kind {ctx.get('tag')!r}; use one of: llm, code, consensus"
            line_path = (*path, "kind")
            field = "kind"
        elif kind == "union_tag_not_found":
            message = "node has no 'kind'; add `kind: llm`, `kind: code` or `kind: consensus`"
            field = "kind"
        elif path == ("schema_version",) and kind == "literal_error":
            message = f"unsupported schema_version {value!r}; this sgde reads plan format 1"
        elif len(path) == 2 and path[0] == "nodes" and not isinstance(value, dict):
            message = f"a node must be a mapping (id, kind, inputs, ...), not a {_yaml_type(value)}"
        elif kind == "string_pattern_mismatch" and path[-1:] == ("id",):
            message = (
                f"node id {value!r} must start with a letter or '_' and contain only "
                "letters, digits and '_'"
            )
        else:
            if not isinstance(value, (dict, list)):
                message += f" (got {_short(value)})"
            if kind == "string_type" and isinstance(value, (int, float, bool)):
                message += "; quote the value in YAML to keep it a string"
        problems.append(
            Problem(
                message,
                node_id=_node_id(data, path),
                field=field,
                line=source_map.line(*line_path),
            )
        )
    return problems
