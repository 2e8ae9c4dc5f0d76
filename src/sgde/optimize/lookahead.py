"""Look-ahead: one step of follow-up edits on a rejected candidate worth repairing
(:func:`worth_repairing`: it lowered the node-level error, or it is an offload that moved a
computation into verified code without raising it, so the error now sits in an extraction
that parse, split, a vote or a prompt rewrite may fix): up to ``beam_width`` follow-ups are
proposed on it and scored, and the compound edit is kept when it beats the current plan by
the accept rule."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sgde.errors import BudgetExceeded
from sgde.optimize.accept import decide
from sgde.optimize.evaluate import PlanEval
from sgde.optimize.operators.base import Candidate, EditFailure
from sgde.optimize.placement import Proposal
from sgde.optimize.report import IterationRecord
from sgde.plan.hashing import plan_hash
from sgde.plan.model import LlmNode, Plan

if TYPE_CHECKING:
    from sgde.optimize.loop import CompileLoop

__all__ = ["look_ahead", "read_with_code", "record_failure", "worth_repairing"]

_EPS = 1e-9


def worth_repairing(edit: Candidate, current: PlanEval, candidate: PlanEval) -> bool:
    """Whether a rejected ``edit`` (scored ``candidate`` against ``current``) gets a look-ahead.

    It does when it lowered the node-level error, and when it is an offload that did not raise
    it: the offload's code is verified, so what still errs is the extraction left to the
    student, which follow-ups can repair (issue: an offload tied end to end at loss 1.0 —
    the student filled a list field wrongly on every row — was discarded before a parser
    that reads the list was ever tried)."""
    if candidate.node_loss is None or current.node_loss is None:
        return False
    if candidate.node_loss < current.node_loss - _EPS:
        return True
    return edit.direction == "offload" and candidate.node_loss <= current.node_loss + _EPS


async def look_ahead(
    loop: CompileLoop,
    current: PlanEval,
    base: Candidate,
    base_eval: PlanEval,
    base_lifted: dict[str, list[dict[str, Any] | None]],
    record: IterationRecord,
) -> tuple[Plan, PlanEval] | None:
    """Try up to ``beam_width`` follow-up edits on a rejected candidate that lowered the
    node-level error; returns the accepted compound plan, if any."""
    saved = dict(loop.state.lifted)
    loop.state.lifted.update(base_lifted)
    try:
        stats = loop._stats(base.plan, base_eval)
        proposals = [p for p in loop._proposals(base.plan, stats) if p.direction != base.direction]
        failures = loop._failures(base.plan, base_eval)
        for j, follow in enumerate(proposals[: loop.settings.beam_width], start=1):
            seed = loop.settings.seed + 101 * loop.state.iteration + 13 * j
            edit = await loop._propose(base.plan, follow, stats, failures, follow.reason, seed)
            loop.report.hypotheses += (
                max(1, edit.proposals) if isinstance(edit, Candidate) else edit.proposals
            )
            if isinstance(edit, EditFailure):
                loop._record(follow, "failed", edit.reason, current, None, base.summary)
                continue
            edit, evaluation, lifted = await loop._score(
                base.plan, edit, f"iter{loop.state.iteration:02d}-lookahead{j}"
            )
            decision = decide(current, evaluation, base)  # the compound keeps base's code
            record.details.setdefault("lookahead", []).append(
                {
                    "edit": edit.summary,
                    "loss": evaluation.loss,
                    "node_loss": evaluation.node_loss,
                    "accepted": decision.accepted,
                    "why": decision.why,
                }
            )
            outcome = "accepted" if decision.accepted else "rejected"
            loop._record(follow, outcome, decision.why, current, evaluation, base.summary, edit)
            if decision.accepted:
                loop.state.lifted = saved
                loop._accept(base, base_lifted, len(proposals) + 1)
                loop._accept(edit, lifted, len(proposals) + 1)
                record.edit = f"{base.summary}; then {edit.summary}"
                record.candidate_loss = evaluation.loss
                record.why = f"compound edit: {decision.why}"
                return edit.plan, evaluation
    finally:
        if loop.state.lifted is not saved:
            loop.state.lifted = saved
    return None


def record_failure(
    loop: CompileLoop,
    record: IterationRecord,
    proposal: Proposal,
    failure: EditFailure,
    current: PlanEval,
) -> None:
    """Book an operator's failure to find an edit: hypotheses, the report, the history."""
    loop.report.hypotheses += failure.proposals
    record.why = f"no valid edit: {failure.reason}"
    loop._record(proposal, "failed", failure.reason, current, None)


async def read_with_code(
    loop: CompileLoop, plan: Plan, current: PlanEval
) -> tuple[Plan, PlanEval, BudgetExceeded | None]:
    """The last step at zero training loss: each student extraction an offload made is offered
    to sgde's deterministic readers (no teacher call); fields they read move to code when the
    accept rule keeps it (same loss and node-level error at fewer student tokens).

    Three training rows the student copied right say little about the next phrasing, while a
    reader is verified on perturbed rows too; measured on date-add with SmolLM2-135M, the
    student's extraction had zero training loss and read 6 of 20 held-out dates right. So the
    student stays only where code cannot read the input. One record per extraction tried.

    Returns the plan kept, its evaluation and the budget stop that cut the step short, if
    any: the edits kept before it stay kept (the caller re-raises it)."""
    if loop.operators.get("parse") is None:
        return plan, current, None
    try:
        for node in [n for n in plan.nodes if isinstance(n, LlmNode)]:
            plan, current = await _read_one(loop, plan, current, node)
    except BudgetExceeded as stop:
        return plan, current, stop
    return plan, current, None


async def _read_one(
    loop: CompileLoop, plan: Plan, current: PlanEval, node: LlmNode
) -> tuple[Plan, PlanEval]:
    """:func:`read_with_code` on one extraction."""
    if loop.source.program_of(node.id) is None or node.id not in plan.node_ids():
        return plan, current
    proposal = Proposal(node.id, "parse", "zero training loss: code reads what it can")
    if proposal.key() in loop.state.tried.get(plan_hash(plan), []):
        return plan, current
    loop.state.iteration += 1
    record = IterationRecord(iteration=loop.state.iteration, loss_before=current.loss)
    record.proposal = {"node_id": node.id, "direction": "parse", "reason": proposal.reason}
    loop.report.iterations.append(record)
    stats = loop._stats(plan, current)
    seed = loop.settings.seed + 101 * loop.state.iteration
    edit = await loop._propose(plan, proposal, stats, [], proposal.reason, seed, readers_only=True)
    if isinstance(edit, EditFailure):
        record_failure(loop, record, proposal, edit, current)
        return plan, current
    loop.report.hypotheses += max(1, edit.proposals)
    edit, evaluation, lifted = await loop._score(plan, edit, f"iter{loop.state.iteration:02d}-read")
    decision = decide(current, evaluation, edit)
    record.edit, record.candidate_loss = edit.summary, evaluation.loss
    record.accepted, record.why = decision.accepted, decision.why
    outcome = "accepted" if decision.accepted else "rejected"
    loop._record(proposal, outcome, decision.why, current, evaluation, edit=edit)
    loop.event(outcome, f"{edit.summary}: {decision.why}", loss=evaluation.loss)
    if decision.accepted:
        loop._accept(edit, lifted, 1)
        plan, current = edit.plan, evaluation
    return plan, current
