"""The method protocol shared by baselines, prompt optimisers and SGDe in ``sgde bench``.

A method is prepared once per (training set, seed) — prompt optimisers spend teacher calls
there, plain baselines do nothing — and then predicts one row at a time::

    prepared = await method.prepare(train, teacher=t, student=s, sandbox=pool,
                                    budget=50_000, seed=0)
    prediction = await method.predict(prepared, row, student=s, sandbox=pool, seed=0)

Where possible a method is a :class:`~sgde.plan.model.Plan` run by the
:class:`~sgde.runtime.executor.Executor`, so every method shares the backends, the traces
and the sandbox.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from sgde.errors import UsageError
from sgde.plan.model import Plan
from sgde.runtime.backend import Backend, Usage
from sgde.runtime.calls import CodeRunner
from sgde.runtime.executor import Executor, RunResult
from sgde.runtime.numbers import to_number
from sgde.task import TaskSpec

if TYPE_CHECKING:
    from sgde.runtime.sandbox import SandboxPool

__all__ = [
    "Method",
    "Prediction",
    "Prepared",
    "Row",
    "outputs_prediction",
    "plan_inputs",
    "predict_with_plan",
    "require_plan",
    "run_plan",
    "usage_dict",
]

Row = Mapping[str, Any]
"""A dataset row: plan inputs at the top level (``question``), gold under ``answer``."""


def usage_dict(usage: Mapping[str, Usage]) -> dict[str, dict[str, Any]]:
    """``{role: Usage}`` as JSON-ready dicts."""
    return {role: u.to_dict() for role, u in usage.items()}


@dataclass
class Prediction:
    """One method's answer to one row.

    Attributes:
        answer: The predicted number (GSM tasks), or for a typed task the single output's
            value or a dict of the outputs; None when the method produced none.
        raw: The student's raw output (the reply text, or the program for PAL/PoT).
        usage: Student tokens spent on this row.
        latency_s: Wall time of the prediction.
        trace: JSON-ready details: ``run`` (the :class:`~sgde.runtime.trace.RunTrace` as a
            dict) or ``runs`` (several), plus method-specific fields (``program``,
            ``sandbox_error``, ``votes``...).
        error: Why no answer was produced, when ``answer`` is None and something failed.
        outputs: A typed task's outputs by name (values as the method found them; the
            task's metric coerces and judges them), or None for a GSM task.
    """

    answer: Any
    raw: str
    usage: Usage = field(default_factory=Usage)
    latency_s: float = 0.0
    trace: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    outputs: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "answer": self.answer,
            "raw": self.raw,
            "usage": self.usage.to_dict(),
            "latency_s": round(self.latency_s, 6),
            "trace": self.trace,
            "error": self.error,
            "outputs": self.outputs,
        }


@dataclass
class Prepared:
    """What :meth:`Method.prepare` produced.

    Attributes:
        method: The method's name.
        plan: The plan the method runs per row (optimised prompt, few-shot prompt, ...), or
            None for methods that are not a plan (DSPy).
        usage: Tokens spent while preparing, per role (``"teacher"``, ``"student"``).
        latency_s: Wall time of preparing.
        report: JSON-ready details (optimiser history, chosen prompt, budget use).
        state: Method-private state (e.g. a compiled DSPy program); not serialised.
        task: The typed task the method was prepared for (its predictions are scored with
            the task's metric), or None for a GSM task (a number ``answer``).
    """

    method: str
    plan: Plan | None = None
    usage: dict[str, Usage] = field(default_factory=dict)
    latency_s: float = 0.0
    report: dict[str, Any] = field(default_factory=dict)
    state: Any = None
    task: TaskSpec | None = None

    @property
    def teacher_tokens(self) -> int:
        """Teacher tokens spent while preparing."""
        usage = self.usage.get("teacher")
        return usage.total_tokens if usage is not None else 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (without ``state``; the plan as its JSON dump, the task as its
        metadata)."""
        return {
            "method": self.method,
            "plan": self.plan.model_dump(mode="json") if self.plan is not None else None,
            "usage": usage_dict(self.usage),
            "latency_s": round(self.latency_s, 6),
            "report": self.report,
            "task": self.task.to_metadata() if self.task is not None else None,
        }


@runtime_checkable
class Method(Protocol):
    """A way of answering rows with the student: a baseline, an optimiser or SGDe.

    Implementations must allow concurrent :meth:`predict` calls on one ``Prepared``.
    """

    @property
    def name(self) -> str:
        """Registry name (e.g. ``"cot"``)."""
        ...

    @property
    def uses_teacher(self) -> bool:
        """Whether :meth:`prepare` calls the teacher (it must then be given one)."""
        ...

    def unavailable_reason(self) -> str | None:
        """Why the method cannot run here (e.g. ``"unavailable (pip install dspy)"``), or None."""
        ...

    async def prepare(
        self,
        trainset: Sequence[Row],
        *,
        teacher: Backend | None,
        student: Backend,
        sandbox: SandboxPool | None,
        budget: int | None,
        seed: int,
    ) -> Prepared:
        """Build what :meth:`predict` needs from the training rows.

        Args:
            trainset: The m labelled training rows.
            teacher: The teacher backend (required when :attr:`uses_teacher`).
            student: The student backend.
            sandbox: Sandbox for code nodes and model-written programs.
            budget: Token budget (prompt + completion, teacher and student together) for
                preparing; None means unlimited.
            seed: Seed of every sampled choice.
        """
        ...

    async def predict(
        self,
        prepared: Prepared,
        row: Row,
        *,
        student: Backend,
        sandbox: SandboxPool | None,
        seed: int,
    ) -> Prediction:
        """Answer one row with the student. Failures are recorded, not raised."""
        ...


def require_plan(prepared: Prepared) -> Plan:
    """The plan of a prepared method.

    Raises:
        UsageError: when ``prepared`` holds no plan (not made by this method's ``prepare``).
    """
    if prepared.plan is None:
        raise UsageError(
            f"prepared state of method {prepared.method!r} has no plan",
            hint="pass the object returned by this method's prepare()",
        )
    return prepared.plan


def plan_inputs(plan: Plan, row: Row) -> dict[str, Any]:
    """The row's values for the plan's inputs.

    Raises:
        UsageError: When the row lacks one of the plan's inputs.
    """
    missing = [name for name in plan.inputs if name not in row]
    if missing:
        raise UsageError(
            f"row {row.get('id', '?')!r} lacks plan input(s) {missing} of plan {plan.name!r}",
            hint="rows carry the plan's input names at the top level (GSM plans: 'question')",
        )
    return {name: row[name] for name in plan.inputs}


async def run_plan(
    plan: Plan,
    row: Row,
    *,
    student: Backend,
    sandbox: CodeRunner | None,
    seed: int,
) -> RunResult:
    """Run ``plan`` on one row with the student bound to role ``student``.

    Args:
        plan: A plan whose LLM nodes use role ``student``.
        row: The row (plan inputs at the top level).
        student: The backend bound to ``student``.
        sandbox: Sandbox for code nodes.
        seed: Run seed.

    Returns:
        The executor's result (failures are recorded in it, not raised).
    """
    executor = Executor({"student": student}, sandbox=sandbox)
    return await executor.run(plan, plan_inputs(plan, row), seed=seed)


def _raw_text(result: RunResult) -> str:
    """The last LLM node's raw output in a run (the student's reply)."""
    for node in reversed(result.trace.nodes):
        if node.raw_output is not None:
            return node.raw_output
    return ""


def outputs_prediction(
    task: TaskSpec, outputs: dict[str, Any], *, error: str | None
) -> tuple[Any, str | None]:
    """``(answer, error)`` of a typed task's outputs: the single output's value, or the
    dict of outputs; an error when no output has a value."""
    answer: Any = next(iter(outputs.values())) if len(outputs) == 1 else outputs
    if error is None and all(v is None for v in outputs.values()):
        error = "no value for the output(s) " + ", ".join(task.outputs)
    return answer, error


async def predict_with_plan(
    plan: Plan,
    row: Row,
    *,
    student: Backend,
    sandbox: CodeRunner | None,
    seed: int,
    task: TaskSpec | None = None,
) -> Prediction:
    """Predict with a plan whose output ``answer`` is the prediction (GSM), or whose
    outputs are a typed task's outputs.

    Args:
        plan: A plan with output ``answer`` (or the task's outputs).
        row: The row.
        student: The student backend.
        sandbox: Sandbox for code nodes.
        seed: Run seed.
        task: The typed task, or None for a numeric ``answer``.

    Returns:
        The prediction (``answer`` None when the run failed or gave no number).
    """
    start = time.perf_counter()
    result = await run_plan(plan, row, student=student, sandbox=sandbox, seed=seed)
    if task is not None:
        outputs = {name: result.outputs.get(name) for name in task.outputs}
        value, failure = outputs_prediction(task, outputs, error=result.error)
        return Prediction(
            answer=value,
            raw=_raw_text(result),
            usage=result.trace.usage,
            latency_s=time.perf_counter() - start,
            trace={"run": result.trace.to_dict()},
            error=failure,
            outputs=outputs,
        )
    answer = to_number(result.outputs.get("answer"))
    error = result.error
    if error is None and answer is None:
        error = "no numeric answer in the output"
    return Prediction(
        answer=answer,
        raw=_raw_text(result),
        usage=result.trace.usage,
        latency_s=time.perf_counter() - start,
        trace={"run": result.trace.to_dict()},
        error=error if answer is None else None,
    )
