"""Prompt rewrite: the teacher rewrites a node's system prompt and template (JSON).

A weak teacher's one rewrite is a weak proposal, so the operator asks for several, each in
its own layout (``REWRITE_STYLES``; the guidance text is in ``prompts/rewrite.j2``), and
returns them as variants of one edit: the loop scores each on the training rows and keeps
the one whose node errs least (:func:`~sgde.optimize.accept.choose_variant`), so sgde's
statistics choose, not the teacher. Measured on the refund workflow's classify step
(Qwen2.5-Coder-0.5B, 12 rows): the hand-written prompt 3/12 (the student answered the last
label every time), the same definitions laid out rules first 11/12.

The 1.5B teacher's own "rules first" rewrite did not lay the rules first (the refund compile
scored it 0.667 node error, like the plain one), so sgde adds one layout of its own, without a
model call: the node's paragraphs that read no variable moved before those that do
(``instructions-first``), so that the input is the last thing the student reads before it
answers. Measured by hand on the same step: 3/12 -> 10/12.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sgde.errors import PlanError
from sgde.optimize.operators.base import Candidate, EditFailure, Variant, validated
from sgde.optimize.teacher import Teacher, TeacherOutputError, render_prompt
from sgde.plan.model import ConsensusNode, LlmNode, Plan
from sgde.planfile import template_variables

__all__ = ["REWRITE_SCHEMA", "REWRITE_STYLES", "instructions_first", "rewrite_prompt"]

# Layouts the teacher is asked for, in order (the first is the plain rewrite).
REWRITE_STYLES: tuple[str, ...] = ("direct", "rules-first", "look-for")

REWRITE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "system": {"type": "string", "minLength": 1, "maxLength": 2000},
        "prompt": {"type": "string", "minLength": 1, "maxLength": 4000},
    },
    "required": ["system", "prompt"],
    "additionalProperties": False,
}


def _variables(template: str) -> set[str] | str:
    try:
        return template_variables(template)
    except PlanError as exc:
        return "; ".join(p.message for p in exc.problems) or exc.message


async def rewrite_prompt(
    plan: Plan,
    node_id: str,
    *,
    teacher: Teacher,
    failures: Sequence[dict[str, Any]],
    diagnosis: str,
    history: Sequence[str],
    temperature: float = 0.0,
    seed: int | None = None,
    candidates: int = 1,
) -> Candidate | EditFailure:
    """Ask the teacher for a new ``{system, prompt}`` of LLM node ``node_id``.

    The new template must read exactly the variables the old one read (all of them inputs of
    the node) and the edited plan must pass ``check_plan``; an answer that breaks either goes
    back to the teacher with the problem (the teacher's JSON retries). With ``candidates`` > 1
    the teacher writes one rewrite per style of ``REWRITE_STYLES`` (up to ``candidates``); the
    distinct valid ones become the candidate's ``variants``, with sgde's own
    ``instructions-first`` layout of the node's prompt (:func:`instructions_first`) last. A
    style whose answer stays invalid is dropped; the edit fails only when none is valid.
    """
    try:
        node = plan.node(node_id)
    except KeyError:
        return EditFailure("rewrite_prompt", node_id, f"the plan has no node {node_id!r}")
    if isinstance(node, ConsensusNode):
        node_id = node.of
        node = plan.node(node_id)
    if not isinstance(node, LlmNode):
        return EditFailure("rewrite_prompt", node_id, f"{node_id!r} is not an LLM node")
    llm: LlmNode = node
    old_vars = _variables(llm.prompt)
    required = sorted(old_vars) if isinstance(old_vars, set) else sorted(llm.inputs)
    seen: set[tuple[str, str]] = {(llm.system.strip(), llm.prompt.strip())}
    found: list[tuple[str, Plan, dict[str, Any]]] = []
    errors: list[str] = []
    for k, style in enumerate(REWRITE_STYLES[: max(1, candidates)]):
        got = await _one_rewrite(
            plan,
            llm,
            teacher=teacher,
            style=style,
            failures=failures,
            diagnosis=diagnosis,
            history=history,
            required=required,
            seen=seen,
            temperature=temperature,
            seed=None if seed is None else seed + 7 * k,
        )
        if isinstance(got, str):
            errors.append(f"{style}: {got}")
            continue
        found.append((style, *got))
    moved = instructions_first(llm.prompt)
    if moved is not None and (llm.system.strip(), moved) not in seen:
        reordered = llm.model_copy(update={"prompt": moved})
        nodes = [reordered if n.id == node_id else n for n in plan.nodes]
        checked, _ = validated(plan.model_copy(update={"nodes": nodes}))
        if checked is not None:
            found.append(("instructions-first", checked, {"system": llm.system, "prompt": moved}))
    if not found:
        return EditFailure("rewrite_prompt", node_id, "; ".join(errors))
    first_style, first_plan, first_answer = found[0]
    summary = f"rewrite the prompt of {node_id}"
    if len(found) == 1:
        return Candidate(
            first_plan,
            "rewrite_prompt",
            node_id,
            summary,
            details={**first_answer, "style": first_style},
        )
    return Candidate(
        first_plan,
        "rewrite_prompt",
        node_id,
        summary,
        details={
            **first_answer,
            "variant_kind": "rewrites",
            "rewrites": {style: answer for style, _, answer in found},
            "failed_styles": errors,
        },
        proposals=len(found),
        variants=tuple(
            Variant(style, edited, node_id, len(a["system"]) + len(a["prompt"]))
            for style, edited, a in found
        ),
    )


def instructions_first(template: str) -> str | None:
    """``template`` with its paragraphs that read no variable moved before those that do (each
    group in its own order), or None when that changes nothing or a paragraph does not parse
    on its own (a block spanning paragraphs)."""
    paragraphs = [p for p in re.split(r"\n\s*\n", template.strip()) if p.strip()]
    reads: list[bool] = []
    for paragraph in paragraphs:
        names = _variables(paragraph)
        if isinstance(names, str):
            return None
        reads.append(bool(names))
    moved = [p for p, r in zip(paragraphs, reads, strict=True) if not r] + [
        p for p, r in zip(paragraphs, reads, strict=True) if r
    ]
    return None if moved == paragraphs else "\n\n".join(moved)


async def _one_rewrite(
    plan: Plan,
    node: LlmNode,
    *,
    teacher: Teacher,
    style: str,
    failures: Sequence[dict[str, Any]],
    diagnosis: str,
    history: Sequence[str],
    required: list[str],
    seen: set[tuple[str, str]],
    temperature: float,
    seed: int | None,
) -> tuple[Plan, dict[str, Any]] | str:
    """One rewrite of ``node`` in ``style``: the edited plan and the answer, or why none."""
    box: dict[str, Plan] = {}

    def check(answer: dict[str, Any]) -> str | None:
        new_vars = _variables(answer["prompt"])
        if isinstance(new_vars, str):
            return f"the template does not parse: {new_vars}"
        if new_vars != set(required):
            return (
                f"the template must use exactly the variables {required}, "
                f"it uses {sorted(new_vars)}"
            )
        if (answer["system"].strip(), answer["prompt"].strip()) in seen:
            return "the answer repeats a prompt already tried; write a different instruction"
        edited_node = node.model_copy(
            update={"system": answer["system"].strip(), "prompt": answer["prompt"].strip()}
        )
        nodes = [edited_node if n.id == node.id else n for n in plan.nodes]
        checked, problems = validated(plan.model_copy(update={"nodes": nodes}))
        if checked is None:
            return "the edited plan is invalid: " + "; ".join(problems)
        box["plan"] = checked
        return None

    prompt = render_prompt(
        "rewrite.j2",
        system=node.system,
        prompt=node.prompt,
        fields=node.fields(),
        diagnosis=diagnosis,
        failures=list(failures),
        history=list(history),
        variables=required,
        problems=[],
        style=style,
    )
    try:
        answer = await teacher.json(
            prompt,
            REWRITE_SCHEMA,
            purpose="rewrite_prompt",
            temperature=temperature,
            seed=seed,
            check=check,
        )
    except TeacherOutputError as exc:
        return exc.message
    seen.add((answer["system"].strip(), answer["prompt"].strip()))
    return box["plan"], {"system": answer["system"], "prompt": answer["prompt"]}
