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
from sgde.plan.model import Plan
from sgde.runtime.backend import Backend, Usage
from sgde.runtime.calls import CodeRunner
from sgde.runtime.consensus import vote
from sgde.runtime.numbers import to_number
from sgde.runtime.trace import error_info

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
    """A baseline that is one fixed plan with output ``answer``; no teacher, no training."""

    uses_teacher = False

    def __init__(self, name: str, plan: Plan) -> None:
        self._name = name
        self._plan = plan

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
        return await predict_with_plan(plan, row, student=student, sandbox=sandbox, seed=seed)


class DirectMethod(PlanBaseline):
    """Direct answer: one JSON-constrained LLM call ``{"answer": number}``."""

    def __init__(self) -> None:
        super().__init__("direct", direct_plan())


class CotMethod(PlanBaseline):
    """Zero-shot chain of thought, then deterministic final-number extraction."""

    def __init__(self) -> None:
        super().__init__("cot", cot_plan())


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

    def build_plan(self, trainset: Sequence[Row]) -> Plan:
        """CoT plan with question + answer demos from the training rows."""
        demos = demos_from_rows(trainset)
        if self.max_demos is not None:
            demos = demos[: self.max_demos]
        return cot_plan(demos=demos, name="baseline-fewshot-cot")


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
                predict_with_plan(plan, row, student=student, sandbox=sandbox, seed=seed * 1000 + i)
                for i in range(self.k)
            )
        )
        result = vote([{"answer": s.answer} if s.answer is not None else None for s in samples])
        usage = sum((s.usage for s in samples), Usage())
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


class PotMethod(_ProgramMethod):
    """Program of thoughts: the student writes a program assigning ``ans``.

    The program becomes the body of ``def solution(): ...; return ans`` before it runs.
    """

    def __init__(self) -> None:
        super().__init__("pot", pot_plan())

    def _program(self, text: str) -> str:
        return pot_program(text)
