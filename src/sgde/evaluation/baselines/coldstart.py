"""The student alone: the compiler's starting plan for the task, run without improvement.

This is the baseline sgde is measured against on typed tasks: the plan a user has before
compiling. With a user's plan (e.g. the 3-node ``refund-workflow`` plan) that plan runs as
written; otherwise the teacher drafts the one-node plan of the compiler's cold start
(:func:`sgde.optimize.coldstart.cold_start`, ``draft="teacher"``), or the deterministic
minimal plan is used (``draft="minimal"``, no teacher call). On a GSM task (no typed task
bound) the task is ``question: string -> answer: number`` with the bench's task text.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Literal

from sgde.errors import UsageError
from sgde.evaluation.baselines.base import Prepared, Row
from sgde.evaluation.baselines.methods import PlanBaseline
from sgde.optimize.coldstart import cold_start, minimal_plan
from sgde.optimize.settings import CompileSettings
from sgde.optimize.teacher import Teacher
from sgde.plan.model import Plan
from sgde.runtime.backend import Backend, Usage
from sgde.runtime.calls import CodeRunner
from sgde.task import FieldType, TaskSpec

__all__ = ["GSM_TASK_TEXT", "ColdStartMethod"]

GSM_TASK_TEXT = (
    "Solve the math word problem given in `question` and return the final numeric `answer`."
)


def _gsm_task() -> TaskSpec:
    return TaskSpec(
        description=GSM_TASK_TEXT,
        inputs={"question": FieldType(kind="string")},
        outputs={"answer": FieldType(kind="number")},
    )


class ColdStartMethod(PlanBaseline):
    """The student alone, on the compiler's cold-start plan (or the user's plan); predicting
    runs that plan (:meth:`PlanBaseline.predict`).

    Args:
        draft: ``"teacher"`` (the compiler's cold-start draft; one teacher call, counted in
            the cell's teacher usage) or ``"minimal"`` (the deterministic fallback plan).
    """

    def __init__(self, draft: Literal["teacher", "minimal"] = "teacher") -> None:
        if draft not in ("teacher", "minimal"):
            raise UsageError(f"draft must be 'teacher' or 'minimal', not {draft!r}")
        super().__init__("student", minimal_plan(_gsm_task()))
        self.draft = draft
        self.plan: Plan | None = None
        self.uses_teacher = draft == "teacher"
        """Whether preparing calls the teacher (a teacher draft without a user plan)."""

    def bind_task(self, task: TaskSpec, plan: Plan | None = None) -> None:
        """Answer ``task``; with ``plan``, run that plan as written."""
        self.task = task
        self.plan = plan
        self.uses_teacher = self.draft == "teacher" and plan is None

    def _task(self) -> TaskSpec:
        return self.task if self.task is not None else _gsm_task()

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
        """The starting plan: the user's plan, the teacher's draft or the minimal plan."""
        start = time.perf_counter()
        task = self._task()
        usage: dict[str, Usage] = {}
        report: dict[str, object] = {"draft": self.draft}
        if self.plan is not None:
            plan, report["source"] = self.plan, "user plan"
        elif self.draft == "minimal":
            plan, report["source"] = minimal_plan(task), "minimal"
        else:
            if teacher is None:
                raise UsageError(
                    "the student-alone method drafts its plan with the teacher",
                    hint="bind a teacher, or use method option draft: minimal",
                )
            drafter = Teacher(teacher)
            settings = CompileSettings(seed=seed)
            plan, record = await cold_start(
                task, list(trainset), teacher=drafter, settings=settings
            )
            report.update(record)
            usage["teacher"] = drafter.usage
        return Prepared(
            method=self.name,
            plan=plan,
            usage=usage,
            latency_s=time.perf_counter() - start,
            report={**report, "plan_name": plan.name},
            task=self.task,
        )
