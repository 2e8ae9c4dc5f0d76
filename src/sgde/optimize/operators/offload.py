"""Offload by "solve, then lift" (measured: the 1.5B local teacher lifts 4 of 5 GSM-Hard templates).

1. A candidate is a teacher ``solution()`` for one training example, verified against that
   example's gold answer (supervision's solutions first, then fresh samples at
   ``candidate_temperature`` with distinct seeds, rotating over the examples).
2. Its literals that occur in the example's text are lifted into parameters
   (:mod:`sgde.optimize.lift`): ``run(**params)``.
3. Parameter values of the *other* examples come from positional alignment of the numbers in
   their texts, or — when the count of numbers differs — from a schema-constrained teacher
   extraction call.
4. The lifted code runs in the sandbox on every training example and must reproduce each
   gold value; failing candidates get ``repair_rounds`` repairs fed the failing cases and the
   sandbox errors. The first candidate verified on all examples wins.
5. Topology: ``<node>_extract`` (student LLM node copying the parameters out of the text,
   ``integer`` fields when every training value is integral) → ``<node>_compute`` (code node
   with the verified ``run``) → the outputs the node fed.

Code from the teacher is untrusted: it only ever runs in the sandbox.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sgde.errors import SandboxError
from sgde.optimize.lift import LiftError, LiftResult, align_params, lift_solution
from sgde.optimize.operators.base import Candidate, EditFailure, rewire, unique_id, validated
from sgde.optimize.settings import CompileSettings
from sgde.optimize.supervision import Solution, run_code, solve_examples
from sgde.optimize.teacher import Teacher, TeacherOutputError, render_prompt
from sgde.plan.model import CodeNode, ConsensusNode, LlmNode, Plan
from sgde.plan.refs import parse_ref
from sgde.runtime.calls import CodeRunner
from sgde.runtime.numbers import numbers_match

__all__ = ["OffloadTarget", "offload", "offload_target"]


@dataclass(frozen=True)
class OffloadTarget:
    """What an offload replaces: the node, its vote wrapper, the field and text inputs."""

    node: LlmNode
    vote_id: str | None
    output_field: str
    text_inputs: dict[str, str]
    fields: tuple[str, ...] = ()


def offload_target(plan: Plan, node_id: str) -> OffloadTarget | str:
    """Check that ``node_id`` can be offloaded; the reason as a string when it cannot.

    Offloadable: an LLM node (or the node a consensus node wraps) with at least one input, of
    which at least one field is used downstream (``output_field`` is the first used field,
    ``fields`` lists them all). A node reading only upstream nodes' fields has no
    ``text_inputs``: only verified programs over those fields replace it (the
    solve-then-lift path reads text and refuses it).
    """
    try:
        node = plan.node(node_id)
    except KeyError:
        return f"the plan has no node {node_id!r}"
    if isinstance(node, ConsensusNode):
        node = plan.node(node.of)
    if not isinstance(node, LlmNode):
        return f"{node_id!r} is not an LLM node"
    votes = [n.id for n in plan.nodes if isinstance(n, ConsensusNode) and n.of == node.id]
    vote_id = votes[0] if votes else None
    sources = {node.id} | set(votes)
    used: set[str] = set()
    refs = list(plan.outputs.values())
    for n in plan.nodes:
        if isinstance(n, (LlmNode, CodeNode)):
            refs.extend(n.inputs.values())
    for text in refs:
        ref = parse_ref(text)
        if ref.source in sources:
            used.add(ref.field)
    if not used:
        return f"{node.id!r} feeds nothing downstream"
    text_inputs = {
        param: parse_ref(r).field for param, r in node.inputs.items() if parse_ref(r).is_input
    }
    if not node.inputs:
        return f"{node.id!r} reads no input"
    ordered = [f for f in node.fields() if f in used] + sorted(used - set(node.fields()))
    return OffloadTarget(node, vote_id, ordered[0], text_inputs, tuple(ordered))


@dataclass
class _Verification:
    passed: bool
    failures: list[dict[str, Any]] = field(default_factory=list)


async def _verify(
    sandbox: CodeRunner,
    code: str,
    params: Sequence[Mapping[str, Any] | None],
    texts: Sequence[str],
    golds: Sequence[Any],
    output_field: str,
) -> _Verification:
    failures: list[dict[str, Any]] = []
    for i, (values, gold) in enumerate(zip(params, golds, strict=False)):
        case: dict[str, Any] = {"row": i, "text": texts[i], "params": values, "expected": gold}
        if values is None:
            failures.append({**case, "outcome": "its quantities could not be read"})
            continue
        try:
            out = await run_code(sandbox, code, values, "run")
        except SandboxError as exc:
            failures.append({**case, "outcome": f"error: {exc.message}"})
            continue
        got = out.get(output_field) if isinstance(out, dict) else out
        if not numbers_match(got, gold):
            failures.append({**case, "outcome": f"got {got!r}"})
    return _Verification(not failures, failures)


def _signature_problem(code: str, params: Sequence[str]) -> str | None:
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        return f"syntax error: {exc.msg} (line {exc.lineno})"
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef) and stmt.name == "run":
            names = [a.arg for a in stmt.args.args]
            if names != list(params):
                want, got = ", ".join(params), ", ".join(names)
                return f"run() must take exactly ({want}), it takes ({got})"
            return None
    return "the code defines no function run()"


def _clean(text: str) -> str:
    return text.replace("{", "(").replace("}", ")").replace('"', "'")


def _build(
    plan: Plan,
    target: OffloadTarget,
    lift: LiftResult,
    code: str,
    row_params: Sequence[Mapping[str, Any] | None],
) -> tuple[Plan | None, list[str], str, str]:
    node = target.node
    extract_id = unique_id(plan, f"{node.id}_extract")
    compute_id = unique_id(plan, f"{node.id}_compute")
    props: dict[str, Any] = {}
    for p in lift.params:
        values = [r[p.name] for r in row_params if r is not None and p.name in r]
        integral = all(float(v).is_integer() for v in values) if values else True
        props[p.name] = {
            "type": "integer" if integral else "number",
            "description": f'the number in "{_clean(p.context)}"',
        }
    variables = list(target.text_inputs)
    prompt = render_prompt(
        "extraction_prompt.j2",
        variables=variables,
        params=[{"name": p.name, "snippet": _clean(p.context)} for p in lift.params],
    )
    extract = LlmNode(
        id=extract_id,
        model=node.model,
        description=f"copy the quantities of {node.id}'s task out of the text",
        inputs={v: node.inputs[v] for v in variables},
        system=render_prompt("extraction_system.md").strip(),
        prompt=prompt.strip(),
        output_schema={
            "type": "object",
            "properties": props,
            "required": [p.name for p in lift.params],
            "additionalProperties": False,
        },
        temperature=0.0,
        max_tokens=24 + 24 * len(lift.params),
    )
    compute = CodeNode(
        id=compute_id,
        description=f"computes {target.output_field} (offloaded from {node.id}, verified)",
        inputs={p.name: f"{extract_id}.{p.name}" for p in lift.params},
        code=code,
        outputs=[target.output_field],
    )
    nodes: list[Any] = []
    for n in plan.nodes:
        if n.id == node.id:
            nodes.extend([extract, compute])
        elif n.id != target.vote_id:
            nodes.append(n)
    sources = {node.id, target.vote_id}
    edited = rewire(
        plan,
        lambda src, fld: f"{compute_id}.{fld}" if src in sources else None,
        nodes=nodes,
        skip={extract_id},
    )
    checked, problems = validated(edited)
    return checked, problems, extract_id, compute_id


async def offload(
    plan: Plan,
    node_id: str,
    *,
    teacher: Teacher,
    sandbox: CodeRunner,
    rows: Sequence[Mapping[str, Any]],
    golds: Sequence[Any],
    solutions: Sequence[Solution | None],
    settings: CompileSettings,
    seed: int,
) -> Candidate | EditFailure:
    """Offload node ``node_id`` to verified code by solve-then-lift (see module docstring).

    Args:
        plan: The current plan (not modified).
        node_id: LLM node (or its consensus wrapper) whose one used output is computable.
        teacher: Structured teacher.
        sandbox: ``SandboxPool`` for all code execution.
        rows: Training rows.
        golds: Expected value of the offloaded field per row.
        solutions: Verified teacher solutions per row (from supervision).
        settings: Candidates, repair rounds, temperatures.
        seed: Base seed for sampled candidates.
    """
    target = offload_target(plan, node_id)
    if isinstance(target, str):
        return EditFailure("offload", node_id, target)
    if not target.text_inputs:
        return EditFailure(
            "offload", target.node.id, f"{target.node.id!r} reads no input of the plan to lift from"
        )
    texts = ["\n".join(str(row.get(v, "")) for v in target.text_inputs.values()) for row in rows]
    log: list[str] = []
    extracted: dict[tuple[int, tuple[str, ...]], dict[str, Any] | None] = {}
    seen_codes: set[str] = set()
    pool = [s for s in solutions if s is not None]
    proposals = 0

    async def params_for(lift: LiftResult) -> list[dict[str, Any] | None]:
        names = tuple(p.name for p in lift.params)
        out: list[dict[str, Any] | None] = []
        for i, text in enumerate(texts):
            aligned = align_params(lift, text)
            if aligned is not None:
                out.append(dict(aligned))
                continue
            key = (i, names)
            if key not in extracted:
                schema = {
                    "type": "object",
                    "properties": {n: {"type": "number"} for n in names},
                    "required": list(names),
                    "additionalProperties": False,
                }
                prompt = render_prompt(
                    "extract.j2",
                    text=text,
                    params=[{"name": p.name, "snippet": p.snippet} for p in lift.params],
                )
                try:
                    extracted[key] = await teacher.json(prompt, schema, purpose="extract")
                except TeacherOutputError:
                    extracted[key] = None
            out.append(extracted[key])
        return out

    for k in range(settings.offload_candidates):
        source: Solution
        if k < len(pool):
            source = pool[k]
        else:
            row = k % len(rows)
            fresh = await solve_examples(
                teacher,
                sandbox,
                [texts[row]],
                [golds[row]],
                attempts=1,
                temperature=settings.candidate_temperature,
                seed=seed + 7919 * k,
                first_temperature=settings.candidate_temperature,
            )
            if fresh[0] is None:
                log.append(f"candidate {k + 1}: the sampled solution of row {row + 1} was wrong")
                continue
            source = Solution(row, fresh[0].code, fresh[0].answer)
        try:
            lift = lift_solution(source.code, texts[source.row], output_field=target.output_field)
        except LiftError as exc:
            log.append(f"candidate {k + 1}: lifting failed: {exc}")
            continue
        if lift.code in seen_codes:
            log.append(f"candidate {k + 1}: same lifted code as an earlier candidate")
            continue
        seen_codes.add(lift.code)
        row_params = await params_for(lift)
        code = lift.code
        names = [p.name for p in lift.params]
        result = _Verification(False)
        fresh_code = True
        for round_ in range(settings.repair_rounds + 1):
            if fresh_code:
                proposals += 1
                result = await _verify(sandbox, code, row_params, texts, golds, target.output_field)
            if result.passed:
                built, problems, extract_id, compute_id = _build(
                    plan, target, lift, code, row_params
                )
                if built is None:
                    log.append(
                        f"candidate {k + 1}: the offloaded plan is invalid: " + "; ".join(problems)
                    )
                    break
                return Candidate(
                    built,
                    "offload",
                    target.node.id,
                    f"offload {target.node.id}.{target.output_field} to code "
                    f"({extract_id} → {compute_id}, params {', '.join(names)})",
                    details={
                        "code": code,
                        "params": names,
                        "seed_row": source.row,
                        "candidate": k + 1,
                        "repairs": round_,
                        "log": log,
                    },
                    lifted={extract_id: list(row_params)},
                    proposals=proposals,
                )
            log.append(
                f"candidate {k + 1} round {round_}: wrong on "
                f"{len(result.failures)}/{len(rows)} rows"
            )
            if round_ == settings.repair_rounds:
                break
            prompt = render_prompt(
                "repair.j2",
                code=code,
                cases=result.failures[:3],
                entry="run",
                params=names,
                output_field=target.output_field,
            )
            repaired = await teacher.code(
                prompt,
                purpose="repair",
                temperature=0.0 if round_ == 0 else settings.candidate_temperature,
                seed=seed + 31 * k + round_,
            )
            problem = _signature_problem(repaired, names)
            fresh_code = problem is None
            if problem is not None:
                log.append(f"candidate {k + 1} repair {round_ + 1}: {problem}")
                continue
            code = repaired
    return EditFailure(
        "offload",
        target.node.id,
        f"no verified code for {target.node.id} after {settings.offload_candidates} "
        f"candidates: " + " | ".join(log[-4:]),
        details={"log": log},
        proposals=proposals,
    )
