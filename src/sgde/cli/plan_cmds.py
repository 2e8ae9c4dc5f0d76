"""Plan commands: ``sgde validate``, ``sgde show``, ``sgde diff`` and ``sgde schema``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.text import Text
from rich.tree import Tree

from sgde.cli.common import err_console, out_console
from sgde.errors import PlanError, SgdeError, UsageError
from sgde.plan import (
    CodeNode,
    ConsensusNode,
    LlmNode,
    Plan,
    diff_plans,
    load_plan,
    node_fields,
    parse_plan,
    plan_hash,
    plan_json_schema,
    read_plan_text,
    to_mermaid,
    topo_order,
    validate_plan,
)

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
    out_console.print(Text(text, style=style), highlight=False)


def _validate_one(path: Path) -> bool:
    source = str(path)
    try:
        text = read_plan_text(path)
    except SgdeError as exc:  # missing or unreadable: report it and go on with the others
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        return False
    try:
        parsed = parse_plan(text, source=source)
    except PlanError as exc:
        if not exc.problems:
            _print_plain(f"{source}: {exc.message.removeprefix(source + ': ')}")
        for problem in exc.problems:
            _print_plain(problem.format(source))
        return False
    problems = validate_plan(parsed.plan, source_map=parsed.source_map)
    for problem in problems:
        _print_plain(problem.format(source))
    if problems:
        n = len(problems)
        err_console.print(f"{escape(source)}: {n} problem{'s' if n != 1 else ''}", highlight=False)
        return False
    plan = parsed.plan
    n_nodes = len(plan.nodes)
    _print_plain(f"ok: {plan.name} ({n_nodes} node{'s' if n_nodes != 1 else ''}) {plan_hash(plan)}")
    return True


def validate(
    plans: Annotated[
        list[Path],
        typer.Argument(metavar="PLAN...", help="Plan file(s) to check.", show_default=False),
    ],
) -> None:
    """Check plan files; print "ok: NAME (N nodes) sha256:…" or one line per problem.

    Exit status 0 when every plan is valid, 1 otherwise.
    """
    results = [_validate_one(path) for path in plans]
    if not all(results):
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
    return Text.assemble(*parts)


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
        typer.echo(to_mermaid(loaded), nl=False)
    elif as_json:
        typer.echo(json.dumps(loaded.model_dump(mode="json"), indent=2, ensure_ascii=False))
    else:
        out_console.print(
            _label((loaded.name, "bold"), ("  ", ""), (plan_hash(loaded), "dim")), highlight=False
        )
        if loaded.description:
            out_console.print(_label((loaded.description.strip(), "italic")), highlight=False)
        out_console.print(_tree(loaded), highlight=False)


def diff(
    old: Annotated[Path, typer.Argument(metavar="A", help="The old plan.", show_default=False)],
    new: Annotated[Path, typer.Argument(metavar="B", help="The new plan.", show_default=False)],
) -> None:
    """Show node-level changes from plan A to plan B (prompts and code as unified diffs).

    Exit status, as with diff(1): 0 when the plans have the same content (metadata aside),
    1 when they differ, 2 when a plan cannot be read.
    """
    try:
        plan_a = load_plan(old, validate=False)
        plan_b = load_plan(new, validate=False)
    except SgdeError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    result = diff_plans(
        plan_a,
        plan_b,
        a_label=f"{old} ({plan_hash(plan_a)[:19]})",
        b_label=f"{new} ({plan_hash(plan_b)[:19]})",
    )
    if result.is_empty:
        if result.metadata_changed:
            _print_plain("plans have the same content; only metadata differs", style="dim")
        return
    for line in result.lines():
        _print_plain(line.text, style=_DIFF_STYLES.get(line.kind, ""))
    raise typer.Exit(1)


def schema() -> None:
    """Print the JSON Schema (draft 2020-12) of the plan file format."""
    typer.echo(json.dumps(plan_json_schema(), indent=2, ensure_ascii=False))


def register(app: typer.Typer) -> None:
    """Add the plan commands to the ``sgde`` app."""
    app.command("validate")(validate)
    app.command("show")(show)
    app.command("diff")(diff)
    app.command("schema")(schema)
