"""Hardening at the end of a compile: probe each student extraction on perturbed rows.

Three training rows the student copied right say little about the next row: on the
rectangle family SmolLM2-135M read all three training rows right and then answered 15 × 15
for "Room plan: 51 m by 51 m". An extraction that an offload made has, besides the training
rows, free supervision: the training rows with a value replaced
(:func:`~sgde.optimize.sources.parsers.perturbed_rows`, every occurrence of it, a few
replacements per value) must be read with the new value. No label is needed — the values
are what the extraction must copy.

So when the loop stops (at zero training loss after sgde's readers took what code can read,
:func:`~sgde.optimize.lookahead.read_with_code`; or at ``max_iters``, or with no edit left —
not on the budget), each extraction still left to the student is run on up to
``harden_probes`` such probe rows — and so is each node of the user's plan that copies
numbers, with the teacher's instrumented solutions as its values (a multi-node workflow's
extract step; sgde's own layouts do not apply to it). When it misreads some, edits that can
make a copy step more reliable without changing what it reads are tried, cheapest to run
first:

1. ``layouts`` — the extraction in sgde's other prompt layouts for it (described, with the
   masked contexts, snippet; :func:`~sgde.optimize.operators.program_nodes.extraction_variants`,
   no model call): the offload chose among them on three rows, where they often tie;
2. ``rewrite_prompt`` — the teacher's rewrites (the registered operator, when there is one);
3. ``consensus`` — a vote: over those prompt layouts as members, or the registered consensus
   operator's members (prompt variants, temperature samples). A vote costs its members'
   calls on every production row, so it comes last.

Every variant of each edit runs on the same probes. The one with the fewest misread fields
is kept when it misreads fewer than the current plan does (a vote: at least two fewer reads)
AND the edited plan's training
loss is not higher (zero stays zero); otherwise the plan is left as it is. sgde's statistics
decide, on rows the proposals never saw; the probe figures are in the iteration's details.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sgde.errors import BudgetExceeded
from sgde.optimize.evaluate import PlanEval, node_loss
from sgde.optimize.lookahead import record_failure
from sgde.optimize.operators.base import Candidate, EditFailure, Variant, validated
from sgde.optimize.operators.consensus import grounded_fields, wrap_consensus
from sgde.optimize.operators.program_nodes import extraction_variants, prompt_size
from sgde.optimize.placement import Direction, Proposal
from sgde.optimize.report import IterationRecord
from sgde.optimize.sources.parsers import perturbed_rows
from sgde.optimize.sources.verified import Program
from sgde.optimize.supervision import node_outputs, node_statistics
from sgde.plan.graph import node_fields
from sgde.plan.hashing import plan_hash
from sgde.plan.model import ConsensusMember, LlmNode, Plan
from sgde.task import FieldType, TaskSpec

if TYPE_CHECKING:
    from sgde.optimize.loop import CompileLoop

__all__ = ["HARDENING", "harden", "probe_error", "probe_rows"]

HARDENING: tuple[Direction, ...] = ("rewrite_prompt", "consensus")
"""Directions of the edits tried on an extraction that misreads probe rows (see module)."""

_EPS = 1e-9
_STEPS = ("layouts", "teacher", "vote")
"""The hardening steps, in order (see module)."""
_SHIFTS = 3
"""Replacement values tried per value (``perturbed_rows``' ``shift``)."""
_CHUNK = 4
"""Probes run at a time (a variant that cannot win stops after a chunk)."""
_VOTE_GAIN = 2
"""Fewer wrong probe reads a vote must show (one is within the noise of its samples, and it
multiplies every production row's student calls): on the refund workflow (Qwen2.5-Coder-0.5B)
a 5-sample vote kept for one fewer of 24 probe reads scored 19/20 held out where the same
plan without it scored 20/20, at three times the tokens."""

Probe = tuple[dict[str, Any], dict[str, Any]]


def probe_rows(
    task: TaskSpec,
    rows: Sequence[Mapping[str, Any]],
    program: Program,
    fields: Sequence[str],
    limit: int,
) -> list[Probe]:
    """Up to ``limit`` distinct ``(inputs, expected field values)`` probes: the training
    rows with one value replaced at every occurrence, first replacement of every value
    first (so the rows and fields are covered before a second replacement is used)."""
    out: list[Probe] = []
    seen: set[str] = set()
    if limit <= 0:
        return out
    for shift in range(_SHIFTS):
        for inputs, expected in perturbed_rows(
            task, rows, program, fields, repeated=True, shift=shift
        ):
            key = repr(sorted(inputs.items()))
            if key in seen:
                continue
            seen.add(key)
            out.append((inputs, expected))
            if len(out) >= limit:
                return out
    return out


async def probe_error(
    loop: CompileLoop,
    plan: Plan,
    node_id: str,
    probes: Sequence[Probe],
    *,
    bound: float | None = None,
) -> tuple[float, bool]:
    """The mean over ``node_id``'s probed fields of the fraction of probes where the plan's
    value of the field (its vote's, when the node is wrapped) is wrong (1.0 when the node
    yields nothing to compare), and whether every probe ran.

    The probes run :data:`_CHUNK` at a time; with a ``bound``, a plan whose wrong reads so
    far already put its error at or above ``bound`` is not run further (it cannot win: a
    variant must misread strictly fewer), and that lower bound is returned. A vote costs its
    members' calls on every probe, so this saves most of a losing variant's student tokens.
    """
    expected = [dict(exp) for _, exp in probes]
    outputs: list[dict[str, dict[str, Any] | None]] = []
    error = 1.0
    for start in range(0, len(probes), _CHUNK):
        chunk = [dict(inputs) for inputs, _ in probes[start : start + _CHUNK]]
        batch = await loop.executor.run_batch(plan, chunk, seed=loop.settings.seed)
        outputs.extend(node_outputs(res.trace) for res in batch)
        stats = node_statistics(plan, [outputs], {node_id: expected[: len(outputs)]}).get(node_id)
        rates = (
            [f.error_rate for f in stats.fields.values() if f.error_rate is not None]
            if stats
            else []
        )
        if not rates:
            return 1.0, len(outputs) == len(probes)
        error = sum(rates) / len(rates)
        seen = len(outputs) / len(probes)
        if bound is not None and len(outputs) < len(probes) and error * seen >= bound - _EPS:
            return error * seen, False
    return error, True


def _supervised(loop: CompileLoop, plan: Plan, node: LlmNode) -> Program | None:
    """A node of the user's plan that copies numbers, as the values its probes perturb: its
    expected values on every training row (the teacher's instrumented solutions), no code.
    ``None`` unless every field is a number with an expected value on every row."""
    fields = node_fields_of(node)
    props = (node.output_schema or {}).get("properties", {})
    kinds = {f: (props.get(f) or {}).get("type") for f in fields}
    if not fields or any(k not in ("integer", "number") for k in kinds.values()):
        return None
    expected = list(loop.expected(plan).get(node.id) or [])
    if len(expected) < len(loop.rows) or any(
        e is None or any(f not in e for f in fields) for e in expected
    ):
        return None
    return Program(
        code="",
        params={f: FieldType.parse(str(kinds[f])) for f in fields},
        values=[{f: e[f] for f in fields} for e in expected if e is not None],
        origin="supervision",
    )


def _extractions(loop: CompileLoop, plan: Plan) -> list[tuple[LlmNode, list[str], Program, bool]]:
    """The student nodes that copy values: ``(node, fields probed, values, sgde's own)``.
    sgde's own are the extractions an offload made (their program's parameters); the others
    are nodes of the user's plan that copy numbers (:func:`_supervised`)."""
    out: list[tuple[LlmNode, list[str], Program, bool]] = []
    for node in plan.nodes:
        if not isinstance(node, LlmNode):
            continue
        program = loop.source.program_of(node.id)
        own = isinstance(program, Program)
        if not isinstance(program, Program):
            program = _supervised(loop, plan, node)
        if program is None:
            continue
        fields = [
            f
            for f in node_fields(plan, node.id) or []
            if f in program.params and f not in program.raw_inputs
        ]
        if fields:
            out.append((node, fields, program, own))
    return out


def _layouts(node: LlmNode, program: Program, fields: Sequence[str]) -> list[tuple[str, LlmNode]]:
    """sgde's extraction prompt layouts for ``node`` other than the one it has (see module);
    none when the node reads more fields than the program's."""
    if set(node_fields_of(node)) != set(fields):
        return []
    variants = extraction_variants(
        node.id,
        model=node.model,
        inputs=node.inputs,
        params={f: program.params[f] for f in fields},
        descriptions=program.descriptions,
        purpose=node.description or "",
        values=program.values,
        contexts=program.contexts,
    )
    return [(n, v) for n, v in variants if (v.system, v.prompt) != (node.system, node.prompt)]


def node_fields_of(node: LlmNode) -> list[str]:
    """The output fields of an LLM node's schema."""
    props = (node.output_schema or {}).get("properties", {})
    return list(props) if isinstance(props, dict) else []


def _prompt_edit(
    plan: Plan, node: LlmNode, layouts: Sequence[tuple[str, LlmNode]]
) -> Candidate | EditFailure:
    """The extraction swapped for each of sgde's other layouts, as variants."""
    variants: list[Variant] = []
    for name, other in layouts:
        swapped = plan.model_copy(
            update={"nodes": [other if n.id == node.id else n for n in plan.nodes]}
        )
        checked, _ = validated(swapped)
        if checked is not None:
            variants.append(Variant(name, checked, node.id, prompt_size(other)))
    if not variants:
        return EditFailure("rewrite_prompt", node.id, "sgde has no other prompt layout for it")
    return Candidate(
        variants[0].plan,
        "rewrite_prompt",
        node.id,
        f"extraction {node.id} in another of sgde's prompt layouts",
        details={"variant_kind": "layouts"},
        proposals=len(variants),
        variants=tuple(variants),
    )


def _layout_vote(
    plan: Plan, node: LlmNode, layouts: Sequence[tuple[str, LlmNode]], grounded: Sequence[str]
) -> Candidate | None:
    """A vote over the extraction as it is and in sgde's other layouts (greedy members),
    grounded on the fields ``grounded``."""
    members = [ConsensusMember(name="as-is")] + [
        ConsensusMember(name=re.sub(r"[^A-Za-z0-9_-]", "-", name), system=v.system, prompt=v.prompt)
        for name, v in layouts
    ]
    if len(members) < 3:
        return None  # two members cannot outvote each other
    voted = wrap_consensus(
        plan, node.id, n=len(members), temperature=0.0, members=members, grounded=grounded
    )
    return None if isinstance(voted, EditFailure) else voted


async def _edits(
    loop: CompileLoop,
    plan: Plan,
    current: PlanEval,
    node: LlmNode,
    step: str,
    reason: str,
    program: Program | None,
) -> Candidate | EditFailure | None:
    """The edit of hardening ``step`` on ``node`` (``None``: the step does not apply);
    ``program``: the offload's program behind sgde's layouts (``None``: a user's node)."""
    layouts = _layouts(node, program, node_fields_of(node)) if program is not None else []
    if step == "layouts":
        return _prompt_edit(plan, node, layouts) if layouts else None
    direction: Direction = "rewrite_prompt" if step == "teacher" else "consensus"
    op = loop.operators.get(direction)
    theirs: Candidate | EditFailure | None = None
    proposal = Proposal(node.id, direction, reason)
    if (
        op is not None
        and op.check(plan, node.id) is None
        and proposal.key() not in loop.state.tried.get(plan_hash(plan), [])
    ):
        seed = loop.settings.seed + 101 * loop.state.iteration
        theirs = await loop._propose(plan, proposal, loop._stats(plan, current), [], reason, seed)
    if step == "teacher":
        return theirs
    grounded = grounded_fields(plan, node.id, loop.rows, loop.expected(plan))
    ours = _layout_vote(plan, node, layouts, grounded)
    if ours is None:
        return theirs
    mine = Variant("layouts", ours.plan, node.id, 0)
    if not isinstance(theirs, Candidate):
        return replace(ours, variants=(mine,))
    others = theirs.variants or (Variant("members", theirs.plan, node.id, 0),)
    return replace(theirs, variants=(*others, mine), proposals=theirs.proposals + 1)


async def _best_variant(
    loop: CompileLoop, edit: Candidate, node_id: str, probes: Sequence[Probe], before: float
) -> tuple[Variant, float, dict[str, float], list[str]]:
    """The variant of ``edit`` that misreads the fewest probe fields (ties: the earlier), the
    errors of all (a lower bound for those stopped early, named in the last list)."""
    variants = list(edit.variants) or [Variant(edit.direction, edit.plan, node_id, 0)]
    errors: dict[str, float] = {}
    stopped: list[str] = []
    best: tuple[Variant, float] | None = None
    for variant in variants:
        bound = before if best is None else min(before, best[1])
        error, whole = await probe_error(loop, variant.plan, node_id, probes, bound=bound)
        errors[variant.name] = round(error, 4)
        shown = f"{error:.3f}" if whole else f"≥ {error:.3f} (stopped early)"
        loop.event("forward", f"{node_id} {edit.direction} {variant.name}: probe error {shown}")
        if not whole:
            stopped.append(variant.name)
        elif best is None or error < best[1] - _EPS:
            best = (variant, error)
    if best is None:  # every variant stopped early: none can beat the plan
        first = variants[0]
        return first, errors[first.name], errors, stopped
    return best[0], best[1], errors, stopped


@dataclass
class _Kept:
    """The plan kept so far by the step and its training evaluation (updated in place, so
    a budget stop part-way loses no accepted edit)."""

    plan: Plan
    current: PlanEval


async def _harden_node(
    loop: CompileLoop,
    kept: _Kept,
    node_id: str,
    fields: Sequence[str],
    program: Program,
    own: bool,
) -> None:
    probes = probe_rows(loop.task, loop.rows, program, fields, loop.settings.harden_probes)
    if not probes:
        return
    before, _ = await probe_error(loop, kept.plan, node_id, probes)
    loop.event(
        "forward",
        f"{node_id}: probe error {before:.3f} on {len(probes)} perturbed training rows",
        data={"node_id": node_id, "probes": len(probes), "probe_error": before},
    )
    for step in _STEPS:
        plan, current = kept.plan, kept.current
        node = plan.node(node_id) if node_id in plan.node_ids() else None
        if before <= _EPS or not isinstance(node, LlmNode) or node_id in plan.wrapped_ids():
            break
        reason = f"{before:.0%} of field reads wrong on {len(probes)} perturbed training rows"
        edit = await _edits(loop, plan, current, node, step, reason, program if own else None)
        if edit is None:
            continue
        loop.state.iteration += 1
        record = IterationRecord(iteration=loop.state.iteration, loss_before=current.loss)
        proposal = Proposal(node_id, "consensus" if step == "vote" else "rewrite_prompt", reason)
        record.proposal = {"node_id": node_id, "direction": proposal.direction, "reason": reason}
        loop.report.iterations.append(record)
        if isinstance(edit, EditFailure):
            record_failure(loop, record, proposal, edit, current)
            continue
        loop.report.hypotheses += max(1, edit.proposals)
        variant, after, errors, stopped = await _best_variant(loop, edit, node_id, probes, before)
        record.edit = f"{edit.summary} [{variant.name}: probe error {after:.3f} vs {before:.3f}]"
        record.details = {
            "step": step,
            "probes": len(probes),
            "probe_error_before": round(before, 4),
            "probe_errors": errors,
            "probe_stopped_early": stopped,
            "variant": variant.name,
        }
        gain = round((before - after) * len(probes) * len(fields), 6)  # field reads
        need = _VOTE_GAIN if step == "vote" else 1
        if gain < need:
            why = f"probe error {after:.3f} vs {before:.3f}: no better"
            if gain > 0:
                why = (
                    f"probe error {after:.3f} vs {before:.3f}: {gain:g} fewer wrong read(s), "
                    f"a vote needs {need} (it multiplies the student's calls)"
                )
            record.why = why
            loop._record(proposal, "rejected", why, current, None, edit=edit)
            loop.event("rejected", f"{edit.summary}: {why}")
            continue
        label = f"iter{loop.state.iteration:02d}-harden-{variant.name}"
        evaluation = await loop.evaluate(variant.plan, label)
        node_loss(variant.plan, evaluation, loop.expected(variant.plan))
        record.candidate_loss = evaluation.loss
        if evaluation.loss > current.loss + _EPS:
            why = (
                f"probe error {before:.3f} → {after:.3f}, but training loss "
                f"{current.loss:.3f} → {evaluation.loss:.3f}"
            )
            record.why = why
            loop._record(proposal, "rejected", why, current, evaluation, edit=edit)
            loop.event("rejected", f"{edit.summary}: {why}", loss=evaluation.loss)
            continue
        loss = "zero" if evaluation.perfect else f"{evaluation.loss:.3f}"
        why = (
            f"training loss {loss}, probe error {before:.3f} → {after:.3f} on {len(probes)} probes"
        )
        record.accepted, record.why = True, why
        loop._record(proposal, "accepted", why, current, evaluation, edit=edit)
        loop.event("accepted", f"{edit.summary}: {why}", loss=evaluation.loss)
        loop._accept(edit, {}, 1)
        kept.plan, kept.current, before = variant.plan, evaluation, after


async def harden(
    loop: CompileLoop, plan: Plan, current: PlanEval
) -> tuple[Plan, PlanEval, BudgetExceeded | None]:
    """The hardening step at the end of the loop (see module). Returns the plan kept, its
    evaluation and the budget stop that cut the step short, if any: the edits kept before
    it stay kept (the caller re-raises it)."""
    if loop.settings.harden_probes <= 0:
        return plan, current, None
    kept = _Kept(plan, current)
    try:
        for node, fields, program, own in _extractions(loop, plan):
            if node.id in kept.plan.node_ids():
                await _harden_node(loop, kept, node.id, fields, program, own)
    except BudgetExceeded as stop:
        return kept.plan, kept.current, stop
    return kept.plan, kept.current, None
