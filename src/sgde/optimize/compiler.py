"""The SGDe loop: forward → statistics → backward → step → accept, with checkpoints.

See ``docs/compiler.md`` for the algorithm and every setting. In short, per iteration:

1. *forward*: run the current plan with the student on the m training rows, k repeats;
2. *statistics*: compare every node's outputs with the expected values from the teacher's
   verified solutions (node-level supervision) → error rate, disagreement, majority accuracy;
3. *placement* ranks the directions (offload / consensus / topology / prompt rewrite);
   the teacher's critique (semantic gradient) explains the failure, and is logged when it
   disagrees with the statistics;
4. *step*: the operator builds a validated edit (offloaded code verified on every training
   row before it is proposed);
5. *accept*: the edited plan is scored on the training rows; it is kept only if the loss
   drops, or ties at fewer student tokens. Rejections go into the history the teacher sees.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sgde import __version__
from sgde.errors import BudgetExceeded, CompileError, UsageError
from sgde.optimize.backward import critique, failure_cases
from sgde.optimize.checkpoint import Checkpoint
from sgde.optimize.coldstart import cold_start
from sgde.optimize.events import CompileEvent, EventSink, emit
from sgde.optimize.operators.base import Candidate, EditFailure
from sgde.optimize.operators.consensus import wrap_consensus
from sgde.optimize.operators.offload import offload, offload_target
from sgde.optimize.operators.rewrite_prompt import rewrite_prompt
from sgde.optimize.operators.topology import change_topology
from sgde.optimize.pac import pac_statement
from sgde.optimize.placement import Proposal, rank_proposals
from sgde.optimize.report import CompileReport, IterationRecord
from sgde.optimize.settings import CompileSettings
from sgde.optimize.supervision import (
    Solution,
    expected_values,
    node_outputs,
    node_statistics,
    row_text,
    solve_examples,
)
from sgde.optimize.teacher import Teacher
from sgde.plan import plan_hash
from sgde.plan.model import Plan
from sgde.runtime.backend import Backend, Usage
from sgde.runtime.calls import CodeRunner
from sgde.runtime.executor import Executor, RunResult
from sgde.runtime.numbers import to_number
from sgde.runtime.trace import write_traces
from sgde.task import default_metric as task_default_metric

__all__ = ["CompileResult", "Metric", "compile", "compile_async", "default_metric", "trainset_hash"]

Metric = Callable[[Mapping[str, Any], Mapping[str, Any]], "float | bool"]
"""``metric(row, outputs) -> score`` in [0, 1] (or bool); loss = 1 - mean score."""


@dataclass(frozen=True)
class CompileResult:
    """The compiled plan and the report of how it was compiled."""

    plan: Plan
    report: CompileReport


def default_metric(output_names: Sequence[str]) -> Metric:
    """Fraction of output fields right, each judged by :func:`sgde.task.answer_correct` with
    the type read from the gold value. A thin wrapper over :func:`sgde.task.default_metric`
    (use that with a :class:`~sgde.task.TaskSpec` for declared types and feedback). Fields
    without a gold value in the row are not scored."""

    scorer = task_default_metric(list(output_names))

    def metric(row: Mapping[str, Any], outputs: Mapping[str, Any]) -> float:
        return scorer(row, outputs).value

    return metric


def trainset_hash(rows: Sequence[Mapping[str, Any]]) -> str:
    """``sha256:<hex>`` over the canonical JSON of the training rows."""
    text = json.dumps(list(rows), sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class _Eval:
    loss: float
    scores: list[list[float]]
    outputs: list[list[dict[str, dict[str, Any] | None]]]
    finals: list[list[dict[str, Any]]]
    results: list[list[RunResult]]
    student_tokens: int
    usage: Usage

    @property
    def perfect(self) -> bool:
        return all(s >= 1.0 for rep in self.scores for s in rep)


class _Compiler:
    def __init__(
        self,
        *,
        rows: list[dict[str, Any]],
        teacher: Backend,
        student: Backend,
        sandbox: CodeRunner,
        metric: Metric | None,
        settings: CompileSettings,
        checkpoint: Checkpoint | None,
        events: EventSink | None,
    ) -> None:
        self.rows = rows
        self.teacher_backend = teacher
        self.student = student
        self.sandbox = sandbox
        self.metric = metric
        self.settings = settings
        self.checkpoint = checkpoint
        self.events = events
        self.teacher = Teacher(
            teacher,
            max_tokens=settings.teacher_max_tokens,
            code_max_tokens=settings.code_max_tokens,
            retries=settings.teacher_retries,
            events=events,
        )
        self.executor = Executor({"student": student, "teacher": teacher}, sandbox=sandbox)
        self.student_usage = Usage()
        self.report = CompileReport()
        self.history: list[str] = []
        self.tried: dict[str, list[str]] = {}
        self.solutions: list[Solution | None] = []
        self.supervised = False
        self.lifted: dict[str, list[dict[str, Any] | None]] = {}
        self.iteration = 0
        self.no_improve = 0
        self.ln_prior = 0.0
        self.elapsed_before = 0.0
        self.started = time.monotonic()

    # ------------------------------------------------------------------ helpers

    def _event(self, kind: Any, message: str, *, loss: float | None = None, **data: Any) -> None:
        usd = self.teacher.usage.usd + self.student_usage.usd
        emit(
            self.events,
            CompileEvent(
                kind,
                self.iteration,
                message,
                loss=loss,
                teacher_tokens=self.teacher.usage.total_tokens,
                student_tokens=self.student_usage.total_tokens,
                usd=usd,
                data=data,
            ),
        )

    def _metric_for(self, plan: Plan) -> Metric:
        return self.metric or default_metric(list(plan.outputs))

    async def _evaluate(self, plan: Plan, label: str) -> _Eval:
        """Run ``plan`` on the training rows, k repeats; traces go to ``traces/<label>.jsonl``."""
        metric = self._metric_for(plan)
        scores: list[list[float]] = []
        outputs: list[list[dict[str, dict[str, Any] | None]]] = []
        finals: list[list[dict[str, Any]]] = []
        results: list[list[RunResult]] = []
        usage = Usage()
        for r in range(self.settings.repeats):
            batch = await self.executor.run_batch(plan, self.rows, seed=self.settings.seed + r)
            rep_scores: list[float] = []
            for row, res in zip(self.rows, batch, strict=False):
                usage = usage + res.trace.usage
                score = float(metric(row, res.outputs)) if res.ok else 0.0
                rep_scores.append(min(1.0, max(0.0, score)))
            scores.append(rep_scores)
            outputs.append([node_outputs(res.trace) for res in batch])
            finals.append([dict(res.outputs) for res in batch])
            results.append(batch)
        self.student_usage = self.student_usage + usage
        if self.checkpoint is not None:
            trace_dir = self.checkpoint.directory / "traces"
            trace_dir.mkdir(parents=True, exist_ok=True)
            write_traces(
                trace_dir / f"{label}.jsonl",
                [res.trace for batch in results for res in batch],
            )
        flat = [s for rep in scores for s in rep]
        loss = 1.0 - sum(flat) / len(flat) if flat else 1.0
        return _Eval(loss, scores, outputs, finals, results, usage.total_tokens, usage)

    def _expected(self, plan: Plan) -> dict[str, list[dict[str, Any] | None]]:
        return expected_values(plan, self.rows, self.solutions, self.lifted)

    def _computable(self, plan: Plan, expected: Mapping[str, Any]) -> set[str]:
        if not any(s is not None for s in self.solutions):
            return set()
        out: set[str] = set()
        for node in plan.nodes:
            target = offload_target(plan, node.id)
            if isinstance(target, str):
                continue
            golds = self._golds(target.node.id, target.output_field, expected)
            if golds is not None and all(to_number(g) is not None for g in golds):
                out.add(target.node.id)
        return out

    def _golds(self, node_id: str, fname: str, expected: Mapping[str, Any]) -> list[Any] | None:
        rows = expected.get(node_id)
        if not rows or any(r is None or fname not in r for r in rows):
            return None
        return [r[fname] for r in rows]

    def _state(self, loss: float) -> dict[str, Any]:
        return {
            "iteration": self.iteration,
            "loss": loss,
            "no_improve": self.no_improve,
            "history": self.history,
            "tried": self.tried,
            "supervised": self.supervised,
            "solutions": [s.to_dict() if s else None for s in self.solutions],
            "lifted": self.lifted,
            "ln_prior": self.ln_prior,
            "elapsed_s": self._elapsed(),
            "teacher_usage": self.teacher.usage.to_dict(),
            "student_usage": self.student_usage.to_dict(),
            "trainset_hash": self.report.trainset_hash,
            "report": self.report.to_dict(),
        }

    def _restore(self, state: Mapping[str, Any]) -> None:
        self.iteration = int(state["iteration"])
        self.no_improve = int(state.get("no_improve", 0))
        self.history = list(state.get("history", []))
        self.tried = {k: list(v) for k, v in state.get("tried", {}).items()}
        self.solutions = [Solution.from_dict(s) if s else None for s in state.get("solutions", [])]
        self.supervised = bool(state.get("supervised", False))
        self.lifted = {k: list(v) for k, v in state.get("lifted", {}).items()}
        self.ln_prior = float(state.get("ln_prior", 0.0))
        self.elapsed_before = float(state.get("elapsed_s", 0.0))
        self.teacher.usage = _usage(state.get("teacher_usage", {}))
        self.student_usage = _usage(state.get("student_usage", {}))
        self.report = CompileReport.from_dict(state.get("report", {}))

    def _elapsed(self) -> float:
        return self.elapsed_before + (time.monotonic() - self.started)

    def _save(self, plan: Plan, loss: float) -> None:
        if self.checkpoint is None:
            return
        self.report.usage = self._usage_report()
        self.checkpoint.save(plan, self._state(loss))
        self._event("checkpoint", f"checkpoint saved to {self.checkpoint.directory}", loss=loss)

    def _usage_report(self) -> dict[str, dict[str, Any]]:
        return {
            "teacher": self.teacher.usage.to_dict(),
            "student": self.student_usage.to_dict(),
        }

    # ------------------------------------------------------------------ steps

    async def _start(self, plan_or_task: Plan | str) -> Plan:
        if isinstance(plan_or_task, Plan):
            return plan_or_task
        self._event("coldstart", "drafting the initial plan with the teacher")
        plan, record = await cold_start(
            plan_or_task, self.rows, teacher=self.teacher, settings=self.settings
        )
        self.report.coldstart = record
        if record["source"] == "fallback":
            self.report.notes.append(
                "cold start: no teacher draft validated; used the minimal fallback plan "
                f"({record.get('error', '')})"
            )
        return plan

    async def _supervise(self, plan: Plan) -> None:
        self.supervised = True
        outputs = list(plan.outputs)
        if len(outputs) != 1 or not all(
            to_number(r.get(outputs[0])) is not None for r in self.rows
        ):
            self.solutions = [None] * len(self.rows)
            self.report.supervision = {"verified": 0, "skipped": "non-numeric or multiple outputs"}
            return
        texts = [row_text(plan, r) for r in self.rows]
        golds = [r[outputs[0]] for r in self.rows]
        self._event("supervision", f"teacher solves the {len(texts)} training rows as code")
        self.solutions = await solve_examples(
            self.teacher,
            self.sandbox,
            texts,
            golds,
            attempts=self.settings.solve_attempts,
            temperature=self.settings.candidate_temperature,
            seed=self.settings.seed,
        )
        verified = sum(s is not None for s in self.solutions)
        self.report.supervision = {"verified": verified, "rows": len(self.rows)}
        self._event("supervision", f"{verified}/{len(texts)} teacher solutions verified")

    async def _apply(
        self,
        plan: Plan,
        proposal: Proposal,
        diagnosis: str,
        failures: list[dict[str, Any]],
        expected: Mapping[str, Any],
    ) -> Candidate | EditFailure:
        seed = self.settings.seed + 101 * self.iteration
        if proposal.direction == "offload":
            target = offload_target(plan, proposal.node_id)
            if isinstance(target, str):
                return EditFailure("offload", proposal.node_id, target)
            golds = self._golds(target.node.id, target.output_field, expected)
            if golds is None:
                return EditFailure("offload", proposal.node_id, "no expected values to verify")
            return await offload(
                plan,
                proposal.node_id,
                teacher=self.teacher,
                sandbox=self.sandbox,
                rows=self.rows,
                golds=golds,
                solutions=self.solutions,
                settings=self.settings,
                seed=seed,
            )
        if proposal.direction == "consensus":
            return wrap_consensus(
                plan,
                proposal.node_id,
                n=self.settings.consensus_n,
                temperature=self.settings.consensus_temperature,
            )
        if proposal.direction == "topology":
            return change_topology(plan, proposal.node_id)
        rejected_rewrites = [h for h in self.history if "prompt" in h]
        return await rewrite_prompt(
            plan,
            proposal.node_id,
            teacher=self.teacher,
            failures=failures,
            diagnosis=diagnosis,
            history=rejected_rewrites[-3:],
            temperature=0.0 if not rejected_rewrites else self.settings.candidate_temperature,
            seed=seed,
        )

    async def _iterate(self, plan: Plan, current: _Eval) -> tuple[Plan, _Eval, bool]:
        """One iteration; returns (plan, evaluation, whether an edit was accepted)."""
        t0 = time.monotonic()
        teacher_before = self.teacher.usage.total_tokens
        student_before = self.student_usage.total_tokens
        self.teacher.iteration = self.iteration
        record = IterationRecord(iteration=self.iteration, loss_before=current.loss)
        self.report.iterations.append(record)

        expected = self._expected(plan)
        stats = node_statistics(plan, current.outputs, expected)
        key = plan_hash(plan)
        tried = set(self.tried.get(key, []))
        ranked = rank_proposals(
            plan, stats, settings=self.settings, computable=self._computable(plan, expected)
        )
        proposals = [p for p in ranked if p.key() not in tried]
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

        failures = failure_cases(
            plan,
            self.rows,
            current.outputs[0],
            current.finals[0],
            current.scores[0],
            expected,
            limit=self.settings.max_failures_shown,
        )
        gradient, error = await critique(
            plan,
            teacher=self.teacher,
            stats=stats,
            failures=failures,
            history=self.history,
            proposal=proposal,
        )
        diagnosis = proposal.reason
        if gradient is None:
            self.report.notes.append(f"iteration {self.iteration}: critique malformed ({error})")
            self._event("critique", f"(no valid critique) statistics: {proposal.reason}")
        else:
            record.critique = gradient
            diagnosis = f"{gradient['diagnosis']} ({proposal.reason})"
            agrees = (
                gradient["node_id"] == proposal.node_id
                and gradient["direction"] == proposal.direction
            )
            record.critique_agrees = agrees
            if not agrees:
                self.report.notes.append(
                    f"iteration {self.iteration}: the teacher suggested {gradient['direction']} "
                    f"on {gradient['node_id']}; the statistics chose {proposal.direction} on "
                    f"{proposal.node_id} ({proposal.reason})"
                )
            self._event("critique", f"{gradient['node_id']}: {gradient['diagnosis']}")

        edit = await self._apply(plan, proposal, diagnosis, failures, expected)
        self.tried.setdefault(key, []).append(proposal.key())
        if isinstance(edit, EditFailure):
            self.report.hypotheses += edit.proposals
            record.why = f"no valid edit: {edit.reason}"
            record.details["edit"] = edit.details
            self.history.append(
                f"{proposal.direction} on {proposal.node_id} failed: {edit.reason[:200]}"
            )
            self._event(
                "no_edit",
                f"{proposal.direction} {proposal.node_id}: {edit.reason}",
                loss=current.loss,
            )
            return plan, current, False

        record.edit = edit.summary
        record.details["edit"] = edit.details
        self.report.hypotheses += max(1, edit.proposals)
        self._event("edit", edit.summary)
        candidate_plan = edit.plan
        candidate = await self._evaluate(candidate_plan, f"iter{self.iteration:02d}-candidate")
        record.candidate_loss = candidate.loss
        better = candidate.loss < current.loss - 1e-9
        cheaper = (
            abs(candidate.loss - current.loss) <= 1e-9
            and candidate.student_tokens < current.student_tokens
        )
        accepted = better or cheaper
        record.accepted = accepted
        if accepted:
            record.why = (
                "loss improved"
                if better
                else f"same loss at fewer student tokens ({candidate.student_tokens} < "
                f"{current.student_tokens})"
            )
            self.lifted.update(edit.lifted)
            self.ln_prior += math.log(max(1, len(ranked))) + math.log(max(1, edit.proposals))
            self._event(
                "accepted",
                f"{edit.summary}: loss {current.loss:.3f} → {candidate.loss:.3f}",
                loss=candidate.loss,
            )
            plan, current = candidate_plan, candidate
        else:
            record.why = (
                f"loss {candidate.loss:.3f} vs {current.loss:.3f}"
                f" at {candidate.student_tokens} vs {current.student_tokens} "
                "student tokens"
            )
            self.history.append(f"{edit.summary} was rejected: {record.why}")
            self._event("rejected", f"{edit.summary}: {record.why}", loss=current.loss)
        record.teacher_tokens = self.teacher.usage.total_tokens - teacher_before
        record.student_tokens = self.student_usage.total_tokens - student_before
        record.wall_s = round(time.monotonic() - t0, 3)
        return plan, current, accepted

    # ------------------------------------------------------------------ main

    async def run(self, plan_or_task: Plan | str, *, resume: bool) -> CompileResult:
        data_hash = trainset_hash(self.rows)
        plan: Plan
        if resume and self.checkpoint is not None and self.checkpoint.exists():
            plan, state = self.checkpoint.load()
            if state.get("trainset_hash") != data_hash:
                raise CompileError(
                    "the checkpoint was made with a different training set",
                    hint="resume with the same --train file and -m, or start without --resume",
                )
            self._restore(state)
            self._event("start", f"resuming after iteration {self.iteration}")
            current = await self._evaluate(plan, f"iter{self.iteration:02d}-resumed")
        else:
            self._event("start", f"compiling with m={len(self.rows)}, k={self.settings.repeats}")
            self.report = CompileReport(
                teacher=self.teacher_backend.name,
                student=self.student.name,
                m=len(self.rows),
                repeats=self.settings.repeats,
                trainset_hash=data_hash,
                sgde_version=__version__,
                settings=self.settings.model_dump(mode="json"),
            )
            plan = await self._start(plan_or_task)
            self.report.plan_name = plan.name
            self.report.initial_plan_hash = plan_hash(plan)
            current = await self._evaluate(plan, "iter00-initial")
            self.report.initial_loss = current.loss
            self.report.hypotheses = 1
            self._event("forward", f"initial training loss {current.loss:.3f}", loss=current.loss)
            self._save(plan, current.loss)
        stop = ""
        try:
            if not self.supervised and not current.perfect and self.settings.max_iters > 0:
                await self._supervise(plan)
                self._save(plan, current.loss)
            while True:
                if current.perfect:
                    stop = "zero training loss in every repeat"
                    break
                if self.iteration >= self.settings.max_iters:
                    stop = f"reached max_iters={self.settings.max_iters}"
                    break
                if self.no_improve >= self.settings.patience:
                    stop = f"no accepted edit in {self.settings.patience} iteration(s)"
                    break
                self.iteration += 1
                plan, current, accepted = await self._iterate(plan, current)
                self.no_improve = 0 if accepted else self.no_improve + 1
                last = self.report.iterations[-1]
                if last.proposal is None:
                    stop = "no applicable edit"
                    self._save(plan, current.loss)
                    break
                self._save(plan, current.loss)
        except BudgetExceeded as exc:
            stop = f"budget exhausted ({exc.message})"
            self.report.notes.append(
                f"stopped on the budget in iteration {self.iteration}; the best plan so far "
                "is returned"
            )
            if self.report.iterations and self.report.iterations[-1].iteration == self.iteration:
                self.report.iterations[-1].why = self.report.iterations[-1].why or "budget"
        return self._finish(plan, current, stop)

    def _finish(self, plan: Plan, current: _Eval, stop: str) -> CompileResult:
        report = self.report
        report.stop_reason = stop
        report.final_loss = current.loss
        report.wall_s = round(self._elapsed(), 3)
        report.usage = self._usage_report()
        report.final_plan_hash = plan_hash(plan)
        statement = pac_statement(
            m=len(self.rows),
            hypotheses=report.hypotheses,
            delta=0.05,
            consistent=current.perfect,
            ln_inv_prior=self.ln_prior,
        )
        report.pac = statement.to_dict()
        meta = dict(plan.metadata)
        meta["compile"] = {
            "teacher": report.teacher,
            "student": report.student,
            "m": report.m,
            "repeats": report.repeats,
            "trainset_hash": report.trainset_hash,
            "iterations": len(report.iterations),
            "initial_loss": report.initial_loss,
            "final_loss": report.final_loss,
            "sgde_version": report.sgde_version,
            "history": [
                {
                    "iteration": r.iteration,
                    "edit": r.edit,
                    "accepted": r.accepted,
                    "loss": r.candidate_loss,
                }
                for r in report.iterations
                if r.edit
            ],
            "stop_reason": stop,
            "hypotheses": report.hypotheses,
        }
        final = plan.model_copy(update={"metadata": meta})
        if self.checkpoint is not None:
            self.checkpoint.save(final, self._state(current.loss))
        self._event("stop", f"stopped: {stop}; loss {current.loss:.3f}", loss=current.loss)
        return CompileResult(final, report)


def _usage(data: Mapping[str, Any]) -> Usage:
    return Usage(
        int(data.get("prompt_tokens", 0)),
        int(data.get("completion_tokens", 0)),
        int(data.get("calls", 0)),
        float(data.get("usd", 0.0)),
    )


def _check_rows(trainset: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = [dict(r) for r in trainset]
    if not rows:
        raise UsageError("the training set is empty", hint="pass at least one labelled row")
    for i, r in enumerate(rows, start=1):
        if not isinstance(r, dict):
            raise UsageError(f"training row {i} is not an object")
    return rows


async def compile_async(
    plan_or_task: Plan | str,
    *,
    trainset: Sequence[Mapping[str, Any]],
    teacher: Backend,
    student: Backend,
    sandbox: CodeRunner,
    metric: Metric | None = None,
    settings: CompileSettings | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    events: EventSink | None = None,
) -> CompileResult:
    """Compile a plan (or a task description) with SGDe; the input is never mutated.

    Args:
        plan_or_task: A starting :class:`Plan`, or the task text for a cold start.
        trainset: Labelled rows: plan input names plus gold values under output names.
        teacher: The teacher backend (critiques, edits, solutions).
        student: The student backend that runs the compiled plan.
        sandbox: A ``SandboxPool`` (all teacher code runs there, never in-process).
        metric: ``metric(row, outputs) -> score in [0, 1]``; default
            :func:`default_metric` over the plan outputs.
        settings: Loop, placement and teacher settings.
        checkpoint_dir: Directory for per-iteration checkpoints.
        resume: Continue from the checkpoint in ``checkpoint_dir``.
        events: Listener for progress events.

    Returns:
        The compiled plan (with provenance in ``metadata["compile"]``) and the report.

    Raises:
        UsageError: empty training set, ``resume`` without ``checkpoint_dir``.
        CompileError: unusable checkpoint, no inputs for a cold start.
    """
    if resume and checkpoint_dir is None:
        raise UsageError(
            "resume needs a checkpoint directory", hint="pass checkpoint_dir (CLI: --report DIR)"
        )
    compiler = _Compiler(
        rows=_check_rows(trainset),
        teacher=teacher,
        student=student,
        sandbox=sandbox,
        metric=metric,
        settings=settings or CompileSettings(),
        checkpoint=Checkpoint(checkpoint_dir) if checkpoint_dir is not None else None,
        events=events,
    )
    return await compiler.run(plan_or_task, resume=resume)


def compile(
    plan_or_task: Plan | str,
    *,
    trainset: Sequence[Mapping[str, Any]],
    teacher: Backend,
    student: Backend,
    sandbox: CodeRunner,
    metric: Metric | None = None,
    settings: CompileSettings | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    events: EventSink | None = None,
) -> CompileResult:
    """Synchronous :func:`compile_async` (runs its own event loop)."""
    return asyncio.run(
        compile_async(
            plan_or_task,
            trainset=trainset,
            teacher=teacher,
            student=student,
            sandbox=sandbox,
            metric=metric,
            settings=settings,
            checkpoint_dir=checkpoint_dir,
            resume=resume,
            events=events,
        )
    )
