"""SGDe as a bench method: ``prepare`` compiles a plan with the teacher, ``predict`` runs it.

Also :func:`resolve_method`, which maps a method name to an instance: ``"sgde"`` to
:class:`SgdeMethod`, every other name through the baselines registry.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sgde.errors import UsageError
from sgde.evaluation.baselines import get_method
from sgde.evaluation.baselines.base import (
    Method,
    Prediction,
    Prepared,
    Row,
    predict_with_plan,
    require_plan,
)
from sgde.optimize import compile_async
from sgde.optimize.events import EventSink
from sgde.optimize.report import CompileReport
from sgde.optimize.settings import CompileSettings
from sgde.plan.model import Plan
from sgde.runtime.backend import Backend
from sgde.runtime.sandbox import SandboxPool
from sgde.runtime.trace import usage_from_dict
from sgde.task import TaskSpec, default_metric

__all__ = [
    "DEFAULT_TASK",
    "SGDE_METHOD",
    "CompileFn",
    "SgdeMethod",
    "compile_summary",
    "resolve_method",
]

SGDE_METHOD = "sgde"
DEFAULT_TASK = (
    "Solve the math word problem given in `question` and return the final numeric `answer`."
)

CompileFn = Callable[..., Awaitable[Any]]
"""Signature of :func:`sgde.optimize.compile_async` (injectable for tests)."""


def compile_summary(report: CompileReport | Mapping[str, Any]) -> dict[str, Any]:
    """Loss history, iterations to converge and convergence from a compile report.

    The loss history starts with the initial plan's training loss and has one entry per
    iteration: the loss of the plan kept after it (an accepted edit's loss, else unchanged).
    ``iterations`` counts iterations up to the first zero loss (all iterations when the loss
    never reached zero); ``converged`` says whether the final loss is zero.
    """
    data = report.to_dict() if isinstance(report, CompileReport) else dict(report)
    losses: list[float] = []
    current = data.get("initial_loss")
    if current is not None:
        losses.append(float(current))
    for record in data.get("iterations") or []:
        if record.get("accepted") and record.get("candidate_loss") is not None:
            current = record["candidate_loss"]
        elif current is None:
            current = record.get("loss_before")
        if current is not None:
            losses.append(float(current))
    n_iters = len(data.get("iterations") or [])
    zero = next((i for i, loss in enumerate(losses) if loss == 0.0), None)
    final = data.get("final_loss")
    return {
        "loss_history": losses,
        "iterations": zero if zero is not None else n_iters,
        "converged": final is not None and float(final) == 0.0,
        "stop_reason": data.get("stop_reason", ""),
        "notes": list(data.get("notes") or []),
    }


class SgdeMethod:
    """SGDe: compile a plan from the training rows with the teacher, then run it per row.

    Args:
        task: The task description given to the compiler's cold start.
        settings: Compiler settings; the seed is replaced by ``prepare``'s seed.
        checkpoint_dir: Where the compiler checkpoints (a rerun resumes from it).
        events: Listener of compile progress events.
        compile_fn: The compile function (default :func:`sgde.optimize.compile_async`).

    :meth:`bind_task` sets a typed task (and the user's starting plan, if any): the compile
    then starts from that plan (else the task's text) and is given the task.
    """

    uses_teacher = True

    def __init__(
        self,
        *,
        task: str = DEFAULT_TASK,
        settings: CompileSettings | None = None,
        checkpoint_dir: Path | None = None,
        events: EventSink | None = None,
        compile_fn: CompileFn | None = None,
    ) -> None:
        self.task = task
        self.settings = settings or CompileSettings()
        self.checkpoint_dir = checkpoint_dir
        self.events = events
        self._compile = compile_fn or compile_async
        self.typed_task: TaskSpec | None = None
        self.plan: Plan | None = None

    def bind_task(self, task: TaskSpec, plan: Plan | None = None) -> None:
        """Compile for ``task`` (typed inputs and outputs), from ``plan`` when given."""
        self.typed_task = task
        self.task = task.description
        self.plan = plan

    def _compile_kwargs(self) -> dict[str, Any]:
        """The typed task for the compiler: ``task=`` when it takes one, else its metric."""
        if self.typed_task is None:
            return {}
        try:
            params = inspect.signature(self._compile).parameters
        except (TypeError, ValueError):
            params = {}  # type: ignore[assignment]
        if "task" in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return {"task": self.typed_task}
        return {"metric": default_metric(self.typed_task)}

    @property
    def name(self) -> str:
        """``"sgde"``."""
        return SGDE_METHOD

    def unavailable_reason(self) -> str | None:
        """SGDe always runs (it needs a teacher, which the bench always binds)."""
        return None

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
        """Compile a plan on ``trainset``; the report goes into ``Prepared.report``.

        ``budget`` is enforced by the bench's model settings (the compiler stops with the
        best plan found when the hub raises :class:`~sgde.errors.BudgetExceeded`).
        """
        if teacher is None:
            raise UsageError("SGDe needs a teacher model", hint="bind the 'teacher' role")
        if sandbox is None:
            raise UsageError(
                "SGDe needs a sandbox: the teacher's code is verified in it",
                hint="pass a SandboxPool",
            )
        started = time.perf_counter()
        settings = self.settings.model_copy(update={"seed": seed})
        result = await self._compile(
            self.plan if self.plan is not None else self.task,
            trainset=list(trainset),
            teacher=teacher,
            student=student,
            sandbox=sandbox,
            settings=settings,
            checkpoint_dir=self.checkpoint_dir,
            resume=self.checkpoint_dir is not None,
            events=self.events,
            **self._compile_kwargs(),
        )
        report: Any = result.report
        report_dict: dict[str, Any] = (
            report.to_dict() if isinstance(report, CompileReport) else dict(report)
        )
        usage = {role: usage_from_dict(u) for role, u in (report_dict.get("usage") or {}).items()}
        return Prepared(
            method=SGDE_METHOD,
            plan=result.plan,
            usage=usage,
            latency_s=time.perf_counter() - started,
            report=report_dict,
            task=self.typed_task,
        )

    async def predict(
        self,
        prepared: Prepared,
        row: Row,
        *,
        student: Backend,
        sandbox: SandboxPool | None,
        seed: int,
    ) -> Prediction:
        """Run the compiled plan on one row."""
        return await predict_with_plan(
            require_plan(prepared),
            row,
            student=student,
            sandbox=sandbox,
            seed=seed,
            task=prepared.task,
        )


def resolve_method(
    name: str,
    options: Mapping[str, Any] | None = None,
    *,
    sgde: Callable[[], SgdeMethod] | None = None,
    task: TaskSpec | None = None,
    plan: Plan | None = None,
) -> Method:
    """The method called ``name``: SGDe, or a baseline/optimiser from the registry.

    Args:
        name: ``"sgde"`` or a registry name (``"direct"``, ``"cot"``, ``"pal"``, ...).
        options: Constructor options of a registry method.
        sgde: Factory of the :class:`SgdeMethod` (its settings, checkpoints and events).
        task: A typed task the method must answer (None: GSM ``question`` -> ``answer``).
        plan: The user's starting plan for ``task`` (SGDe and the student-alone method).

    Raises:
        UsageError: the name is unknown (the registry's message lists the known names), or
            the method does not handle typed tasks.
    """
    method: Method
    if name == SGDE_METHOD:
        method = sgde() if sgde is not None else SgdeMethod()
    else:
        method = get_method(name, **dict(options or {}))
    if task is not None:
        bind = getattr(method, "bind_task", None)
        if bind is None:
            raise UsageError(
                f"method {name!r} handles GSM-style numeric questions only",
                hint="use student, direct, cot, pal, ape or sgde on typed tasks",
            )
        bind(task, plan)
    return method
