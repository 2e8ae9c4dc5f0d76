"""Turn a verified program (and optionally a verified parser) into plan nodes.

A program is code ``run(**params)`` verified on the training rows (it comes from the candidate
sources: solve-then-lift, whole-task code, enumerative search). Its parameters are read in one
of three ways, cheapest first:

* **raw** — the parameter *is* a task input: wired straight from ``input.<name>``;
* **parsed** — teacher-written parsing code (a :class:`ParserLike`) reads it from the inputs;
* **extracted** — a student LLM node fills a typed JSON schema built from the parameter types
  and their descriptions (descriptions that hold across phrasings, from the sources).

The extraction node is built in a few prompt variants (:func:`extraction_variants`): the
description alone; the description and where the value stands in a training row (values
masked); the masked context alone in the "the number in '…'" form for numbers read from
text; the description and every distinct masked context of the training rows. Which one a
student reads best is measured, not guessed: the loop scores each on the training rows and
keeps the one with the lowest node-level error of the extraction, ties to the shorter
prompt (:meth:`sgde.optimize.loop.CompileLoop.score`).

Topology: ``[<node>_extract (llm) | <node>_parse (code)] → <node>_compute (code)`` → the
outputs the replaced node fed. A plan with no student call left is a legitimate result.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sgde.optimize.operators.base import drop_field_lines, rewire, unique_id, validated
from sgde.optimize.teacher import render_prompt
from sgde.plan.model import CodeNode, ConsensusNode, LlmNode, Plan
from sgde.task import FieldType

__all__ = [
    "BuiltProgram",
    "ParserLike",
    "ProgramLike",
    "build_program_plan",
    "extraction_variants",
    "prompt_size",
    "replace_fields",
]


class ProgramLike(Protocol):
    """What :func:`build_program_plan` reads of a program candidate."""

    @property
    def code(self) -> str: ...
    @property
    def params(self) -> Mapping[str, FieldType]: ...
    @property
    def values(self) -> Sequence[Mapping[str, Any] | None]: ...
    @property
    def raw_inputs(self) -> Mapping[str, str]: ...
    @property
    def descriptions(self) -> Mapping[str, str]: ...
    @property
    def contexts(self) -> Mapping[str, Sequence[str]]: ...
    @property
    def origin(self) -> str: ...
    @property
    def searched(self) -> int: ...
    @property
    def verified_rows(self) -> int: ...
    @property
    def answers(self) -> Mapping[str, str]: ...


class ParserLike(Protocol):
    """What :func:`replace_fields` reads of a verified parser."""

    @property
    def code(self) -> str: ...
    @property
    def fields(self) -> Sequence[str]: ...
    @property
    def verified_rows(self) -> int: ...
    @property
    def searched(self) -> int: ...


@dataclass(frozen=True)
class BuiltProgram:
    """The plan built from a program, and what the loop needs to supervise it."""

    plan: Plan
    compute_id: str
    extract_id: str | None
    parse_id: str | None
    extracted: list[str]
    raw: dict[str, str]
    lifted: dict[str, list[dict[str, Any] | None]] = field(default_factory=dict)
    variants: list[tuple[str, Plan]] = field(default_factory=list)
    """``(name, plan)`` per extraction prompt variant (the first is ``plan``)."""

    @property
    def student_free(self) -> bool:
        """Whether the built plan needs no student call at all."""
        return not any(isinstance(n, LlmNode) for n in self.plan.nodes)


_NUMBER = re.compile(r"(?<![\w_])\d[\d,]*(?:\.\d+)?")
_NUMERIC = frozenset({"integer", "number"})
_MAX_CONTEXTS = 3


def _mask(
    text: str, name: str, values: Sequence[Mapping[str, Any] | None], *, quoted: bool = False
) -> str:
    """``text`` with the training values of field ``name`` shown as ``___`` and every other
    number as ``N``: a prompt quoting the seed row ("in 'ducks lay 16 eggs'") would make a
    small student copy the seed row's value."""
    own = {str(v[name]) for v in values if v is not None and name in v and v[name] is not None}
    for value in sorted(own, key=len, reverse=True):
        if value and (any(ch.isdigit() for ch in value) or len(value) >= 3):
            text = re.sub(rf"(?<![\w.]){re.escape(value)}(?![\w]|\.\d)", "___", text)
    text = _NUMBER.sub("N", text)
    text = text.replace("{", "(").replace("}", ")")
    return " ".join((text.replace('"', "'") if quoted else text).split())


def _describe(
    name: str,
    descriptions: Mapping[str, str],
    values: Sequence[Mapping[str, Any] | None],
) -> str:
    """The field's description for the student, with training values masked."""
    text = descriptions.get(name) or f"the {name.replace('_', ' ')} the text gives"
    return _mask(text, name, values)


def _node(
    node_id: str,
    *,
    model: str,
    inputs: Mapping[str, str],
    purpose: str,
    system: str,
    prompt: str,
    props: dict[str, Any],
) -> LlmNode:
    return LlmNode(
        id=node_id,
        model=model,
        description=purpose,
        inputs=dict(inputs),
        system=system.strip(),
        prompt=prompt.strip(),
        output_schema={
            "type": "object",
            "properties": props,
            "required": list(props),
            "additionalProperties": False,
        },
        temperature=0.0,
        max_tokens=32 + 32 * len(props),
    )


def extraction_variants(
    node_id: str,
    *,
    model: str,
    inputs: Mapping[str, str],
    params: Mapping[str, FieldType],
    descriptions: Mapping[str, str],
    purpose: str,
    values: Sequence[Mapping[str, Any] | None] = (),
    contexts: Mapping[str, Sequence[str]] | None = None,
) -> list[tuple[str, LlmNode]]:
    """The student extraction node of ``params`` in its prompt variants, ``(name, node)``:

    * ``described`` — each field's description (always);
    * ``described+context`` — and the words around its value in the first training row
      where it is written once, values masked (when some field has such a context);
    * ``snippet`` — only that masked context, "the number in '…'" (every field a number
      read from text);
    * ``contexts`` — the description and up to three distinct masked contexts (when the
      training rows phrase some field differently).

    Identical prompts are dropped. Every text passes :func:`_mask`: the student never sees
    a training value of the field it fills.
    """
    ctx = {
        n: [_mask(c, n, values, quoted=True) for c in (contexts or {}).get(n, ())][:_MAX_CONTEXTS]
        for n in params
    }
    described = {n: _describe(n, descriptions, values) for n in params}
    typed_system = render_prompt("typed_extraction_system.md")

    def typed(shown: Mapping[str, list[str]]) -> LlmNode:
        listing = [
            {"name": n, "type": str(t), "description": described[n], "contexts": shown[n]}
            for n, t in params.items()
        ]
        props = {}
        for n, t in params.items():
            schema = dict(t.json_schema())
            where = " or ".join(f'"{c}"' for c in shown[n])
            schema["description"] = described[n] + (f" (in {where})" if where else "")
            props[n] = schema
        prompt = render_prompt("typed_extraction_prompt.j2", variables=list(inputs), params=listing)
        return _node(
            node_id,
            model=model,
            inputs=inputs,
            purpose=purpose,
            system=typed_system,
            prompt=prompt,
            props=props,
        )

    out = [("described", typed({n: [] for n in params}))]
    if any(ctx.values()):
        out.append(("described+context", typed({n: c[:1] for n, c in ctx.items()})))
    if all(t.kind in _NUMERIC for t in params.values()) and all(ctx.values()):
        props = {
            n: {**t.json_schema(), "description": f'the number in "{ctx[n][0]}"'}
            for n, t in params.items()
        }
        prompt = render_prompt(
            "extraction_prompt.j2",
            variables=list(inputs),
            params=[{"name": n, "snippet": ctx[n][0]} for n in params],
        )
        system = render_prompt("extraction_system.md")
        out.append(
            (
                "snippet",
                _node(
                    node_id,
                    model=model,
                    inputs=inputs,
                    purpose=purpose,
                    system=system,
                    prompt=prompt,
                    props=props,
                ),
            )
        )
    if any(len(c) > 1 for c in ctx.values()):
        out.append(("contexts", typed(ctx)))
    seen: set[tuple[str, str]] = set()
    unique = []
    for name, node in out:
        key = (node.system or "", node.prompt)
        if key not in seen:
            seen.add(key)
            unique.append((name, node))
    return unique


def prompt_size(node: LlmNode) -> int:
    """Characters the student reads besides the inputs (variant ties go to the shorter)."""
    return len(node.system or "") + len(node.prompt)


def build_program_plan(
    plan: Plan,
    node: LlmNode,
    vote_id: str | None,
    output_fields: Sequence[str],
    program: ProgramLike,
    *,
    parser: ParserLike | None = None,
) -> tuple[BuiltProgram | None, list[str]]:
    """Replace ``node`` (and its vote ``vote_id``) by nodes computing ``output_fields`` with
    ``program``; ``(None, problems)`` when the edited plan does not validate.

    Task-input parameters (``program.raw_inputs``) are wired from the plan inputs (when the
    plan has that input); parameters in ``parser.fields`` come from the parser's code node;
    the rest from one typed student extraction over the node's plan-input references.
    """
    raw = {
        p: node.inputs.get(i, f"input.{i}")
        for p, i in program.raw_inputs.items()
        if p in program.params and (i in node.inputs or i in plan.inputs)
    }
    # Params the node's own answers feed (``program.answers``: a classifier that abstains
    # where it reads nothing takes the student's label there); the node then stays.
    answering = vote_id or node.id
    asked = {
        p: f"{answering}.{f}"
        for p, f in program.answers.items()
        if p in program.params and f in node.fields()
    }
    raw.update(asked)
    parsed = [f for f in (parser.fields if parser else []) if f in program.params and f not in raw]
    extracted = [p for p in program.params if p not in raw and p not in parsed]
    node_inputs = dict(node.inputs)
    compute_id = unique_id(plan, f"{node.id}_compute")
    extract_id = unique_id(plan, f"{node.id}_extract") if extracted else None
    parse_id = unique_id(plan, f"{node.id}_parse") if parsed else None
    new_nodes: list[Any] = []
    wiring: dict[str, str] = dict(raw)
    if parse_id is not None and parser is not None:
        parse_inputs = {i: f"input.{i}" for i in plan.inputs}
        new_nodes.append(
            CodeNode(
                id=parse_id,
                description=f"reads {', '.join(parsed)} from the input (verified parser)",
                inputs=parse_inputs,
                code=parser.code,
                outputs=list(parsed),
            )
        )
        wiring.update({p: f"{parse_id}.{p}" for p in parsed})
    variants: list[tuple[str, LlmNode]] = []
    if extract_id is not None:
        variants = extraction_variants(
            extract_id,
            model=node.model,
            inputs=node_inputs,
            params={p: program.params[p] for p in extracted},
            descriptions=program.descriptions,
            purpose=f"copies the values {node.id}'s task needs out of the input",
            values=program.values,
            contexts=program.contexts,
        )
        new_nodes.append(variants[0][1])
        wiring.update({p: f"{extract_id}.{p}" for p in extracted})
    new_nodes.append(
        CodeNode(
            id=compute_id,
            description=(
                f"computes {', '.join(output_fields)} (offloaded from {node.id}; "
                f"{program.origin} program verified on {program.verified_rows} row(s))"
            ),
            inputs={p: wiring[p] for p in program.params},
            code=program.code,
            outputs=list(output_fields),
        )
    )
    nodes: list[Any] = []
    for n in plan.nodes:
        if n.id == node.id:
            nodes.extend([n, *new_nodes] if asked else new_nodes)
        elif n.id != vote_id or asked:
            nodes.append(n)
    sources = {node.id, vote_id}
    edited = rewire(
        plan,
        lambda src, fld: f"{compute_id}.{fld}" if src in sources else None,
        nodes=nodes,
        skip={nid for nid in (extract_id, parse_id, compute_id if asked else None) if nid},
    )
    checked, problems = validated(edited)
    if checked is None:
        return None, problems
    lifted: dict[str, list[dict[str, Any] | None]] = {}
    for nid, names in ((extract_id, extracted), (parse_id, parsed)):
        if nid is not None:
            lifted[nid] = [
                {k: v[k] for k in names if k in v} if v is not None else None
                for v in program.values
            ]
    plans = [(name, _swap(checked, variant)) for name, variant in variants]
    return (
        BuiltProgram(checked, compute_id, extract_id, parse_id, extracted, raw, lifted, plans),
        [],
    )


def _swap(plan: Plan, node: LlmNode) -> Plan:
    """``plan`` with its node of ``node.id`` replaced by ``node`` (same fields and wiring)."""
    nodes = [node if n.id == node.id else n for n in plan.nodes]
    return plan.model_copy(update={"nodes": nodes})


def replace_fields(
    plan: Plan, extract_id: str, parser: ParserLike
) -> tuple[Plan | None, list[str], str]:
    """Move ``parser.fields`` out of extraction node ``extract_id`` into a parser code node.

    The extraction keeps its other fields (or disappears when none is left); references to
    the moved fields are rewired to ``<extract_id>_parse``. Returns the plan (or ``None``),
    the validation problems and the parser node's id.
    """
    node = plan.node(extract_id)
    wrapped = {n.of: n.id for n in plan.nodes if isinstance(n, ConsensusNode)}
    if not isinstance(node, LlmNode) or node.output_schema is None:
        return None, [f"{extract_id!r} is not an extraction node with a schema"], ""
    moved = [f for f in parser.fields if f in node.fields()]
    if not moved:
        return None, [f"the parser reads none of {extract_id}'s fields"], ""
    parse_id = unique_id(plan, f"{extract_id}_parse")
    parse = CodeNode(
        id=parse_id,
        description=f"reads {', '.join(moved)} from the input (verified parser)",
        inputs={i: f"input.{i}" for i in plan.inputs},
        code=parser.code,
        outputs=list(moved),
    )
    keep = [f for f in node.fields() if f not in moved]
    vote_id = wrapped.get(extract_id)
    nodes: list[Any] = []
    for n in plan.nodes:
        if n.id == extract_id:
            nodes.append(parse)
            if keep:
                schema = dict(node.output_schema)
                schema["properties"] = {
                    k: v for k, v in schema.get("properties", {}).items() if k in keep
                }
                schema["required"] = [f for f in schema.get("required", keep) if f in keep]
                prompt = drop_field_lines(node.prompt, moved)
                nodes.append(node.model_copy(update={"output_schema": schema, "prompt": prompt}))
        elif n.id == vote_id and not keep:
            continue
        else:
            nodes.append(n)
    sources = {extract_id, vote_id}
    edited = rewire(
        plan,
        lambda src, fld: f"{parse_id}.{fld}" if src in sources and fld in moved else None,
        nodes=nodes,
        skip={parse_id},
    )
    checked, problems = validated(edited)
    return checked, problems, parse_id
