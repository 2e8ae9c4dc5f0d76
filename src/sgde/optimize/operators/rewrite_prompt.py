"""Prompt rewrite: the teacher rewrites a node's system prompt and template (JSON)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sgde.errors import PlanError
from sgde.optimize.operators.base import Candidate, EditFailure, validated
from sgde.optimize.teacher import Teacher, TeacherOutputError, render_prompt
from sgde.plan.model import ConsensusNode, LlmNode, Plan
from sgde.planfile import template_variables

__all__ = ["REWRITE_SCHEMA", "rewrite_prompt"]

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
) -> Candidate | EditFailure:
    """Ask the teacher for a new ``{system, prompt}`` of LLM node ``node_id``.

    The new template must read exactly the variables the old one read (all of them inputs of
    the node) and the edited plan must pass ``check_plan``; an answer that breaks either goes
    back to the teacher with the problem (the teacher's JSON retries).
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
    old_vars = _variables(node.prompt)
    required = sorted(old_vars) if isinstance(old_vars, set) else sorted(node.inputs)
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
        if answer["prompt"].strip() == node.prompt.strip() and (
            answer["system"].strip() == node.system.strip()
        ):
            return "the answer repeats the current prompt; write a different instruction"
        edited_node = node.model_copy(
            update={"system": answer["system"].strip(), "prompt": answer["prompt"].strip()}
        )
        nodes = [edited_node if n.id == node_id else n for n in plan.nodes]
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
        return EditFailure("rewrite_prompt", node_id, exc.message)
    return Candidate(
        box["plan"],
        "rewrite_prompt",
        node_id,
        f"rewrite the prompt of {node_id}",
        details={"system": answer["system"], "prompt": answer["prompt"]},
    )
