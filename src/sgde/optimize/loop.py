"""The SGDe loop: forward → statistics → backward → step → accept, with checkpoints.

Per iteration:

1. *forward*: the current plan runs on the m training rows, k repeats
   (:mod:`sgde.optimize.evaluate`);
2. *statistics*: every node's outputs against the expected values from the teacher's
   verified solutions (node-level supervision) → per-field error, disagreement, majority
   accuracy, and the plan's node-level error (partial credit per field);
3. *placement* ranks the directions (:mod:`sgde.optimize.placement`); the first whose
   operator is registered, applicable and untried on this plan is taken; the teacher's
   critique explains the failure (and is logged when it disagrees);
4. *step*: the operator (:mod:`sgde.optimize.operators.registry`) builds a validated edit;
   one built in prompt variants is scored per variant, and the variant whose node errs least
   on the training rows is the candidate (:func:`~sgde.optimize.accept.choose_variant`);
5. *accept*: the edited plan is kept when the end-to-end loss drops, or ties with a lower
   node-level error, or ties on both at fewer student tokens. A rejected candidate that
   lowered the node-level error gets one step of look-ahead (:mod:`sgde.optimize.lookahead`).

Closing steps: readers at zero loss, then hardening (:mod:`sgde.optimize.harden`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sgde._version import __version__
from sgde.errors import BudgetExceeded, CompileError
from sgde.models.usage import UsageMeter
from sgde.optimize.accept import choose_variant, decide
from sgde.optimize.backward import critique, failure_cases
from sgde.optimize.checkpoint import Checkpoint
from sgde.optimize.coldstart import cold_start
from sgde.optimize.evaluate import PlanEval, evaluate_plan_rows, node_errors, node_loss
from sgde.optimize.events import CompileEvent, EventSink, emit
from sgde.optimize.expected import carry_expected, plan_expected
from sgde.optimize.harden import harden
from sgde.optimize.lookahead import look_ahead, read_with_code, worth_repairing
from sgde.optimize.operators.base import Candidate, EditFailure, Variant
from sgde.optimize.operators.offload import offload_target
from sgde.optimize.operators.registry import EditContext, OperatorRegistry
from sgde.optimize.placement import Proposal, rank_proposals
from sgde.optimize.program_source import SupervisionSource
from sgde.optimize.provenance import finalize
from sgde.optimize.records import EditRecord
from sgde.optimize.report import CompileReport, IterationRecord
from sgde.optimize.settings import CompileSettings
from sgde.optimize.state import LoopState
from sgde.optimize.supervision import NodeStats, node_statistics
from sgde.optimize.teacher import Teacher
from sgde.plan import plan_hash
from sgde.plan.model import LlmNode, Plan
from sgde.runtime.backend import Backend
from sgde.runtime.calls import CodeRunner
from sgde.runtime.executor import Executor
from sgde.task import Metric, TaskSpec

__all__ = ["CompileLoop", "CompileResult"]


@dataclass(frozen=True)
class CompileResult:
    """The compiled plan and the report of how it was compiled."""

    plan: Plan
    report: CompileReport


class CompileLoop:
    """One compile: holds the state, runs the loop, writes checkpoints."""

    def __init__(
        self,
        *,
        rows: list[dict[str, Any]],
        task: TaskSpec,
        metric: Metric,
        rows_where: str,
        teacher: Backend,
        student: Backend,
        sandbox: CodeRunner,
        settings: CompileSettings,
        checkpoint: Checkpoint | None,
        events: EventSink | None,
        operators: OperatorRegistry,
        meter: UsageMeter,
    ) -> None:
        self.rows = rows
        self.task = task
        self.metric = metric
        self.rows_where = rows_where
        self.teacher_backend = teacher
        self.student = student
        self.sandbox = sandbox
        self.settings = settings
        self.checkpoint = checkpoint
        self.events = events
        self.operators = operators
        self.teacher = Teacher(
            teacher,
            max_tokens=settings.teacher_max_tokens,
            code_max_tokens=settings.code_max_tokens,
            retries=settings.teacher_retries,
            events=events,
            meter=meter,
        )
        self.meter = meter
        """The compile's usage ledger (teacher and student), the one source of its usage."""
        self.executor = Executor({"student": student, "teacher": teacher}, sandbox=sandbox)
        self.state = LoopState(task=task.to_metadata())
        self.source = SupervisionSource(self)
        self.started = time.monotonic()

    # ------------------------------------------------------------------ helpers

    @property
    def report(self) -> CompileReport:
        return self.state.report

    def event(self, kind: Any, message: str, *, loss: float | None = None, **data: Any) -> None:
        st = self.state
        emit(
            self.events,
            CompileEvent(
                kind,
                st.iteration,
                message,
                loss=loss,
                teacher_tokens=self.teacher.usage.total_tokens,
                student_tokens=self.meter.role_usage("student").total_tokens,
                usd=self.meter.total().usd,
                data=data,
            ),
        )

    async def evaluate(self, plan: Plan, label: str) -> PlanEval:
        trace = None
        if self.checkpoint is not None:
            trace = self.checkpoint.directory / "traces" / f"{label}.jsonl"
        result = await evaluate_plan_rows(
            self.executor,
            plan,
            self.rows,
            metric=self.metric,
            rows_where=self.rows_where,
            repeats=self.settings.repeats,
            seed=self.settings.seed,
            trace_path=trace,
        )
        return result

    def expected(
        self, plan: Plan, lifted: Mapping[str, list[dict[str, Any] | None]] | None = None
    ) -> dict[str, list[dict[str, Any] | None]]:
        return plan_expected(
            plan,
            self.rows,
            solutions=self.state.solutions,
            row_solutions=self.source.row_solutions,
            lifted={**self.state.lifted, **(lifted or {})},
        )

    def _computable(self, plan: Plan, expected: Mapping[str, Any]) -> set[str]:
        if not self.source.has_material():
            return set()
        out: set[str] = set()
        for node in plan.nodes:
            target = offload_target(plan, node.id)
            if isinstance(target, str):
                continue
            rows = expected.get(target.node.id) or []
            known = sum(1 for r in rows if r is not None and target.output_field in r)
            # a node over upstream fields only is verified on the rows known (>= 2)
            if rows and known >= (len(rows) if target.text_inputs else min(2, len(rows))):
                out.add(target.node.id)
        return out

    def _elapsed(self) -> float:
        return self.state.elapsed_s + (time.monotonic() - self.started)

    def _usage_report(self) -> dict[str, dict[str, Any]]:
        return self.meter.to_dict()

    def _snapshot(self, loss: float) -> dict[str, Any]:
        st = self.state
        st.loss = loss
        st.teacher_usage = self.meter.role_usage("teacher")
        st.student_usage = self.meter.role_usage("student")
        data = st.to_dict()
        data["elapsed_s"] = self._elapsed()
        return data

    def save(self, plan: Plan, loss: float) -> None:
        if self.checkpoint is None:
            return
        self.report.usage = self._usage_report()
        self.checkpoint.save(plan, self._snapshot(loss))
        self.event("checkpoint", f"checkpoint saved to {self.checkpoint.directory}", loss=loss)

    # ------------------------------------------------------------------ steps

    async def _start(self, plan_or_task: Plan | str) -> Plan:
        if isinstance(plan_or_task, Plan):
            meta = dict(plan_or_task.metadata)
            meta["task"] = self.task.to_metadata()
            return plan_or_task.model_copy(update={"metadata": meta})
        self.event("coldstart", "drafting the initial plan with the teacher")
        plan, record = await cold_start(
            self.task, self.rows, teacher=self.teacher, settings=self.settings
        )
        self.report.coldstart = record
        if record["source"] == "fallback":
            self.report.notes.append(
                "cold start: no teacher draft validated; used the minimal fallback plan "
                f"({record.get('error', '')})"
            )
        return plan

    def _stats(self, plan: Plan, evaluation: PlanEval) -> dict[str, NodeStats]:
        expected = self.expected(plan)
        if evaluation.node_loss is None:
            node_loss(plan, evaluation, expected)
        return node_statistics(plan, evaluation.outputs, expected)

    def _proposals(self, plan: Plan, stats: Mapping[str, NodeStats]) -> list[Proposal]:
        expected = self.expected(plan)
        rewritten = {r.node_id for r in self.state.history if r.direction == "rewrite_prompt"}
        extractions = {
            n.id
            for n in plan.nodes
            if isinstance(n, LlmNode) and self.source.program_of(n.id) is not None
        }
        ranked = rank_proposals(
            plan,
            stats,
            settings=self.settings,
            computable=self._computable(plan, expected),
            extractions=extractions,
            rewritten=rewritten,
        )
        tried = set(self.state.tried.get(plan_hash(plan), []))
        # A node an accepted offload kept (its answer feeds the code where that abstains) is
        # not offloaded again.
        tried |= {f"offload:{r.node_id}" for r in self.state.history if r.direction == "offload"
                  and r.outcome == "accepted"}  # fmt: skip
        ops = [(p, self.operators.get(p.direction)) for p in ranked if p.key() not in tried]
        return [p for p, op in ops if op is not None and op.check(plan, p.node_id) is None]

    async def _propose(
        self,
        plan: Plan,
        proposal: Proposal,
        stats: Mapping[str, NodeStats],
        failures: list[dict[str, Any]],
        diagnosis: str,
        seed: int,
        readers_only: bool = False,
    ) -> Candidate | EditFailure:
        op = self.operators.get(proposal.direction)
        assert op is not None  # filtered by _proposals
        self.state.tried.setdefault(plan_hash(plan), []).append(proposal.key())
        ctx = EditContext(
            plan=plan,
            node_id=proposal.node_id,
            reason=proposal.reason,
            teacher=self.teacher,
            sandbox=self.sandbox,
            rows=self.rows,
            task=self.task,
            metric=self.metric,
            settings=self.settings,
            seed=seed,
            expected=self.expected(plan),
            stats=stats,
            failures=failures,
            diagnosis=diagnosis,
            history=list(self.state.history),
            supervision=self.source,
            events=self.events,
            readers_only=readers_only,
        )
        return await op.propose(ctx)

    async def _score(
        self, plan: Plan, edit: Candidate, label: str
    ) -> tuple[Candidate, PlanEval, dict[str, list[dict[str, Any] | None]]]:
        """Score ``edit`` on the training rows; an edit in prompt variants is scored per
        variant and the one whose varied node errs least is returned in its place."""
        lifted = carry_expected(plan, edit.plan, self.expected(plan), edit.lifted)
        if not edit.variants:
            evaluation = await self.evaluate(edit.plan, label)
            node_loss(edit.plan, evaluation, self.expected(edit.plan, lifted))
            return edit, evaluation, lifted
        scored: list[tuple[Variant, PlanEval, float | None]] = []
        for variant in edit.variants:
            evaluation = await self.evaluate(variant.plan, f"{label}-{variant.name}")
            expected = self.expected(variant.plan, lifted)
            node_loss(variant.plan, evaluation, expected)
            error = node_errors(variant.plan, evaluation, expected).get(variant.node_id)
            scored.append((variant, evaluation, error))
            shown = "n/a" if error is None else f"{error:.3f}"
            self.event(
                "forward",
                f"{variant.node_id} variant {variant.name}: node error {shown}, "
                f"loss {evaluation.loss:.3f}",
                loss=evaluation.loss,
            )
        chosen, evaluation = choose_variant(edit, scored)
        return chosen, evaluation, lifted

    def _failures(self, plan: Plan, evaluation: PlanEval) -> list[dict[str, Any]]:
        cases = failure_cases(
            plan,
            self.rows,
            evaluation.outputs[0],
            evaluation.finals[0],
            evaluation.scores[0],
            self.expected(plan),
            limit=self.settings.max_failures_shown,
        )
        for case in cases:
            text = evaluation.feedback[0][case["row"]] if evaluation.feedback else ""
            if text:
                case["feedback"] = text
        return cases

    def _accept(
        self,
        edit: Candidate,
        lifted: dict[str, list[dict[str, Any] | None]],
        ranked: int,
    ) -> None:
        self.state.lifted.update(lifted)
        self.state.ln_prior += math.log(max(1, ranked)) + math.log(max(1, edit.proposals))

    def _record(
        self,
        proposal: Proposal,
        outcome: Any,
        reason: str,
        before: PlanEval,
        after: PlanEval | None,
        parent: str | None = None,
        edit: Candidate | None = None,
    ) -> None:
        details = edit.details if edit is not None else {}
        variants = details.get("variants")
        self.state.history.append(
            EditRecord(
                iteration=self.state.iteration,
                direction=proposal.direction,
                node_id=proposal.node_id,
                outcome=outcome,
                summary=edit.summary if edit is not None else proposal.reason,
                reason=reason,
                loss_before=before.loss,
                loss_after=after.loss if after is not None else None,
                node_loss_before=before.node_loss,
                node_loss_after=after.node_loss if after is not None else None,
                parent=parent,
                variant=details.get("variant"),
                variant_errors=(
                    {k: v["node_error"] for k, v in variants.items()} if variants else None
                ),
            )
        )

    async def _critique(
        self,
        plan: Plan,
        proposal: Proposal,
        stats: Mapping[str, NodeStats],
        failures: list[dict[str, Any]],
        record: IterationRecord,
    ) -> str:
        gradient, error = await critique(
            plan,
            teacher=self.teacher,
            stats=stats,
            failures=failures,
            history=[r.line() for r in self.state.history if r.outcome != "accepted"],
            proposal=proposal,
        )
        it = self.state.iteration
        if gradient is None:
            self.report.notes.append(f"iteration {it}: critique malformed ({error})")
            self.event("critique", f"(no valid critique) statistics: {proposal.reason}")
            return proposal.reason
        record.critique = gradient
        agrees = gradient["node_id"] == proposal.node_id and (
            gradient["direction"] == proposal.direction
        )
        record.critique_agrees = agrees
        if not agrees:
            self.report.notes.append(
                f"iteration {it}: the teacher suggested {gradient['direction']} on "
                f"{gradient['node_id']}; the statistics chose {proposal.direction} on "
                f"{proposal.node_id} ({proposal.reason})"
            )
        self.event("critique", f"{gradient['node_id']}: {gradient['diagnosis']}")
        return f"{gradient['diagnosis']} ({proposal.reason})"

    async def iterate(self, plan: Plan, current: PlanEval) -> tuple[Plan, PlanEval, bool]:
        """One iteration; returns (plan, evaluation, whether an edit was accepted)."""
        t0 = time.monotonic()
        teacher_before = self.teacher.usage.total_tokens
        student_before = self.meter.role_usage("student").total_tokens
        it = self.state.iteration
        self.teacher.iteration = it
        record = IterationRecord(iteration=it, loss_before=current.loss)
        self.report.iterations.append(record)

        stats = self._stats(plan, current)
        proposals = self._proposals(plan, stats)
        if not proposals:
            record.why = "no untried edit applies to the current plan"
            return plan, current, False
        proposal = proposals[0]
        record.proposal = {
            "node_id": proposal.node_id,
            "direction": proposal.direction,
            "reason": proposal.reason,
        }
        record.details["statistics"] = {k: v.to_dict() for k, v in stats.items()}
        record.details["node_loss_before"] = current.node_loss
        failures = self._failures(plan, current)
        diagnosis = await self._critique(plan, proposal, stats, failures, record)
        edit = await self._propose(
            plan, proposal, stats, failures, diagnosis, self.settings.seed + 101 * it
        )
        accepted = False
        if isinstance(edit, EditFailure):
            self.report.hypotheses += edit.proposals
            record.why = f"no valid edit: {edit.reason}"
            record.details["edit"] = edit.details
            self._record(proposal, "failed", edit.reason, current, None)
            self.event("no_edit", f"{proposal.direction} {proposal.node_id}: {edit.reason}")
        else:
            self.report.hypotheses += max(1, edit.proposals)
            self.event("edit", edit.summary)
            edit, candidate, lifted = await self._score(plan, edit, f"iter{it:02d}-candidate")
            record.edit = edit.summary
            record.details["edit"] = edit.details
            record.candidate_loss = candidate.loss
            record.details["node_loss_after"] = candidate.node_loss
            decision = decide(current, candidate, edit)
            record.why = decision.why
            self._record(
                proposal,
                "accepted" if decision.accepted else "rejected",
                decision.why,
                current,
                candidate,
                edit=edit,
            )
            if decision.accepted:
                self._accept(edit, lifted, len(proposals))
                self.event(
                    "accepted",
                    f"{edit.summary}: loss {current.loss:.3f} → {candidate.loss:.3f}",
                    loss=candidate.loss,
                )
                plan, current, accepted = edit.plan, candidate, True
            else:
                self.event("rejected", f"{edit.summary}: {decision.why}", loss=current.loss)
                if worth_repairing(edit, current, candidate) and self.settings.beam_width > 0:
                    compound = await look_ahead(self, current, edit, candidate, lifted, record)
                    if compound is not None:
                        plan, current = compound
                        accepted = True
                        self.event("accepted", f"{record.edit}: {record.why}", loss=current.loss)
        record.accepted = accepted
        record.teacher_tokens = self.teacher.usage.total_tokens - teacher_before
        record.student_tokens = self.meter.role_usage("student").total_tokens - student_before
        record.wall_s = round(time.monotonic() - t0, 3)
        return plan, current, accepted

    # ------------------------------------------------------------------ main

    def _restore(self, data: Mapping[str, Any]) -> None:
        try:
            self.state = LoopState.from_dict(data)
        except (KeyError, ValueError, TypeError) as exc:
            raise CompileError(
                f"the checkpoint state is malformed: {exc}",
                hint="compile again without --resume",
            ) from None
        if self.state.task and self.state.task != self.task.to_metadata():
            raise CompileError(
                "the checkpoint was made for a different task (inputs, outputs or types)",
                hint="resume with the same --task, --input and --output, or start anew",
            )
        # The ledger continues where the checkpoint left it (the report keeps the full record).
        self.meter.restore(
            self.state.report.usage
            or {
                "teacher": self.state.teacher_usage.to_dict(),
                "student": self.state.student_usage.to_dict(),
            }
        )
        self.source.restore()

    async def run(self, plan_or_task: Plan | str, *, resume: bool, data_hash: str) -> CompileResult:
        plan: Plan
        if resume and self.checkpoint is not None and self.checkpoint.exists():
            plan, data = self.checkpoint.load()
            if data.get("trainset_hash") != data_hash:
                raise CompileError(
                    "the checkpoint was made with a different training set",
                    hint="resume with the same --train file and -m, or start without --resume",
                )
            self._restore(data)
            self.event("start", f"resuming after iteration {self.state.iteration}")
            current = await self.evaluate(plan, f"iter{self.state.iteration:02d}-resumed")
        else:
            self.event("start", f"compiling with m={len(self.rows)}, k={self.settings.repeats}")
            self.state.trainset_hash = data_hash
            self.state.report = CompileReport(
                teacher=self.teacher_backend.name,
                student=self.student.name,
                m=len(self.rows),
                repeats=self.settings.repeats,
                trainset_hash=data_hash,
                sgde_version=__version__,
                settings=self.settings.model_dump(mode="json"),
            )
            self.report.task = self.task.to_metadata()
            plan = await self._start(plan_or_task)
            self.report.plan_name = plan.name
            self.report.initial_plan_hash = plan_hash(plan)
            current = await self.evaluate(plan, "iter00-initial")
            self.report.initial_loss = current.loss
            self.report.hypotheses = 1
            self.event("forward", f"initial training loss {current.loss:.3f}", loss=current.loss)
            self.save(plan, current.loss)
        stop = ""
        st = self.state
        try:
            if not st.supervised and not current.perfect and self.settings.max_iters > 0:
                await self.source.supervise(plan)
                self.save(plan, current.loss)
            while True:
                if current.perfect:
                    plan, current, cut = await read_with_code(self, plan, current)
                    if cut is not None:
                        raise cut
                    stop = "zero training loss in every repeat"
                    break
                if st.iteration >= self.settings.max_iters:
                    stop = f"reached max_iters={self.settings.max_iters}"
                    break
                if st.no_improve >= self.settings.patience:
                    stop = f"no accepted edit in {self.settings.patience} iteration(s)"
                    break
                st.iteration += 1
                plan, current, accepted = await self.iterate(plan, current)
                st.no_improve = 0 if accepted else st.no_improve + 1
                self.save(plan, current.loss)
                if self.report.iterations[-1].proposal is None:
                    stop = "no applicable edit: every operator proposed for this plan was tried"
                    break
            if self.settings.max_iters > 0:
                plan, current, cut = await harden(self, plan, current)
                if cut is not None:
                    raise cut
        except BudgetExceeded as exc:
            stop = f"budget exhausted ({exc.message})"
            self.report.notes.append(
                f"stopped on the budget in iteration {st.iteration}; the best plan so far "
                "is returned"
            )
            if self.report.iterations and self.report.iterations[-1].iteration == st.iteration:
                self.report.iterations[-1].why = self.report.iterations[-1].why or "budget"
        return self._finish(plan, current, stop)

    def _finish(self, plan: Plan, current: PlanEval, stop: str) -> CompileResult:
        report = self.report
        report.stop_reason = stop
        report.final_loss = current.loss
        report.wall_s = round(self._elapsed(), 3)
        report.usage = self._usage_report()
        final = finalize(
            plan,
            report,
            task=self.task,
            history=self.state.history,
            consistent=current.perfect,
            searched=self.state.searched,
            sources=self.source.searched_by_origin(),
            ln_prior=self.state.ln_prior,
        )
        if self.checkpoint is not None:
            self.checkpoint.save(final, self._snapshot(current.loss))
        self.event("stop", f"stopped: {stop}; loss {current.loss:.3f}", loss=current.loss)
        return CompileResult(final, report)
