"""The plain baselines: direct answer, CoT, few-shot CoT, self-consistency, PAL and PoT.

None of them calls the teacher; all run the student through plans (see
:mod:`sgde.evaluation.baselines.plans`). Model-written programs (PAL, PoT) run only in the
sandbox.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

from sgde.errors import SandboxError, UsageError
from sgde.evaluation.baselines.base import (
    Prediction,
    Prepared,
    Row,
    outputs_prediction,
    predict_with_plan,
    require_plan,
    run_plan,
)
from sgde.evaluation.baselines.plans import (
    cot_plan,
    demos_from_rows,
    direct_plan,
    pal_plan,
    pot_plan,
)
from sgde.evaluation.baselines.programs import ENTRY, pal_program, pot_program
from sgde.evaluation.baselines.typed import (
    examples_block,
    program_outputs,
    typed_cot_plan,
    typed_direct_plan,
    typed_program_plan,
)
from sgde.plan.model import Plan
from sgde.runtime.backend import Backend, Usage
from sgde.runtime.calls import CodeRunner
from sgde.runtime.consensus import vote
from sgde.runtime.numbers import to_number
from sgde.runtime.trace import error_info
from sgde.task import TaskSpec

__all__ = [
    "CotMethod",
    "DirectMethod",
    "FewShotCotMethod",
    "PalMethod",
    "PlanBaseline",
    "PotMethod",
    "SelfConsistencyMethod",
]


class PlanBaseline:
    """A baseline that is one fixed plan with output ``answer``; no teacher, no training.

    :meth:`bind_task` switches it to a typed task (:mod:`.typed`): its plan then reads the
    task's inputs and produces the task's outputs.
    """

    uses_teacher = False

    def __init__(self, name: str, plan: Plan) -> None:
        self._name = name
        self._plan = plan
        self.task: TaskSpec | None = None

    def typed_plan(self, task: TaskSpec) -> Plan:
        """The method's plan for a typed task (subclasses that support typed tasks)."""
        raise UsageError(
            f"method {self.name!r} answers GSM-style numeric questions only",
            hint="use direct, cot, fewshot-cot, self-consistency, pal or ape on typed tasks",
        )

    def bind_task(self, task: TaskSpec, plan: Plan | None = None) -> None:
        """Answer ``task`` (typed inputs and outputs) instead of a numeric ``question``.

        Args:
            task: The task.
            plan: The user's starting plan, if any (used by the cold-start method only).

        Raises:
            UsageError: the method does not support typed tasks.
        """
        self._plan = self.typed_plan(task)
        self.task = task

    @property
    def name(self) -> str:
        """Registry name."""
        return self._name

    def unavailable_reason(self) -> str | None:
        """Always available."""
        return None

    def build_plan(self, trainset: Sequence[Row]) -> Plan:
        """The plan to run (the fixed one; subclasses may use the training rows)."""
        return self._plan

    async def prepare(
        self,
        trainset: Sequence[Row],
        *,
        teacher: Backend | None = None,
        student: Backend,
        sandbox: CodeRunner | None,
        budget: int | None = None,
        seed: int = 0,
    ) -> Prepared:
        """Build the plan; spends no tokens."""
        start = time.perf_counter()
        plan = self.build_plan(trainset)
        return Prepared(
            method=self.name,
            plan=plan,
            latency_s=time.perf_counter() - start,
            report={"plan_name": plan.name},
            task=self.task,
        )

    async def predict(
        self,
        prepared: Prepared,
        row: Row,
        *,
        student: Backend,
        sandbox: CodeRunner | None,
        seed: int = 0,
    ) -> Prediction:
        """Run the plan on the row; its ``answer`` output is the prediction."""
        plan = require_plan(prepared)
        return await predict_with_plan(
            plan, row, student=student, sandbox=sandbox, seed=seed, task=prepared.task
        )


class DirectMethod(PlanBaseline):
    """Direct answer: one JSON-constrained LLM call ``{"answer": number}`` (or the typed
    task's outputs)."""

    def __init__(self) -> None:
        super().__init__("direct", direct_plan())

    def typed_plan(self, task: TaskSpec) -> Plan:
        """One node constrained to the task's typed outputs."""
        return typed_direct_plan(task)


class CotMethod(PlanBaseline):
    """Zero-shot chain of thought, then deterministic final-number (or typed) extraction."""

    def __init__(self) -> None:
        super().__init__("cot", cot_plan())

    def typed_plan(self, task: TaskSpec) -> Plan:
        """Chain of thought on the task, then typed extraction of its outputs."""
        return typed_cot_plan(task)


class FewShotCotMethod(PlanBaseline):
    """Few-shot CoT with the m training rows as demos.

    The rows carry no worked solution, so each demo is the question and ``The answer is
    <gold>.`` — stated here rather than inventing rationales (``bootstrap-fewshot`` is the
    method that builds verified rationales with the teacher).

    Args:
        max_demos: Use at most this many rows (in training order); None uses all.
    """

    def __init__(self, max_demos: int | None = None) -> None:
        super().__init__("fewshot-cot", cot_plan())
        self.max_demos = max_demos

    def typed_plan(self, task: TaskSpec) -> Plan:
        """Zero-shot typed CoT (the demos are added per training set)."""
        return typed_cot_plan(task, name="baseline-fewshot-cot")

    def build_plan(self, trainset: Sequence[Row]) -> Plan:
        """CoT plan with question + answer demos from the training rows."""
        rows = list(trainset) if self.max_demos is None else list(trainset)[: self.max_demos]
        if self.task is not None:
            return typed_cot_plan(
                self.task,
                demos_text=examples_block(self.task, rows, limit=len(rows)),
                name="baseline-fewshot-cot",
            )
        return cot_plan(demos=demos_from_rows(rows), name="baseline-fewshot-cot")


class SelfConsistencyMethod(PlanBaseline):
    """Self-consistency@k: k CoT samples at ``temperature``, majority over their numbers.

    Sample ``i`` runs the CoT plan with seed ``seed * 1000 + i``. The numbers vote with the
    consensus node's rules (:func:`sgde.runtime.consensus.vote`: ``12``, ``12.0`` and
    ``12.0000001`` agree; a tie goes to the class seen first); samples without a number do
    not vote.

    Args:
        k: Number of samples.
        temperature: Sampling temperature.
    """

    def __init__(self, k: int = 5, temperature: float = 0.7) -> None:
        if k < 1:
            raise UsageError(f"self-consistency needs k >= 1 samples, got {k}")
        super().__init__(
            "self-consistency",
            cot_plan(temperature=temperature, name="baseline-self-consistency"),
        )
        self.k = k
        self.temperature = temperature

    def typed_plan(self, task: TaskSpec) -> Plan:
        """Sampled typed CoT; the samples vote per output."""
        return typed_cot_plan(task, temperature=self.temperature, name="baseline-self-consistency")

    async def predict(
        self,
        prepared: Prepared,
        row: Row,
        *,
        student: Backend,
        sandbox: CodeRunner | None,
        seed: int = 0,
    ) -> Prediction:
        """Sample k chains of thought and return the majority number."""
        plan = require_plan(prepared)
        start = time.perf_counter()
        samples = await asyncio.gather(
            *(
                predict_with_plan(
                    plan,
                    row,
                    student=student,
                    sandbox=sandbox,
                    seed=seed * 1000 + i,
                    task=prepared.task,
                )
                for i in range(self.k)
            )
        )
        usage = sum((s.usage for s in samples), Usage())
        if prepared.task is not None:
            return _typed_vote(prepared.task, samples, usage, start, self.k)
        result = vote([{"answer": s.answer} if s.answer is not None else None for s in samples])
        votes = [
            {"answer": json.loads(text), "count": count}
            for text, count in result.tally.get("answer", [])
        ]
        answer = result.value.get("answer")
        return Prediction(
            answer=answer,
            raw=samples[0].raw if samples else "",
            usage=usage,
            latency_s=time.perf_counter() - start,
            trace={
                "votes": votes,
                "valid": result.valid,
                "k": self.k,
                "runs": [s.trace.get("run") for s in samples],
            },
            error=None if answer is not None else "no sample produced a number",
        )


def _typed_vote(
    task: TaskSpec, samples: Sequence[Prediction], usage: Usage, start: float, k: int
) -> Prediction:
    """Per-output majority over typed samples (values coerced to their types first)."""
    ballots: list[dict[str, Any] | None] = []
    for sample in samples:
        ballot = {}
        for name, ftype in task.outputs.items():
            value = (sample.outputs or {}).get(name)
            try:
                ballot[name] = ftype.coerce(value)
            except ValueError:
                continue
        ballots.append(ballot or None)
    result = vote(ballots)
    outputs = {name: result.value.get(name) for name in task.outputs}
    answer, error = outputs_prediction(task, outputs, error=None)
    return Prediction(
        answer=answer,
        raw=samples[0].raw if samples else "",
        usage=usage,
        latency_s=time.perf_counter() - start,
        trace={"valid": result.valid, "k": k, "runs": [s.trace.get("run") for s in samples]},
        error=error,
        outputs=outputs,
    )


class _ProgramMethod(PlanBaseline):
    """PAL/PoT: the student writes a program; sgde runs it in the sandbox."""

    def _program(self, text: str) -> str:
        return pal_program(text)

    async def prepare(
        self,
        trainset: Sequence[Row],
        *,
        teacher: Backend | None = None,
        student: Backend,
        sandbox: CodeRunner | None,
        budget: int | None = None,
        seed: int = 0,
    ) -> Prepared:
        """Build the plan; refuses to prepare without a sandbox."""
        _require_sandbox(self.name, sandbox)
        return await super().prepare(
            trainset,
            teacher=teacher,
            student=student,
            sandbox=sandbox,
            budget=budget,
            seed=seed,
        )

    async def predict(
        self,
        prepared: Prepared,
        row: Row,
        *,
        student: Backend,
        sandbox: CodeRunner | None,
        seed: int = 0,
    ) -> Prediction:
        """Ask for a program, run its ``solution()`` in the sandbox, read the number."""
        pool = _require_sandbox(self.name, sandbox)
        plan = require_plan(prepared)
        start = time.perf_counter()
        result = await run_plan(plan, row, student=student, sandbox=pool, seed=seed)
        raw = result.outputs.get("program")
        trace: dict[str, Any] = {"run": result.trace.to_dict()}
        if not isinstance(raw, str):
            return Prediction(
                answer=None,
                raw="",
                usage=result.trace.usage,
                latency_s=time.perf_counter() - start,
                trace=trace,
                error=result.error or "the student wrote no program",
            )
        program = self._program(raw)
        trace["program"] = program
        answer: float | None = None
        error: str | None = None
        try:
            value = await pool.call(program, {}, entry=ENTRY)
        except SandboxError as exc:
            trace["sandbox_error"] = error_info(exc)
            error = str(exc)
        else:
            trace["result"] = value if isinstance(value, (int, float, str)) else repr(value)
            if prepared.task is not None:
                outputs = program_outputs(prepared.task, value)
                answer, error = outputs_prediction(prepared.task, outputs, error=None)
                return Prediction(
                    answer=answer,
                    raw=raw,
                    usage=result.trace.usage,
                    latency_s=time.perf_counter() - start,
                    trace=trace,
                    error=error,
                    outputs=outputs,
                )
            answer = to_number(value)
            if answer is None:
                error = f"solution() returned {type(value).__name__} {value!r:.80}, not a number"
        return Prediction(
            answer=answer,
            raw=raw,
            usage=result.trace.usage,
            latency_s=time.perf_counter() - start,
            trace=trace,
            error=error,
            outputs=dict.fromkeys(prepared.task.outputs) if prepared.task is not None else None,
        )


def _require_sandbox(name: str, sandbox: CodeRunner | None) -> CodeRunner:
    if sandbox is None:
        raise UsageError(
            f"method {name!r} runs model-written code and needs a sandbox",
            hint="pass sandbox=SandboxPool() (code written by models only runs in the sandbox)",
        )
    return sandbox


class PalMethod(_ProgramMethod):
    """PAL (program-aided LM): the student writes ``def solution():`` returning the answer."""

    def __init__(self) -> None:
        super().__init__("pal", pal_plan())

    def typed_plan(self, task: TaskSpec) -> Plan:
        """The student writes ``solution()`` returning the task's output(s)."""
        return typed_program_plan(task)


class PotMethod(_ProgramMethod):
    """Program of thoughts: the student writes a program assigning ``ans``.

    The program becomes the body of ``def solution(): ...; return ans`` before it runs.
    """

    def __init__(self) -> None:
        super().__init__("pot", pot_plan())

    def _program(self, text: str) -> str:
        return pot_program(text)
