"""Plan commands: ``sgde validate``, ``sgde show``, ``sgde diff`` and ``sgde schema``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.text import Text
from rich.tree import Tree

from sgde.cli.common import EXIT_USAGE, err_console, out_console, print_error
from sgde.cli.output import clean_text, dumps_json
from sgde.errors import PlanError, Problem, SgdeError, UsageError
from sgde.plan import (
    CodeNode,
    ConsensusNode,
    LlmNode,
    Plan,
    node_fields,
    plan_hash,
    plan_json_schema,
    to_mermaid,
    topo_order,
)
from sgde.planfile import diff_plans, load_plan, parse_plan, read_plan_text, validate_plan
from sgde.planfile.diff import ABSENT, FieldChange, PlanDiff

__all__ = ["register"]

PlanArg = Annotated[
    Path, typer.Argument(metavar="PLAN", help="Plan file (YAML).", show_default=False)
]

_DIFF_STYLES = {
    "header": "bold",
    "section": "bold cyan",
    "added": "green",
    "removed": "red",
    "changed": "yellow",
    "hunk": "magenta",
    "context": "",
    "note": "dim",
}


def _print_plain(text: str, *, style: str = "") -> None:
    out_console.print(Text(clean_text(text), style=style), highlight=False)


JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON (for scripts).")]


def _problem_dict(problem: Problem) -> dict[str, Any]:
    return {
        "line": problem.line,
        "node_id": problem.node_id,
        "field": problem.field,
        "message": problem.message,
    }


def _check_one(path: Path) -> dict[str, Any]:
    """Validate one plan file; a JSON-ready record (``error`` when it cannot be read)."""
    source = str(path)
    record: dict[str, Any] = {"path": source, "ok": False}
    try:
        text = read_plan_text(path)
    except SgdeError as exc:  # missing or unreadable: report it and go on with the others
        record["error"] = str(exc)
        return record
    try:
        parsed = parse_plan(text, source=source)
    except PlanError as exc:
        problems = exc.problems or [Problem(exc.message.removeprefix(source + ": "))]
        record["problems"] = [_problem_dict(p) for p in problems]
        return record
    from sgde.runtime.sandbox.policy import check_source  # the sandbox's code policy

    problems = validate_plan(parsed.plan, source_map=parsed.source_map, code_policy=check_source)
    plan = parsed.plan
    record.update(
        name=plan.name,
        nodes=len(plan.nodes),
        hash=plan_hash(plan),
        problems=[_problem_dict(p) for p in problems],
        ok=not problems,
    )
    return record


def _print_record(record: dict[str, Any]) -> None:
    source = record["path"]
    if "error" in record:
        print_error(record["error"])
        return
    for problem in record["problems"]:
        _print_plain(Problem(**problem).format(source))
    if record["ok"]:
        n = record["nodes"]
        _print_plain(f"ok: {record['name']} ({n} node{'s' if n != 1 else ''}) {record['hash']}")
    elif "name" in record:
        n = len(record["problems"])
        err_console.print(f"{escape(source)}: {n} problem{'s' if n != 1 else ''}", highlight=False)


def validate(
    plans: Annotated[
        list[Path],
        typer.Argument(metavar="PLAN", help="Plan file(s) to check.", show_default=False),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Check plan files; print "ok: NAME (N nodes) sha256:…" or one line per problem.

    Exit status 0 when every plan is valid, 1 when one is not, 2 when one cannot be read.
    With --json: one JSON list of {path, ok, name, nodes, hash, problems[], error}.
    """
    records = [_check_one(path) for path in plans]
    if as_json:
        typer.echo(dumps_json(records, indent=2))
        for record in records:  # unreadable files are errors on stderr too
            if "error" in record:
                print_error(record["error"])
    else:
        for record in records:
            _print_record(record)
    if any("error" in r for r in records):
        raise typer.Exit(EXIT_USAGE)
    if not all(r["ok"] for r in records):
        raise typer.Exit(1)


def _short(text: str, width: int = 72) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    more = len(text.strip().splitlines()) > 1
    if len(first) > width:
        return first[: width - 1] + "…"
    return first + (" …" if more else "")


def _summary(value: Any) -> str:
    if isinstance(value, dict):
        return f"{{{len(value)} key{'s' if len(value) != 1 else ''}}}"
    if isinstance(value, list):
        return f"[{len(value)} item{'s' if len(value) != 1 else ''}]"
    return _short(json.dumps(value, ensure_ascii=False), 60)


def _label(*parts: tuple[str, str]) -> Text:
    return Text.assemble(*((clean_text(text), style) for text, style in parts))


def _add_inputs(branch: Tree, inputs: dict[str, str]) -> None:
    if inputs:
        wiring = ", ".join(f"{param} ← {ref}" for param, ref in inputs.items())
        branch.add(_label(("inputs: ", "dim"), (wiring, "")))


def _add_fields(branch: Tree, plan: Plan, node_id: str) -> None:
    fields = node_fields(plan, node_id)
    text = ", ".join(fields) if fields is not None else "unknown (not inferable from run)"
    branch.add(_label(("fields: ", "dim"), (text, "green")))


def _node_branch(parent: Tree, plan: Plan, node: LlmNode | CodeNode | ConsensusNode) -> None:
    if isinstance(node, LlmNode):
        params = f"model {node.model} · T={node.temperature} · max_tokens={node.max_tokens}"
        branch = parent.add(_label((node.id, "bold"), ("  llm  ", "cyan"), (params, "")))
        _add_inputs(branch, dict(node.inputs))
        if node.system:
            branch.add(_label(("system: ", "dim"), (_short(node.system), "")))
        branch.add(_label(("prompt: ", "dim"), (_short(node.prompt), "")))
        _add_fields(branch, plan, node.id)
    elif isinstance(node, CodeNode):
        n_lines = len(node.code.splitlines())
        branch = parent.add(
            _label((node.id, "bold"), ("  code  ", "magenta"), (f"{n_lines} lines", ""))
        )
        _add_inputs(branch, dict(node.inputs))
        _add_fields(branch, plan, node.id)
    else:
        temp = "wrapped node's" if node.temperature is None else str(node.temperature)
        params = f"×{node.n} · T={temp} · vote={node.vote}"
        branch = parent.add(_label((node.id, "bold"), ("  consensus  ", "yellow"), (params, "")))
        _add_fields(branch, plan, node.id)
        try:
            wrapped = plan.node(node.of)
        except KeyError:
            return
        samples = branch.add(_label(("samples: ", "dim"), (node.of, "")))
        _node_branch(samples, plan, wrapped)
    if node.description:
        branch.add(_label(("description: ", "dim"), (_short(node.description), "")))


def _tree(plan: Plan) -> Tree:
    root = Tree(_label((plan.name, "bold")), hide_root=True)
    inputs = root.add(_label(("inputs", "bold")))
    for name, type_ in plan.inputs.items():
        inputs.add(_label((name, ""), (f": {type_}", "dim")))
    nodes = root.add(_label(("nodes", "bold"), (" (in execution order)", "dim")))
    wrapped = plan.wrapped_ids()
    for node_id in topo_order(plan):
        if node_id not in wrapped:
            _node_branch(nodes, plan, plan.node(node_id))
    outputs = root.add(_label(("outputs", "bold")))
    for name, ref in plan.outputs.items():
        outputs.add(_label((name, ""), (f" ← {ref}", "")))
    if plan.metadata:
        meta = root.add(_label(("metadata", "bold")))
        for key, value in plan.metadata.items():
            meta.add(_label((f"{key}: ", "dim"), (_summary(value), "")))
    return root


def show(
    plan: PlanArg,
    mermaid: Annotated[
        bool, typer.Option("--mermaid", help="Print the DAG as Mermaid flowchart text.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the plan as JSON (all fields, defaults too).")
    ] = False,
) -> None:
    """Show a plan: inputs, nodes in execution order, outputs, content hash, metadata."""
    if mermaid and as_json:
        raise UsageError("--mermaid and --json cannot be combined", hint="choose one")
    loaded = load_plan(plan)
    if mermaid:
        typer.echo(clean_text(to_mermaid(loaded)), nl=False)
    elif as_json:
        typer.echo(dumps_json(loaded.model_dump(mode="json"), indent=2))
    else:
        out_console.print(
            _label((loaded.name, "bold"), ("  ", ""), (plan_hash(loaded), "dim")), highlight=False
        )
        if loaded.description:
            out_console.print(_label((loaded.description.strip(), "italic")), highlight=False)
        out_console.print(_tree(loaded), highlight=False)


def _value(value: Any) -> Any:
    return None if value is ABSENT else value


def _changes(changes: tuple[FieldChange, ...]) -> list[dict[str, Any]]:
    return [
        {
            "field": c.field,
            "change": "added" if c.old is ABSENT else "removed" if c.new is ABSENT else "changed",
            "old": _value(c.old),
            "new": _value(c.new),
        }
        for c in changes
    ]


def _diff_dict(result: PlanDiff, hashes: tuple[str, str]) -> dict[str, Any]:
    return {
        "a": {"label": result.a_label, "hash": hashes[0]},
        "b": {"label": result.b_label, "hash": hashes[1]},
        "same": result.is_empty,
        "metadata_changed": result.metadata_changed,
        "plan": _changes(result.plan_changes),
        "inputs": _changes(result.input_changes),
        "outputs": _changes(result.output_changes),
        "added": [n.model_dump(mode="json") for n in result.added],
        "removed": [n.model_dump(mode="json") for n in result.removed],
        "changed": [{"id": c.node_id, "changes": _changes(c.changes)} for c in result.changed],
    }


def diff(
    old: Annotated[Path, typer.Argument(metavar="A", help="The old plan.", show_default=False)],
    new: Annotated[Path, typer.Argument(metavar="B", help="The new plan.", show_default=False)],
    as_json: JsonOpt = False,
) -> None:
    """Show node-level changes from plan A to plan B (prompts and code as unified diffs).

    Exit status, as with diff(1): 0 when the plans have the same content (metadata aside),
    1 when they differ, 2 when a plan cannot be read.
    """
    try:
        plan_a = load_plan(old, validate=False)
        plan_b = load_plan(new, validate=False)
    except SgdeError as exc:
        print_error(str(exc))
        raise typer.Exit(EXIT_USAGE) from None
    hashes = (plan_hash(plan_a), plan_hash(plan_b))
    result = diff_plans(
        plan_a,
        plan_b,
        a_label=f"{old} ({hashes[0][:19]})",
        b_label=f"{new} ({hashes[1][:19]})",
    )
    if as_json:
        typer.echo(dumps_json(_diff_dict(result, hashes), indent=2, default=str))
        if not result.is_empty:
            raise typer.Exit(1)
        return
    if result.is_empty:
        if result.metadata_changed:
            _print_plain("plans have the same content; only metadata differs", style="dim")
        return
    for line in result.lines():
        _print_plain(line.text, style=_DIFF_STYLES.get(line.kind, ""))
    raise typer.Exit(1)


def schema() -> None:
    """Print the JSON Schema (draft 2020-12) of the plan file format."""
    typer.echo(dumps_json(plan_json_schema(), indent=2))


def register(app: typer.Typer) -> None:
    """Add the plan commands to the ``sgde`` app."""
    app.command("validate")(validate)
    app.command("show")(show)
    app.command("diff")(diff)
    app.command("schema")(schema)
